/**
 * The registry client against real registries: the harness's
 * password-protected TLS registry (basic auth), a registry of this tier's own
 * that it stops, and a registry with `auth: token` whose bearer tokens come
 * from distribution's token server. Needs no node, so it also runs on a
 * second cluster (PREPULL_TEST_REAL_NODE=0).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseImageReference, repositoryOf } from '../../src/image/reference.ts';
import {
  Keyring,
  platformMismatch,
  RegistryClient,
  type RegistryClientOptions,
  RegistryNotFoundError,
  RegistryUnauthorizedError,
  RegistryUnavailableError,
  SharedResolver,
} from '../../src/registry/index.ts';
import { FakeClock, systemClock } from '../../src/runtime/clock.ts';
import { buildOciImage, OCI_MANIFEST } from '../harness/images.ts';
import { pushBlob, pushManifest, startRegistry } from '../harness/registry.ts';
import { startTokenRegistry, type TokenRegistry } from '../harness/token-registry.ts';
import type { TestImageName } from '../harness/types.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const caBundle = readFileSync(registry.caFile, 'utf8');
const ca = { cert: registry.caFile, key: registry.caFile.replace(/\.crt$/, '.key') };
const tierDir = join(cluster.dir, 'registry-tier');
const amd64 = { os: 'linux', architecture: 'amd64' };
const credentials = [{ username: registry.username, password: registry.password }];

const clients: RegistryClient[] = [];
function newClient(o: Partial<RegistryClientOptions> = {}): RegistryClient {
  const client = new RegistryClient({
    clock: systemClock,
    tls: { caBundle },
    retry: { retries: 1, baseMs: 100 },
    timeoutMs: 10_000,
    ...o,
  });
  clients.push(client);
  return client;
}
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

const ref = (name: TestImageName) => parseImageReference(registry.images[name].ref);
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => err,
  );

describe('the harness registry: basic auth over TLS from the cluster CA', () => {
  it('resolves each test image tag to the digest the harness pushed, by HEAD', async () => {
    const client = newClient();
    for (const name of Object.keys(registry.images) as TestImageName[]) {
      const resolved = await client.resolve(ref(name), credentials);
      expect(resolved.digest, name).toBe(registry.images[name].digest);
      expect(resolved.kind, name).toBe(name === 'noamd64index' ? 'index' : 'manifest');
    }
  });

  it('knows the platforms before any pull: the no-amd64 index and the arm64-only manifest do not run on amd64', async () => {
    const client = newClient();
    const index = await client.inspect(ref('noamd64index'), credentials);
    expect(index.platforms).toEqual([
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 's390x' },
    ]);
    expect(platformMismatch(index.platforms, amd64)).toBe(
      'the image offers linux/arm64, linux/s390x, not linux/amd64',
    );
    const lone = await client.inspect(ref('arm64only'), credentials);
    expect(lone).toMatchObject({ kind: 'manifest', platforms: [{ os: 'linux', architecture: 'arm64' }] });
    expect(platformMismatch(lone.platforms, amd64)).toBe('the image offers linux/arm64, not linux/amd64');
    const hold = await client.inspect(ref('hold'), credentials);
    expect(platformMismatch(hold.platforms, amd64)).toBeUndefined();
  });

  it("takes its credentials from a kubectl-made pull secret, by the kubelet's matching", async () => {
    const name = 'registry-tier-pull';
    kubectl(cluster, ['delete', 'secret', name, '--ignore-not-found']);
    const created = kubectl(cluster, [
      'create',
      'secret',
      'docker-registry',
      name,
      `--docker-server=https://${registry.host}/v2/`,
      `--docker-username=${registry.username}`,
      `--docker-password=${registry.password}`,
    ]);
    expect(created.status, created.stderr).toBe(0);
    const got = kubectl(cluster, ['get', 'secret', name, '-o', 'json']);
    const secret = JSON.parse(got.stdout) as { type: string; data: Record<string, string> };
    const keyring = new Keyring([
      {
        name,
        type: secret.type,
        data: Object.fromEntries(
          Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        ),
      },
    ]);
    const found = keyring.lookup(repositoryOf(ref('hold')));
    expect(found).toEqual(credentials);
    await expect(newClient().resolve(ref('hold'), found)).resolves.toMatchObject({
      digest: registry.images.hold.digest,
    });
    kubectl(cluster, ['delete', 'secret', name]);
  });

  it('a wrong password is Unauthorized, with the registry message and without the password', async () => {
    const err = await failure(
      newClient().resolve(ref('hold'), [{ username: registry.username, password: 'wrong-pw-1' }]),
    );
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toContain('UNAUTHORIZED: authentication required');
    expect((err as Error).message).not.toContain('wrong-pw-1');
  });

  it('a missing tag is NotFound, with the registry message', async () => {
    const missing = parseImageReference(`${registry.host}/prepull-test/hold:no-such-tag`);
    const err = await failure(newClient().resolve(missing, credentials));
    expect(err).toBeInstanceOf(RegistryNotFoundError);
    expect((err as Error).message).toContain('MANIFEST_UNKNOWN: manifest unknown');
  });

  it('without the CA bundle the registry is not trusted; listed as insecure it is reached unverified', async () => {
    const err = await failure(newClient({ tls: {} }).resolve(ref('hold'), credentials));
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toMatch(/certificate/i);
    await expect(
      newClient({ tls: { insecureRegistries: [registry.host] } }).resolve(ref('hold'), credentials),
    ).resolves.toMatchObject({ digest: registry.images.hold.digest });
  });
});

describe('a registry stopped between refreshes', () => {
  it('gives RegistryUnavailable once the answer it had is older than the interval', async () => {
    const own = await (async () => {
      mkdirSync(join(tierDir, 'logs'), { recursive: true });
      return startRegistry({ dir: tierDir, port: cluster.sparePorts[2]!, ca });
    })();
    try {
      const image = buildOciImage({
        workDir: join(tierDir, 'images'),
        files: [{ path: 'data/x.txt', content: 'stopped registry\n', mode: 0o644 }],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(own, 'tier/app', blob);
      const digest = await pushManifest(own, 'tier/app', 'v1', OCI_MANIFEST, image.manifest);
      const client = newClient({ retry: { retries: 1, baseMs: 50 } });
      const clock = new FakeClock();
      const resolver = new SharedResolver({ clock, fetch: (t) => client.resolve(t.ref, t.credentials) });
      const target = {
        ref: parseImageReference(`${own.host}/tier/app:v1`),
        credentials: [{ username: own.username, password: own.password }],
      };
      await expect(resolver.get(target, 60_000)).resolves.toMatchObject({ digest });
      await own.stop();
      // Within the interval the answer stands (nodes on it stay as they are) ...
      clock.advance(30_000);
      await expect(resolver.get(target, 60_000)).resolves.toMatchObject({ digest });
      // ... after it, the registry is asked again and cannot be reached.
      clock.advance(30_000);
      const err = await failure(resolver.get(target, 60_000));
      expect(err).toBeInstanceOf(RegistryUnavailableError);
      expect(err).toMatchObject({ reason: 'RegistryUnavailable' });
      expect((err as Error).message).toContain('ECONNREFUSED');
    } finally {
      await own.stop();
    }
  });
});

describe('a registry with bearer tokens from a real token server', () => {
  let tokens: TokenRegistry;
  const copied: Partial<Record<TestImageName, string>> = {};
  const tokenRef = (name: TestImageName) => parseImageReference(`${tokens.host}/prepull/${name}:v1`);
  /**
   * Tokens the token server issued to this client (user agent `prepull`), as
   * its log says. The log reaches the file through a pipe, so a marker
   * request is sent first and waited for: every line before it is then there.
   */
  const issued = async () => {
    const marker = `log-marker-${randomBytes(4).toString('hex')}`;
    await new Promise<void>((resolve, reject) => {
      const req = request(tokens.realm, { ca: caBundle, headers: { 'user-agent': marker } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    let log = '';
    await eventually(() => {
      log = readFileSync(tokens.tokenServerLog, 'utf8');
      expect(log).toContain(marker);
    });
    return log
      .split('\n')
      .filter((l) => l.includes('get token complete') && /useragent=prepull(\s|$)/.test(l)).length;
  };

  beforeAll(async () => {
    tokens = await startTokenRegistry({
      dir: tierDir,
      registryPort: cluster.sparePorts[0]!,
      tokenServerPort: cluster.sparePorts[1]!,
      ca,
    });
    // skopeo (an independent client) pushes, doing the token flow itself.
    const certs = join(tierDir, 'certs');
    mkdirSync(certs, { recursive: true });
    copyFileSync(registry.caFile, join(certs, 'ca.crt'));
    for (const name of ['hold', 'noamd64index'] as const) {
      execFileSync(
        'skopeo',
        [
          'copy',
          '--insecure-policy',
          '--all',
          '--preserve-digests',
          `--src-creds=${registry.username}:${registry.password}`,
          `--dest-creds=${tokens.username}:${tokens.password}`,
          `--src-cert-dir=${certs}`,
          `--dest-cert-dir=${certs}`,
          `docker://${registry.images[name].ref}`,
          `docker://${tokens.host}/prepull/${name}:v1`,
        ],
        { stdio: 'pipe', timeout: 120_000 },
      );
      copied[name] = registry.images[name].digest;
    }
  });
  afterAll(async () => {
    await tokens?.stop();
  });

  it('resolves tags and platforms with a bearer token, fetching one token per scope and reusing it', async () => {
    const client = newClient();
    const user = [{ username: tokens.username, password: tokens.password }];
    const before = await issued();
    for (let i = 0; i < 3; i++) {
      await expect(client.resolve(tokenRef('hold'), user)).resolves.toMatchObject({ digest: copied.hold });
    }
    expect((await issued()) - before).toBe(1);
    const index = await client.inspect(tokenRef('noamd64index'), user);
    expect(index).toMatchObject({ digest: copied.noamd64index, kind: 'index' });
    expect(index.platforms.map((p) => p.architecture)).toEqual(['arm64', 's390x']);
    expect((await issued()) - before).toBe(2);
  });

  it("a password the token server refuses is Unauthorized, with the token server's message", async () => {
    const err = await failure(
      newClient().resolve(tokenRef('hold'), [{ username: tokens.username, password: 'wrong-pw-2' }]),
    );
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toContain('UNAUTHORIZED: authentication required');
    expect((err as Error).message).not.toContain('wrong-pw-2');
  });

  it('a repository the token does not grant is Unauthorized', async () => {
    const other = parseImageReference(`${tokens.host}/someone-else/app:v1`);
    const err = await failure(
      newClient().resolve(other, [{ username: tokens.username, password: tokens.password }]),
    );
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
  });

  it('no credentials at all is Unauthorized, saying that no pull secret matched', async () => {
    const err = await failure(newClient().resolve(tokenRef('hold'), []));
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toContain('no pull secret matched');
  });
});
