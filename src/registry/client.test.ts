import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseImageReference } from '../image/reference.ts';
import { type Clock, FakeClock, systemClock } from '../runtime/clock.ts';
import { RegistryClient, type RegistryClientOptions } from './client.ts';
import {
  RegistryInvalidResponseError,
  RegistryNotFoundError,
  RegistryUnauthorizedError,
  RegistryUnavailableError,
} from './errors.ts';
import { MediaType } from './manifest.ts';

// Responses below are recorded from distribution's registry (the harness's
// docker-registry 2.8), its token server, and Docker Hub's documented
// answers; a real HTTP server on loopback serves them.

const sha256 = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

const config = JSON.stringify({
  architecture: 'arm64',
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [] },
});
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: sha256(config),
    size: config.length,
  },
  layers: [],
});
const index = JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.DockerManifestList,
  manifests: [
    {
      mediaType: MediaType.DockerManifest,
      digest: sha256('a'),
      size: 1,
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: MediaType.DockerManifest,
      digest: sha256('b'),
      size: 1,
      platform: { architecture: 'arm', os: 'linux', variant: 'v7' },
    },
    {
      mediaType: MediaType.OciManifest,
      digest: sha256('c'),
      size: 1,
      platform: { architecture: 'unknown', os: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
  ],
});
const MANIFEST_UNKNOWN = JSON.stringify({
  errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v9' } }],
});
const UNAUTHORIZED = JSON.stringify({
  errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }],
});
const TOO_MANY = JSON.stringify({
  errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }],
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
interface Seen {
  method: string;
  url: string;
  authorization?: string;
  accept?: string;
}

const servers: Server[] = [];
const clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A registry on loopback answering with `handler`; records every request. */
async function serve(handler: Handler): Promise<{ host: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({
      method: req.method!,
      url: req.url!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
    });
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** A clock whose timers below a minute fire at once, recording how long each asked to wait. */
function instantClock(now: () => number = () => 0): Clock & { waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    now,
    schedule(ms, fn) {
      let cancelled = false;
      if (ms < 60_000) {
        waits.push(ms);
        setImmediate(() => cancelled || fn());
      }
      return { cancel: () => (cancelled = true) };
    },
  };
}

function client(host: string, o: Partial<RegistryClientOptions> = {}): RegistryClient {
  const c = new RegistryClient({
    clock: instantClock(),
    random: () => 0.5,
    tls: { insecureRegistries: [host] },
    timeoutMs: 120_000,
    ...o,
  });
  clients.push(c);
  return c;
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const alice = { username: 'alice', password: 's3cret-password' };

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Serves `manifest`, `index` and the config under `team/app`, behind basic auth for alice. */
function basicRegistry(o: { digestHeader?: boolean } = {}): Handler {
  return (req, res) => {
    if (req.headers.authorization !== basic(alice.username, alice.password)) {
      return send(res, 401, UNAUTHORIZED, { 'www-authenticate': 'Basic realm="Registry Realm"' });
    }
    const [body, type] =
      req.url === '/v2/team/app/manifests/multi' || req.url === `/v2/team/app/manifests/${sha256(index)}`
        ? [index, MediaType.DockerManifestList]
        : req.url === '/v2/team/app/manifests/v1' || req.url === `/v2/team/app/manifests/${sha256(manifest)}`
          ? [manifest, MediaType.OciManifest]
          : req.url === `/v2/team/app/blobs/${sha256(config)}`
            ? [config, 'application/octet-stream']
            : [undefined, undefined];
    if (!body) return send(res, 404, MANIFEST_UNKNOWN, { 'content-type': 'application/json' });
    send(res, 200, body, {
      'content-type': type!,
      ...(o.digestHeader === false ? {} : { 'docker-content-digest': sha256(body) }),
    });
  };
}

describe('RegistryClient against a basic-auth registry', () => {
  it('resolves a tag with one HEAD after the challenge, and sends credentials up front next time', async () => {
    const { host, seen } = await serve(basicRegistry());
    const registry = client(host);
    const ref = parseImageReference(`${host}/team/app:multi`);
    await expect(registry.resolve(ref, [alice])).resolves.toEqual({
      digest: sha256(index),
      kind: 'index',
      mediaType: MediaType.DockerManifestList,
    });
    expect(seen.map((s) => [s.method, s.authorization !== undefined])).toEqual([
      ['HEAD', false],
      ['HEAD', true],
    ]);
    expect(seen[0]!.accept).toBe(
      [
        MediaType.OciIndex,
        MediaType.DockerManifestList,
        MediaType.OciManifest,
        MediaType.DockerManifest,
      ].join(', '),
    );
    seen.length = 0;
    await registry.resolve(parseImageReference(`${host}/team/app:v1`), [alice]);
    expect(seen.map((s) => s.method)).toEqual(['HEAD']);
  });

  it('falls back to GET when HEAD gives no Docker-Content-Digest, and hashes the body', async () => {
    const { host, seen } = await serve(basicRegistry({ digestHeader: false }));
    const resolved = await client(host).resolve(parseImageReference(`${host}/team/app:v1`), [alice]);
    expect(resolved).toEqual({
      digest: sha256(manifest),
      kind: 'manifest',
      mediaType: MediaType.OciManifest,
    });
    expect(seen.map((s) => s.method)).toEqual(['HEAD', 'HEAD', 'GET']);
  });

  it("reads an index's platforms, leaving out attestation manifests, and caches them by digest", async () => {
    const { host, seen } = await serve(basicRegistry());
    const registry = client(host);
    const ref = parseImageReference(`${host}/team/app:multi`);
    const description = await registry.inspect(ref, [alice]);
    expect(description.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ]);
    const requests = seen.length;
    await registry.describe(ref, sha256(index), [alice]);
    expect(seen.length).toBe(requests);
  });

  it("reads a lone manifest's architecture from its config blob", async () => {
    const { host, seen } = await serve(basicRegistry());
    const description = await client(host).inspect(parseImageReference(`${host}/team/app:v1`), [alice]);
    expect(description).toMatchObject({
      kind: 'manifest',
      platforms: [{ os: 'linux', architecture: 'arm64' }],
    });
    expect(seen.at(-1)!.url).toBe(`/v2/team/app/blobs/${sha256(config)}`);
  });

  it('a digest reference is not resolved: describe fetches it by digest', async () => {
    const { host, seen } = await serve(basicRegistry());
    const ref = parseImageReference(`${host}/team/app@${sha256(index)}`);
    await expect(client(host).inspect(ref, [alice])).resolves.toMatchObject({
      digest: sha256(index),
      kind: 'index',
    });
    expect(seen.every((s) => s.url === `/v2/team/app/manifests/${sha256(index)}`)).toBe(true);
  });

  it('a missing tag is NotFound with the registry message (GET after the bodiless HEAD)', async () => {
    const { host } = await serve(basicRegistry());
    const err = await client(host)
      .resolve(parseImageReference(`${host}/team/app:v9`), [alice])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryNotFoundError);
    expect(err).toMatchObject({ reason: 'NotFound', code: 'PREPULL_ERR_REGISTRY_NOT_FOUND', status: 404 });
    expect((err as Error).message).toContain('MANIFEST_UNKNOWN: manifest unknown');
  });

  it('a wrong password is Unauthorized, and the message never holds the password', async () => {
    const { host } = await serve(basicRegistry());
    const wrong = { username: 'alice', password: 'not-the-password' };
    const err = await client(host)
      .resolve(parseImageReference(`${host}/team/app:v1`), [wrong])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toContain('UNAUTHORIZED: authentication required');
    expect((err as Error).message).not.toContain('not-the-password');
  });

  it('no credentials for a private registry is Unauthorized, saying no pull secret matched', async () => {
    const { host } = await serve(basicRegistry());
    const err = await client(host)
      .resolve(parseImageReference(`${host}/team/app:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toContain('no pull secret matched');
  });

  it('tries each matching credential in turn, as the kubelet does', async () => {
    const { host } = await serve(basicRegistry());
    const stale = { username: 'alice', password: 'old' };
    await expect(
      client(host).resolve(parseImageReference(`${host}/team/app:v1`), [stale, alice]),
    ).resolves.toMatchObject({ digest: sha256(manifest) });
  });

  it('refuses a Docker schema 1 manifest with a clear error', async () => {
    const { host } = await serve((_req, res) =>
      send(res, 200, '{"schemaVersion":1}', {
        'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws',
      }),
    );
    const err = await client(host)
      .resolve(parseImageReference(`${host}/old/app:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryInvalidResponseError);
    expect((err as Error).message).toContain('unsupported manifest media type');
  });
});

describe('RegistryClient with the bearer token flow', () => {
  async function tokenRegistry() {
    let issued = 0;
    const auth = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (req.headers.authorization !== basic(alice.username, alice.password)) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="token"' });
        return res.end(
          JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }),
        );
      }
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' });
      // distribution's token server answers with access_token only.
      res.end(
        JSON.stringify({
          access_token: `tok-${issued}-${url.searchParams.get('scope')}-${url.searchParams.get('service')}`,
          expires_in: 300,
        }),
      );
    });
    const registry = await serve((req, res) => {
      const scope = `repository:${req.url!.split('/manifests/')[0]!.slice(4)}:pull`;
      if (
        !req.headers.authorization?.startsWith(`Bearer tok-`) ||
        !req.headers.authorization.includes(scope)
      ) {
        return send(res, 401, UNAUTHORIZED, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer realm="http://${auth.host}/token",service="test-registry",scope="${scope}",error="invalid_token"`,
        });
      }
      send(res, 200, manifest, {
        'content-type': MediaType.OciManifest,
        'docker-content-digest': sha256(manifest),
      });
    });
    return { auth, registry, issued: () => issued };
  }

  it('gets a token for the pull scope and service, sends it, and reuses it until it expires', async () => {
    const { auth, registry, issued } = await tokenRegistry();
    const fake = new FakeClock();
    const c = client(registry.host, { clock: instantClock(() => fake.now()) });
    const ref = parseImageReference(`${registry.host}/team/app:v1`);
    await expect(c.resolve(ref, [alice])).resolves.toMatchObject({ digest: sha256(manifest) });
    expect(auth.seen[0]!.url).toBe('/token?service=test-registry&scope=repository%3Ateam%2Fapp%3Apull');
    expect(registry.seen.at(-1)!.authorization).toBe('Bearer tok-1-repository:team/app:pull-test-registry');
    registry.seen.length = 0;
    await c.resolve(ref, [alice]);
    expect(registry.seen.length).toBe(1);
    expect(issued()).toBe(1);
    // Tokens are per scope: another repository asks for its own.
    await c.resolve(parseImageReference(`${registry.host}/team/other:v1`), [alice]);
    expect(issued()).toBe(2);
    // Past its 300 s (less the margin), the token is fetched anew.
    fake.advance(295_000);
    await c.resolve(ref, [alice]);
    expect(issued()).toBe(3);
  });

  it("a password the token server refuses is Unauthorized with the token server's message", async () => {
    const { registry } = await tokenRegistry();
    const err = await client(registry.host)
      .resolve(parseImageReference(`${registry.host}/team/app:v1`), [
        { username: 'alice', password: 'wrong-one' },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnauthorizedError);
    expect((err as Error).message).toMatch(/token .*UNAUTHORIZED: authentication required/);
    expect((err as Error).message).not.toContain('wrong-one');
  });
});

describe('RegistryClient when the registry is in trouble', () => {
  it('retries 5xx with backoff and succeeds when the registry recovers', async () => {
    let calls = 0;
    const { host } = await serve((_req, res) =>
      ++calls < 3
        ? send(res, 503, 'upstream unavailable')
        : send(res, 200, manifest, {
            'content-type': MediaType.OciManifest,
            'docker-content-digest': sha256(manifest),
          }),
    );
    const clock = instantClock();
    await expect(
      client(host, { clock }).resolve(parseImageReference(`${host}/a/b:v1`), []),
    ).resolves.toMatchObject({
      digest: sha256(manifest),
    });
    // Two backoffs, the second longer; jitter (random 0.5) takes a quarter off each.
    expect(clock.waits).toEqual([188, 375]);
  });

  it('gives RegistryUnavailable with the status and message once the retries are spent', async () => {
    const { host, seen } = await serve((_req, res) => send(res, 500, 'internal error'));
    const err = await client(host, { retry: { retries: 2 } })
      .resolve(parseImageReference(`${host}/a/b:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err).toMatchObject({ reason: 'RegistryUnavailable', status: 500 });
    expect(seen.length).toBe(3);
  });

  it('honours Retry-After on 429, then succeeds', async () => {
    let calls = 0;
    const { host } = await serve((_req, res) =>
      ++calls === 1
        ? send(res, 429, TOO_MANY, { 'retry-after': '7', 'content-type': 'application/json' })
        : send(res, 200, manifest, {
            'content-type': MediaType.OciManifest,
            'docker-content-digest': sha256(manifest),
          }),
    );
    const clock = instantClock();
    await client(host, { clock }).resolve(parseImageReference(`${host}/a/b:v1`), []);
    expect(clock.waits).toEqual([7_000]);
  });

  it('a Retry-After beyond the limit fails at once, carrying it for the caller to honour', async () => {
    const { host, seen } = await serve((_req, res) =>
      send(res, 429, TOO_MANY, { 'retry-after': '3600', 'content-type': 'application/json' }),
    );
    const err = await client(host)
      .resolve(parseImageReference(`${host}/a/b:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err).toMatchObject({ retryAfterMs: 3_600_000, status: 429 });
    // A HEAD answer has no body, and asking a rate-limiting registry again for one would not help.
    expect((err as Error).message).toContain('answered HTTP 429, retry after 3600 s');
    expect(seen.length).toBe(1);
  });

  it('a registry that never answers times out as RegistryUnavailable', async () => {
    const { host } = await serve(() => {
      // never answers
    });
    const err = await client(host, { clock: systemClock, timeoutMs: 200, retry: { retries: 0 } })
      .resolve(parseImageReference(`${host}/a/b:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toContain('no answer within 200 ms');
  });

  it('a closed port is RegistryUnavailable', async () => {
    const { host } = await serve(() => {});
    await new Promise((r) => servers.pop()!.close(r));
    const err = await client(host, { retry: { retries: 1 } })
      .resolve(parseImageReference(`${host}/a/b:v1`), [])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect((err as Error).message).toContain('ECONNREFUSED');
  });

  it('a plain-HTTP registry not listed as insecure is never asked without TLS', async () => {
    const { host, seen } = await serve(basicRegistry());
    const err = await client(host, { tls: {}, retry: { retries: 0 } })
      .resolve(parseImageReference(`${host}/team/app:v1`), [alice])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(seen).toEqual([]);
  });
});

describe('RegistryClient redirects', () => {
  it('follows a blob redirect to another origin without the credentials', async () => {
    const storage = await serve((_req, res) =>
      send(res, 200, config, { 'content-type': 'application/octet-stream' }),
    );
    const { host } = await serve((req, res) => {
      if (req.url === `/v2/team/app/blobs/${sha256(config)}`) {
        res.writeHead(307, { location: `http://${storage.host}/blob?sig=1` });
        return res.end();
      }
      basicRegistry()(req, res);
    });
    const description = await client(host).inspect(parseImageReference(`${host}/team/app:v1`), [alice]);
    expect(description.platforms).toEqual([{ os: 'linux', architecture: 'arm64' }]);
    expect(storage.seen).toEqual([expect.objectContaining({ url: '/blob?sig=1' })]);
    expect(storage.seen[0]!.authorization).toBeUndefined();
  });
});
