import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import {
  checkDueInMs,
  checkedImages,
  checkIntervalMs,
  DEFAULT_CHECK_INTERVAL_MS,
  digestRolloutKey,
  failedCheck,
  firstFailedCheck,
  movedTags,
  resolutionsInStatus,
  resolvedImage,
} from './resolution.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const digest = `sha256:${'a'.repeat(64)}`;

function ppi(
  o: { refresh?: string; status?: PrePulledImage['status']; generation?: number } = {},
): PrePulledImage {
  return {
    metadata: { name: 'web', namespace: 'team-a', uid: 'u1', generation: o.generation ?? 2 },
    spec: {
      images: [
        { image: 'nginx:1.27' },
        { image: 'r.io/app:v1', tarball: { hostPath: '/images/app.tar' } },
        { image: `r.io/pinned@${digest}`, name: 'pinned' },
      ],
      ...(o.refresh && { refresh: { interval: o.refresh } }),
    },
    ...(o.status && { status: o.status }),
  };
}

const checkedAt = (at: number) =>
  resolvedImage(digest, [{ os: 'linux', architecture: 'amd64' }], new Date(at));

describe('registry checks of a PrePulledImage', () => {
  it('asks about pulled images only: a tarball is imported, not pulled', () => {
    expect(checkedImages(ppi()).map((r) => r && `${r.domain}/${r.path}`)).toEqual([
      'docker.io/library/nginx',
      undefined,
      'r.io/pinned',
    ]);
  });

  it('checks every refresh interval, or hourly without refresh', () => {
    expect(checkIntervalMs(ppi({ refresh: '5m' }))).toBe(300_000);
    expect(checkIntervalMs(ppi({ refresh: '10s' }))).toBe(60_000);
    expect(checkIntervalMs(ppi())).toBe(DEFAULT_CHECK_INTERVAL_MS);
  });

  it('reads the last checks back from status, by image, so a new leader goes on from there', () => {
    const object = ppi({
      status: {
        observedGeneration: 2,
        images: [
          { image: `r.io/pinned@${digest}`, readyNodes: 0, ...checkedAt(T0) },
          {
            image: 'docker.io/library/nginx:1.27',
            readyNodes: 1,
            ...failedCheck('NotFound', 'gone', new Date(T0)),
          },
        ],
      },
    });
    const refs = checkedImages(object);
    expect(resolutionsInStatus(object, refs)).toEqual([
      { resolvedAt: '2026-01-01T00:00:00Z', registryCheck: { reason: 'NotFound', message: 'gone' } },
      undefined,
      { resolvedAt: '2026-01-01T00:00:00Z', resolvedDigest: digest, platforms: ['linux/amd64'] },
    ]);
  });

  it('a check is due when never made, after a spec change, after a failure, or once the interval passed', () => {
    const held = (resolutions: ReturnType<typeof checkedAt>[], generation = 2) => {
      const object = ppi({
        refresh: '10m',
        generation,
        status: {
          observedGeneration: 2,
          images: [
            { image: 'docker.io/library/nginx:1.27', readyNodes: 0, ...resolutions[0] },
            { image: `r.io/pinned@${digest}`, readyNodes: 0, ...resolutions[1] },
          ],
        },
      });
      const refs = checkedImages(object);
      return (now: number) => checkDueInMs(object, refs, resolutionsInStatus(object, refs), now);
    };
    expect(checkDueInMs(ppi(), checkedImages(ppi()), [undefined, undefined, undefined], T0)).toBe(0);
    const fresh = held([checkedAt(T0), checkedAt(T0 + 60_000)]);
    expect(fresh(T0 + 120_000)).toBe(480_000);
    expect(fresh(T0 + 600_000)).toBe(0);
    expect(held([checkedAt(T0), checkedAt(T0)], 3)(T0)).toBe(0);
    expect(held([failedCheck('RegistryUnavailable', 'down', new Date(T0)), checkedAt(T0)])(T0)).toBe(0);
  });

  it('a failed check keeps the reason and a bounded registry message; the first one names its image', () => {
    const long = failedCheck('Unauthorized', 'x'.repeat(2000), new Date(T0));
    expect(long.registryCheck?.message).toHaveLength(512);
    const first = firstFailedCheck(ppi(), [
      checkedAt(T0),
      undefined,
      failedCheck('NotFound', 'no', new Date(T0)),
    ]);
    expect(first).toEqual({ image: 'pinned', reason: 'NotFound', message: 'no' });
    expect(firstFailedCheck(ppi(), [checkedAt(T0)])).toBeUndefined();
  });

  it('platforms read as os/architecture/variant, each once', () => {
    const r = resolvedImage(
      digest,
      [
        { os: 'linux', architecture: 'arm', variant: 'v7' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
        { os: 'linux', architecture: 'amd64' },
      ],
      new Date(T0),
    );
    expect(r.platforms).toEqual(['linux/arm/v7', 'linux/amd64']);
  });
});

describe('refresh rolls when a tag moves', () => {
  const other = `sha256:${'b'.repeat(64)}`;
  const at = (d: string) => resolvedImage(d, [], new Date(T0));
  const refs = checkedImages(ppi());

  it("the rollout key follows the tagged images' resolved digests, and nothing else", () => {
    const key = digestRolloutKey(refs, [at(digest), undefined, at(digest)], undefined);
    expect(key).toMatch(/^digests-[0-9a-f]{12}$/);
    // The digest reference and the checked-at time do not enter it.
    expect(
      digestRolloutKey(refs, [resolvedImage(digest, [], new Date(T0 + 1)), undefined, at(other)], 'x'),
    ).toBe(key);
    expect(digestRolloutKey(refs, [at(other), undefined, at(digest)], key)).not.toBe(key);
  });

  it('keeps the previous key while a tag cannot be resolved, so no node is torn down for it', () => {
    const failed = failedCheck('RegistryUnavailable', 'down', new Date(T0));
    expect(digestRolloutKey(refs, [failed, undefined, at(digest)], 'digests-previous')).toBe(
      'digests-previous',
    );
    expect(digestRolloutKey(refs, [undefined, undefined, undefined], undefined)).toBeUndefined();
  });

  it('names each moved tag with its old and new digest', () => {
    const object = ppi();
    expect(
      movedTags(object, refs, [at(digest), undefined, at(digest)], [at(other), undefined, at(other)]),
    ).toEqual([{ image: 'docker.io/library/nginx:1.27', from: digest, to: other }]);
    expect(
      movedTags(object, refs, [undefined, undefined, undefined], [at(other), undefined, undefined]),
    ).toEqual([]);
  });
});
