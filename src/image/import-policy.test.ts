import { describe, expect, it } from 'vitest';
import {
  DEFAULT_IMPORT_POLICY,
  importRefusal,
  loadImportPolicy,
  redactUrl,
  redirectPrefixes,
} from './import-policy.ts';

const byDefault = { ok: true as const, policy: DEFAULT_IMPORT_POLICY };
const hostPath = (path: string) => ({ hostPath: path });

describe('the default import policy', () => {
  it('lets a namespace import its own prepull.local/<namespace>/ images from its own archive directory or any claim of its own', () => {
    expect(
      importRefusal(byDefault, 'team-a', {
        image: 'prepull.local/team-a/app:v1',
        tarball: hostPath('/var/lib/prepull/archives/team-a/app.tar'),
      }),
    ).toBeUndefined();
    expect(
      importRefusal(byDefault, 'team-a', {
        image: 'prepull.local/team-a/tools/cli:v1',
        tarball: { persistentVolumeClaim: { claimName: 'archives', path: 'cli.tar' } },
      }),
    ).toBeUndefined();
    // A claim gives no other name: the image stays within the namespace's prefix.
    expect(
      importRefusal(byDefault, 'team-a', {
        image: 'registry.k8s.io/pause:3.10',
        tarball: { persistentVolumeClaim: { claimName: 'archives', path: 'pause.tar' } },
      }),
    ).toMatch(/does not let namespace team-a import registry.k8s.io\/pause$/);
  });

  it("refuses anything else: another registry, another namespace's prefix, another directory, any URL", () => {
    const refused = [
      {
        image: 'ghcr.io/prepull/prepull:v0.1.0',
        tarball: hostPath('/var/lib/prepull/archives/team-a/x.tar'),
      },
      { image: 'registry.k8s.io/pause:3.10', tarball: hostPath('/var/lib/prepull/archives/team-a/x.tar') },
      { image: 'nginx', tarball: hostPath('/var/lib/prepull/archives/team-a/x.tar') },
      { image: 'prepull.local/team-b/app:v1', tarball: hostPath('/var/lib/prepull/archives/team-a/x.tar') },
      { image: 'prepull.local/team-a/app:v1', tarball: hostPath('/var/lib/prepull/archives/team-b/x.tar') },
      { image: 'prepull.local/team-a/app:v1', tarball: hostPath('/etc/shadow') },
      { image: 'prepull.local/team-a/app:v1', tarball: { url: 'https://archives.example/app.tar' } },
    ];
    for (const entry of refused) {
      expect(importRefusal(byDefault, 'team-a', entry), JSON.stringify(entry)).toMatch(/import policy/);
    }
  });

  it('does not apply to an image without a tarball', () => {
    expect(importRefusal(byDefault, 'team-a', { image: 'nginx' })).toBeUndefined();
  });
});

describe('an admin policy', () => {
  const loaded = loadImportPolicy({
    'policy.yaml': `
rules:
  - namespaces: [platform]
    images: ["registry.k8s.io/*", "ghcr.io/acme/**"]
    hostPaths: [/srv/images/]
    urls: ["https://archives.example/images/"]
  - namespaces: ["team-*"]
    images: ["prepull.local/{namespace}/**"]
    hostPaths: ["/srv/{namespace}/"]
    persistentVolumeClaims: ["images-*"]
`,
  });

  it('allows what one rule for the namespace allows, image and source together', () => {
    expect(loaded.ok).toBe(true);
    expect(
      importRefusal(loaded, 'platform', {
        image: 'registry.k8s.io/pause:3.10',
        tarball: hostPath('/srv/images/pause.tar'),
      }),
    ).toBeUndefined();
    expect(
      importRefusal(loaded, 'platform', {
        image: `ghcr.io/acme/ml/trainer@sha256:${'a'.repeat(64)}`,
        tarball: { url: 'https://archives.example/images/trainer.tar' },
      }),
    ).toBeUndefined();
  });

  it('refuses a source the image rule does not list, a URL on another host or with userinfo, and other namespaces', () => {
    expect(
      importRefusal(loaded, 'platform', {
        image: 'registry.k8s.io/pause:3.10',
        tarball: hostPath('/srv/imagesX/p.tar'),
      }),
    ).toMatch(/from hostPath/);
    expect(
      importRefusal(loaded, 'platform', {
        image: 'registry.k8s.io/a/b:1',
        tarball: hostPath('/srv/images/p.tar'),
      }),
    ).toMatch(/import registry.k8s.io\/a\/b$/);
    for (const url of [
      'https://archives.example.evil/images/x.tar',
      'http://archives.example/images/x.tar',
      'https://archives.example/imagesX/x.tar',
      'https://user:pw@archives.example/images/x.tar',
    ]) {
      expect(importRefusal(loaded, 'platform', { image: 'ghcr.io/acme/x:1', tarball: { url } }), url).toMatch(
        /from url/,
      );
    }
    expect(
      importRefusal(loaded, 'team-b', {
        image: 'registry.k8s.io/pause:3.10',
        tarball: hostPath('/srv/images/p.tar'),
      }),
    ).toMatch(/namespace team-b/);
    expect(
      importRefusal(loaded, 'team-b', {
        image: 'prepull.local/team-b/app:1',
        tarball: hostPath('/srv/team-b/a.tar'),
      }),
    ).toBeUndefined();
  });

  it('allows only the claims a rule names, and none when it names none', () => {
    const claim = (claimName: string) => ({ persistentVolumeClaim: { claimName, path: 'a.tar' } });
    expect(
      importRefusal(loaded, 'team-b', { image: 'prepull.local/team-b/a:1', tarball: claim('images-1') }),
    ).toBeUndefined();
    expect(
      importRefusal(loaded, 'team-b', { image: 'prepull.local/team-b/a:1', tarball: claim('scratch') }),
    ).toMatch(/from persistentVolumeClaim scratch$/);
    expect(
      importRefusal(loaded, 'platform', { image: 'registry.k8s.io/pause:3.10', tarball: claim('images-1') }),
    ).toMatch(/from persistentVolumeClaim images-1$/);
  });

  it('that cannot be read refuses every import and says why', () => {
    const unusable: Record<string, string>[] = [
      {},
      { 'policy.yaml': 'rules: [' },
      { 'policy.yaml': 'rules: [{hostPaths: [relative]}]' },
    ];
    for (const data of unusable) {
      const bad = loadImportPolicy(data);
      expect(bad.ok).toBe(false);
      expect(
        importRefusal(bad, 'platform', {
          image: 'registry.k8s.io/pause:3.10',
          tarball: hostPath('/srv/images/p.tar'),
        }),
      ).toMatch(/import policy is unusable/);
    }
  });
});

describe('redactUrl', () => {
  it('drops userinfo and the query', () => {
    expect(redactUrl('https://user:secret@host.example:8443/a/b.tar?X-Amz-Signature=abc#f')).toBe(
      'https://redacted@host.example:8443/a/b.tar?redacted',
    );
    expect(redactUrl('http://10.0.0.1/x.tar')).toBe('http://10.0.0.1/x.tar');
  });
});

describe('redirectPrefixes', () => {
  const policy = loadImportPolicy({
    'policy.yaml': [
      'rules:',
      '  - namespaces: [team-a]',
      '    images: ["prepull.local/{namespace}/**"]',
      '    urls: [https://files.example/team-a/, https://cdn.example/]',
      '  - namespaces: [team-b]',
      '    images: ["prepull.local/{namespace}/**"]',
      '    urls: [https://files.example/team-b/]',
      '  - namespaces: ["*"]',
      '    images: [other.example/**]',
      '    urls: [https://other.example/]',
    ].join('\n'),
  });
  const entry = (image: string) => ({ image, tarball: { url: 'https://files.example/team-a/app.tar' } });

  it("are the URL prefixes of the rules that allow the entry's image for its namespace", () => {
    expect(redirectPrefixes(policy, 'team-a', entry('prepull.local/team-a/app:v1'))).toEqual([
      'https://cdn.example/',
      'https://files.example/team-a/',
    ]);
    expect(redirectPrefixes(policy, 'team-b', entry('prepull.local/team-b/app:v1'))).toEqual([
      'https://files.example/team-b/',
    ]);
  });

  it('are none for another source, an unusable policy or an image no rule allows', () => {
    expect(redirectPrefixes(policy, 'team-a', { image: 'prepull.local/team-a/app:v1' })).toEqual([]);
    expect(
      redirectPrefixes({ ok: false, message: 'x' }, 'team-a', entry('prepull.local/team-a/a:1')),
    ).toEqual([]);
    expect(redirectPrefixes(policy, 'team-a', entry('nginx'))).toEqual([]);
  });
});
