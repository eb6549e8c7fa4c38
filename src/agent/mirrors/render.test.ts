import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { registryMirrorSpecSchema } from '../../api/registrymirror.ts';
import { renderMirrorFiles, shadowingHostDirectory } from './render.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';

function render(spec: unknown) {
  return renderMirrorFiles(
    { name: 'm', spec: registryMirrorSpecSchema.parse(spec) },
    '/etc/containerd/certs.d',
  );
}

describe('renderMirrorFiles', () => {
  it('writes the mirrors in order with their settings and no server when the upstream stays a fallback', () => {
    const files = render({
      host: 'docker.io',
      mirrors: [
        { url: 'https://10.1.2.3:32000', caBundle: PEM, headers: { 'X-Mirror': 'a "quoted" value' } },
        {
          url: 'https://harbor.example/v2/dockerhub',
          capabilities: ['pull'],
          skipVerify: true,
          overridePath: true,
        },
      ],
    });
    expect(files.map((f) => f.path)).toEqual([
      '/etc/containerd/certs.d/docker.io/prepull-ca-0.crt',
      '/etc/containerd/certs.d/docker.io/hosts.toml',
    ]);
    expect(files[0]?.content).toBe(`${PEM}\n`);
    const hosts = files[1]!.content;
    const parsed = parse(hosts) as Record<string, unknown>;
    expect(parsed.server).toBeUndefined();
    expect(parsed.host).toEqual({
      'https://10.1.2.3:32000': {
        capabilities: ['pull', 'resolve'],
        ca: '/etc/containerd/certs.d/docker.io/prepull-ca-0.crt',
        header: { 'X-Mirror': 'a "quoted" value' },
      },
      'https://harbor.example/v2/dockerhub': {
        capabilities: ['pull'],
        skip_verify: true,
        override_path: true,
      },
    });
    // containerd tries [host] tables in file order.
    expect(hosts.indexOf('10.1.2.3')).toBeLessThan(hosts.indexOf('harbor.example'));
  });

  it('makes the last mirror the server when the upstream is replaced, so the upstream is never asked', () => {
    const files = render({
      host: 'registry.k8s.io',
      upstream: 'Replaced',
      mirrors: [{ url: 'https://a.local' }, { url: 'http://b.local:5000', headers: { 'X-B': '1' } }],
    });
    const parsed = parse(files[0]!.content) as Record<string, unknown>;
    expect(parsed.server).toBe('http://b.local:5000');
    expect(parsed.capabilities).toEqual(['pull', 'resolve']);
    expect(parsed.header).toEqual({ 'X-B': '1' });
    expect(Object.keys(parsed.host as object)).toEqual(['https://a.local']);
  });

  it('writes a [host] table even when the only mirror is the server, which containerd 1.6 and 1.7 need', () => {
    const hosts = render({
      host: 'r.example',
      upstream: 'Replaced',
      mirrors: [{ url: 'https://m.local' }],
    })[0]!.content;
    expect(parse(hosts)).toEqual({ server: 'https://m.local', capabilities: ['pull', 'resolve'], host: {} });
    // go-toml v1 (containerd < 1.7.32) finds no `host` tree without the header itself.
    expect(hosts).toMatch(/^\[host\]$/m);
  });

  it('writes _default as its own directory', () => {
    expect(render({ host: '_default', mirrors: [{ url: 'https://m' }] })[0]?.path).toBe(
      '/etc/containerd/certs.d/_default/hosts.toml',
    );
  });

  it('knows the host_port_ directory containerd reads first', () => {
    expect(shadowingHostDirectory('/d', 'r.local:5000')).toBe('/d/r.local_5000_');
    expect(shadowingHostDirectory('/d', 'docker.io')).toBeUndefined();
  });
});

describe('the RegistryMirror spec', () => {
  it.each([
    [{ host: 'Docker.io', mirrors: [{ url: 'https://m' }] }, 'lower-case registry host'],
    [{ host: 'docker.io', mirrors: [] }, 'Too small'],
    [{ host: 'docker.io', mirrors: [{ url: 'ftp://m' }] }, 'http:// or https://'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m"x' }] }, 'quotes'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m' }, { url: 'https://m' }] }, 'unique'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m', caBundle: PEM, skipVerify: true }] }, 'exclude'],
    [{ host: 'docker.io', mirrors: [{ url: 'http://m', caBundle: PEM }] }, 'https://'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m', overridePath: true }] }, 'with a path'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m', headers: { Authorization: 'x' } }] }, 'pull secret'],
    [{ host: 'docker.io', mirrors: [{ url: 'https://m', headers: { 'X-A': 'a\nb' } }] }, 'one line'],
  ])('refuses %j', (spec, message) => {
    const parsed = registryMirrorSpecSchema.safeParse(spec);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.message).toContain(message);
  });
});
