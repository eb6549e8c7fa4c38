import { describe, expect, it } from 'vitest';
import {
  configPlatform,
  indexPlatforms,
  MalformedManifestError,
  MediaType,
  manifestConfig,
  manifestKind,
  platformMatches,
  platformMismatch,
} from './manifest.ts';

const digest = `sha256:${'0'.repeat(64)}`;

describe('media types', () => {
  it.each([
    [MediaType.OciIndex, 'index'],
    [MediaType.DockerManifestList, 'index'],
    [MediaType.OciManifest, 'manifest'],
    [`${MediaType.DockerManifest}; charset=utf-8`, 'manifest'],
    ['application/vnd.docker.distribution.manifest.v1+prettyjws', undefined],
    ['application/json', undefined],
    [undefined, undefined],
  ])('%s is %s', (type, kind) => {
    expect(manifestKind(type)).toBe(kind);
  });
});

describe('platforms', () => {
  it.each([
    [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }, true],
    [{ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }, true],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'aarch64' }, true],
    [{ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' }, false],
    [{ os: 'windows', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }, false],
    [
      { os: 'linux', architecture: 'arm', variant: 'v7' },
      { os: 'linux', architecture: 'arm', variant: 'v8' },
      true,
    ],
    [
      { os: 'linux', architecture: 'arm', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
      false,
    ],
    [{ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm' }, true],
  ])('%o on a %o node: %s', (offered, node, expected) => {
    expect(platformMatches(offered, node)).toBe(expected);
  });

  it('a mismatch names the platforms that exist', () => {
    const offered = [
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 's390x' },
    ];
    expect(platformMismatch(offered, { os: 'linux', architecture: 'amd64' })).toBe(
      'the image offers linux/arm64, linux/s390x, not linux/amd64',
    );
    expect(platformMismatch(offered, { os: 'linux', architecture: 'arm64' })).toBeUndefined();
    expect(platformMismatch([], { os: 'linux', architecture: 'amd64' })).toContain('offers no platform');
  });
});

describe('parsing manifests', () => {
  it('an index entry without a platform is skipped; one with a bad digest is malformed', () => {
    expect(
      indexPlatforms(JSON.stringify({ manifests: [{ digest, mediaType: MediaType.OciManifest }] })),
    ).toEqual([]);
    expect(() => indexPlatforms(JSON.stringify({ manifests: [{ digest: 'sha256:xyz' }] }))).toThrow(
      MalformedManifestError,
    );
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /not a JSON object/],
    ['{"config":{}}', /no sha256 digest/],
  ])('manifestConfig(%s) is malformed', (body, message) => {
    expect(() => manifestConfig(body)).toThrow(message);
  });

  it('reads a config platform with its variant, and refuses one without', () => {
    expect(configPlatform('{"os":"linux","architecture":"arm","variant":"v7"}')).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    });
    expect(() => configPlatform('{"os":"linux"}')).toThrow(MalformedManifestError);
  });
});
