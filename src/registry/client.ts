/**
 * The OCI distribution client: a tag to the digest the registry serves
 * (`HEAD` on the manifest, `GET` when the answer has no digest), and a digest
 * to the platforms it offers (an index's entries, or a lone manifest's config).
 * Authentication is basic or the bearer token flow, whichever the registry's
 * `WWW-Authenticate` asks for, with each matching credential tried in the
 * kubelet's order. What a digest names never changes, so descriptions are
 * cached by digest. I/O (through {@link RegistryHttp}).
 */
import { createHash } from 'node:crypto';
import { type ImageReference, isDigest, repositoryOf } from '../image/reference.ts';
import type { Clock } from '../runtime/clock.ts';
import { type Challenge, parseWwwAuthenticate, pullScope } from './challenge.ts';
import { type RegistryEndpoint, type RegistryTlsOptions, registryEndpoint } from './endpoint.ts';
import {
  RegistryInvalidResponseError,
  RegistryNotFoundError,
  RegistryUnauthorizedError,
  RegistryUnavailableError,
  registryMessage,
} from './errors.ts';
import { type HttpRequest, type HttpResponse, RegistryHttp } from './http.ts';
import { credentialFingerprint, type RegistryCredential } from './keyring.ts';
import {
  configPlatform,
  indexPlatforms,
  MANIFEST_ACCEPT,
  MalformedManifestError,
  manifestConfig,
  manifestKind,
  type Platform,
} from './manifest.ts';
import { defaultRetryOptions, type RetryOptions } from './retry.ts';
import { parseTokenResponse, TokenCache } from './token-cache.ts';

/** Construction options; only the clock is required. */
export interface RegistryClientOptions {
  clock: Clock;
  /** For backoff jitter; `Math.random` by default. */
  random?: () => number;
  tls?: RegistryTlsOptions;
  retry?: Partial<RetryOptions>;
  /** Per request attempt. Default 15 s. */
  timeoutMs?: number;
  userAgent?: string;
}

/** What a tag (or digest) names at the registry now. */
export interface ResolvedManifest {
  /** `sha256:…` of the manifest or index. */
  digest: string;
  kind: 'index' | 'manifest';
  mediaType: string;
}

/** The platforms behind a digest: an index's entries, or the one platform of a lone manifest's config. */
export interface ImageDescription extends ResolvedManifest {
  platforms: Platform[];
}

const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
const CONFIG_MAX_BYTES = 8 * 1024 * 1024;
const DESCRIPTION_CACHE_MAX = 2000;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function basicAuth(c: RegistryCredential): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

function secretsOf(c: RegistryCredential | undefined): string[] {
  return c ? [c.password, basicAuth(c).slice(6)] : [];
}

/** The challenge to answer: bearer over basic, as containerd prefers it. */
function pickChallenge(header: string | undefined): Challenge | undefined {
  const challenges = parseWwwAuthenticate(header ?? '');
  return (
    challenges.find((c) => c.scheme === 'bearer' && c.params.realm) ??
    challenges.find((c) => c.scheme === 'basic')
  );
}

/** An OCI distribution client with pooled connections; share one per process. */
export class RegistryClient {
  readonly #http: RegistryHttp;
  readonly #tls: RegistryTlsOptions;
  readonly #tokens: TokenCache;
  /** The last challenge each registry gave, so later requests authenticate up front. */
  readonly #challenges = new Map<string, Challenge>();
  readonly #descriptions = new Map<string, ImageDescription>();
  readonly #describing = new Map<string, Promise<ImageDescription>>();

  constructor(o: RegistryClientOptions) {
    this.#tls = o.tls ?? {};
    this.#tokens = new TokenCache(o.clock);
    this.#http = new RegistryHttp({
      clock: o.clock,
      random: o.random ?? Math.random,
      tls: this.#tls,
      retry: { ...defaultRetryOptions, ...o.retry },
      timeoutMs: o.timeoutMs ?? 15_000,
      userAgent: o.userAgent ?? 'prepull',
    });
  }

  /** Closes pooled connections. */
  close(): Promise<void> {
    return this.#http.close();
  }

  /**
   * The digest `ref` names now. A reference with a digest is not resolved:
   * its digest is the answer (its kind is then read by {@link describe}).
   * One `HEAD` when the registry sends `Docker-Content-Digest`, else a `GET`.
   */
  async resolve(ref: ImageReference, credentials: readonly RegistryCredential[]): Promise<ResolvedManifest> {
    const endpoint = registryEndpoint(ref.domain, this.#tls);
    const reference = ref.tag ?? ref.digest!;
    const path = `/v2/${ref.path}/manifests/${reference}`;
    const what = `${repositoryOf(ref)}:${reference}`;
    const head = await this.#authorized(endpoint, ref.path, 'HEAD', path, MANIFEST_ACCEPT, credentials);
    if (head.response.status === 200) {
      const digest = head.response.headers['docker-content-digest'];
      const kind = manifestKind(head.response.headers['content-type']);
      if (digest && isDigest(digest) && kind) {
        return { digest, kind, mediaType: head.response.headers['content-type']!.split(';')[0]!.trim() };
      }
    }
    // No digest in the HEAD answer, or an error whose message only a GET carries.
    const get = await this.#authorized(endpoint, ref.path, 'GET', path, MANIFEST_ACCEPT, credentials);
    this.#check(endpoint, get.response, what, get.credential);
    const manifest = this.#readManifest(endpoint, get.response, what);
    const header = get.response.headers['docker-content-digest'];
    if (header && header !== manifest.digest) {
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${what}: the registry names digest ${header} but its content hashes to ${manifest.digest}`,
      );
    }
    return manifest;
  }

  /**
   * The platforms behind `digest` in `ref`'s repository. Cached: a digest's
   * content never changes (the cache is per repository and credentials, so
   * it never answers a caller the registry would refuse).
   */
  describe(
    ref: ImageReference,
    digest: string,
    credentials: readonly RegistryCredential[],
  ): Promise<ImageDescription> {
    // Per credentials too: an answer one caller was allowed to read is never handed to another.
    const key = `${repositoryOf(ref)}@${digest} ${credentialFingerprint(credentials)}`;
    const cached = this.#descriptions.get(key);
    if (cached) return Promise.resolve(cached);
    const running = this.#describing.get(key);
    if (running) return running;
    const promise = this.#describe(ref, digest, credentials).then(
      (description) => {
        this.#describing.delete(key);
        this.#descriptions.set(key, description);
        while (this.#descriptions.size > DESCRIPTION_CACHE_MAX) {
          this.#descriptions.delete(this.#descriptions.keys().next().value!);
        }
        return description;
      },
      (err: unknown) => {
        this.#describing.delete(key);
        throw err;
      },
    );
    this.#describing.set(key, promise);
    return promise;
  }

  /** {@link resolve} then {@link describe}: the digest a reference names and its platforms. */
  async inspect(ref: ImageReference, credentials: readonly RegistryCredential[]): Promise<ImageDescription> {
    const digest = ref.digest ?? (await this.resolve(ref, credentials)).digest;
    return this.describe(ref, digest, credentials);
  }

  async #describe(
    ref: ImageReference,
    digest: string,
    credentials: readonly RegistryCredential[],
  ): Promise<ImageDescription> {
    const endpoint = registryEndpoint(ref.domain, this.#tls);
    const what = `${repositoryOf(ref)}@${digest}`;
    const path = `/v2/${ref.path}/manifests/${digest}`;
    const got = await this.#authorized(endpoint, ref.path, 'GET', path, MANIFEST_ACCEPT, credentials);
    this.#check(endpoint, got.response, what, got.credential);
    const manifest = this.#readManifest(endpoint, got.response, what);
    if (manifest.digest !== digest) {
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${what}: the registry served content that hashes to ${manifest.digest}`,
      );
    }
    const body = got.response.body.toString('utf8');
    try {
      if (manifest.kind === 'index') return { ...manifest, platforms: indexPlatforms(body) };
      const config = manifestConfig(body);
      const blobPath = `/v2/${ref.path}/blobs/${config.digest}`;
      const blob = await this.#authorized(
        endpoint,
        ref.path,
        'GET',
        blobPath,
        '*/*',
        credentials,
        CONFIG_MAX_BYTES,
      );
      this.#check(endpoint, blob.response, `${repositoryOf(ref)} config ${config.digest}`, blob.credential);
      if (sha256(blob.response.body) !== config.digest) {
        throw new RegistryInvalidResponseError(
          endpoint.registry,
          `${what}: its config does not match its digest`,
        );
      }
      return { ...manifest, platforms: [configPlatform(blob.response.body.toString('utf8'))] };
    } catch (err) {
      if (err instanceof MalformedManifestError) {
        throw new RegistryInvalidResponseError(endpoint.registry, `${what}: ${err.message}`, undefined, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** The digest and kind of a manifest body; the kind from Content-Type, else from the body's own mediaType. */
  #readManifest(endpoint: RegistryEndpoint, res: HttpResponse, what: string): ResolvedManifest {
    let mediaType = res.headers['content-type']?.split(';')[0]?.trim() ?? '';
    let kind = manifestKind(mediaType);
    if (!kind) {
      try {
        const declared = (JSON.parse(res.body.toString('utf8')) as { mediaType?: unknown }).mediaType;
        if (typeof declared === 'string' && manifestKind(declared)) {
          mediaType = declared;
          kind = manifestKind(declared);
        }
      } catch {
        // reported below
      }
    }
    if (!kind) {
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${what}: unsupported manifest media type ${JSON.stringify(mediaType)} (Docker schema 1 and other formats are not pulled)`,
      );
    }
    return { digest: sha256(res.body), kind, mediaType };
  }

  /** Throws the coded error for a final answer that is not a success. */
  #check(
    endpoint: RegistryEndpoint,
    res: HttpResponse,
    what: string,
    credential: RegistryCredential | undefined,
    answeredBy = endpoint.registry,
  ) {
    if (res.status >= 200 && res.status < 300) return;
    const said = registryMessage(res.body.toString('utf8'), secretsOf(credential));
    const message = `${answeredBy} answered HTTP ${res.status} for ${what}${said ? `: ${said}` : ''}`;
    if (res.status === 401 || res.status === 403) {
      throw new RegistryUnauthorizedError(
        endpoint.registry,
        credential ? message : `${message} (no pull secret matched this registry)`,
        res.status,
      );
    }
    if (res.status === 404) throw new RegistryNotFoundError(endpoint.registry, message, res.status);
    if (res.status >= 500) throw new RegistryUnavailableError(endpoint.registry, message, res.status);
    throw new RegistryInvalidResponseError(endpoint.registry, message, res.status);
  }

  /**
   * Sends a request with each credential in turn (the kubelet's order) until
   * one is not refused; anonymous when there are none. Returns the last
   * answer and the credential that got it.
   */
  async #authorized(
    endpoint: RegistryEndpoint,
    repository: string,
    method: HttpRequest['method'],
    path: string,
    accept: string,
    credentials: readonly RegistryCredential[],
    maxBodyBytes = MANIFEST_MAX_BYTES,
  ): Promise<{ response: HttpResponse; credential: RegistryCredential | undefined }> {
    const candidates = credentials.length > 0 ? credentials : [undefined];
    let last: { response: HttpResponse; credential: RegistryCredential | undefined } | undefined;
    for (const credential of candidates) {
      const req: HttpRequest = {
        method,
        path,
        headers: { accept },
        maxBodyBytes,
        secrets: secretsOf(credential),
      };
      const response = await this.#withAuth(endpoint, repository, req, credential);
      last = { response, credential };
      if (response.status !== 401 && response.status !== 403) break;
    }
    return last!;
  }

  /** One request under one credential: authenticates up front when the registry's scheme is known, else on its 401. */
  async #withAuth(
    endpoint: RegistryEndpoint,
    repository: string,
    req: HttpRequest,
    credential: RegistryCredential | undefined,
  ): Promise<HttpResponse> {
    const send = (authorization: string | undefined) =>
      this.#http.send(endpoint, {
        ...req,
        headers: { ...req.headers, ...(authorization ? { authorization } : {}) },
      });
    const known = this.#challenges.get(endpoint.apiHost);
    const sent = known
      ? await this.#authorization(endpoint, known, repository, credential, false)
      : undefined;
    const res = await send(sent);
    if (res.status !== 401) return res;
    const challenge = pickChallenge(res.headers['www-authenticate']);
    if (!challenge) return res;
    this.#challenges.set(endpoint.apiHost, challenge);
    // A token we sent may have been revoked or be of the wrong scope: fetch a fresh one, once.
    const fresh = await this.#authorization(endpoint, challenge, repository, credential, sent !== undefined);
    if (!fresh || (fresh === sent && challenge.scheme === 'basic')) return res;
    return send(fresh);
  }

  /** The Authorization header for `challenge`, fetching a bearer token when none is cached. */
  async #authorization(
    endpoint: RegistryEndpoint,
    challenge: Challenge,
    repository: string,
    credential: RegistryCredential | undefined,
    refresh: boolean,
  ): Promise<string | undefined> {
    if (challenge.scheme === 'basic') return credential ? basicAuth(credential) : undefined;
    const scope = pullScope(repository);
    const key = TokenCache.key(
      endpoint.apiHost,
      scope,
      credentialFingerprint(credential ? [credential] : []),
    );
    if (refresh) this.#tokens.delete(key);
    const cached = this.#tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const token = await this.#fetchToken(endpoint, challenge, scope, credential);
    this.#tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  /** The token flow: GET realm?service=…&scope=…, with basic auth when there is a credential. */
  async #fetchToken(
    endpoint: RegistryEndpoint,
    challenge: Challenge,
    scope: string,
    credential: RegistryCredential | undefined,
  ) {
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm!);
    } catch {
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${endpoint.registry}: its token realm is not a URL`,
      );
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && endpoint.insecure)) {
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${endpoint.registry}: its token realm ${realm.origin} is not HTTPS (list the registry as insecure to allow it)`,
      );
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', scope);
    // The realm's TLS is checked unless it is listed as insecure itself, or is an insecure registry's own host.
    const listed = registryEndpoint(realm.host, this.#tls);
    const sameHost = realm.hostname === new URL(`https://${endpoint.apiHost}`).hostname;
    const realmEndpoint: RegistryEndpoint = {
      ...listed,
      insecure: listed.insecure || (sameHost && endpoint.insecure),
    };
    const res = await this.#http.send(realmEndpoint, {
      method: 'GET',
      path: realm.toString(),
      headers: {
        accept: 'application/json',
        ...(credential ? { authorization: basicAuth(credential) } : {}),
      },
      maxBodyBytes: 1024 * 1024,
      secrets: secretsOf(credential),
    });
    if (res.status === 200) {
      const token = parseTokenResponse(res.body.toString('utf8'));
      if (token) return token;
      throw new RegistryInvalidResponseError(
        endpoint.registry,
        `${realm.origin}: the token server sent no token`,
      );
    }
    this.#check(
      endpoint,
      res,
      `a ${scope} token for ${endpoint.registry}`,
      credential,
      `token server ${realm.origin}`,
    );
    throw new RegistryInvalidResponseError(
      endpoint.registry,
      `${realm.origin}: unexpected HTTP ${res.status}`,
    );
  }
}
