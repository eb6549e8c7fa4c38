/**
 * One registry request over undici's pooled connections, made robust: a
 * timeout per attempt on the injected clock, retries of network failures,
 * 429 and 5xx with jittered backoff, `Retry-After` honoured, redirects
 * followed (blob storage often redirects; credentials never follow to another
 * origin), a size cap on bodies, and plain HTTP for insecure registries that
 * do not speak TLS. I/O.
 */
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import type { Clock } from '../runtime/clock.ts';
import type { RegistryEndpoint, RegistryTlsOptions } from './endpoint.ts';
import { RegistryInvalidResponseError, RegistryUnavailableError, registryMessage } from './errors.ts';
import { backoffDelay, isRetryableStatus, parseRetryAfter, type RetryOptions } from './retry.ts';

/** What the transport needs: time, randomness for jitter, and its limits. */
export interface HttpOptions {
  clock: Clock;
  random: () => number;
  tls: RegistryTlsOptions;
  retry: RetryOptions;
  /** Per attempt, headers and body together. */
  timeoutMs: number;
  userAgent: string;
}

/** A registry's answer, headers lower-cased (first value of each). */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The URL that answered, after redirects. */
  url: string;
}

/** One request: a path on the registry (`/v2/…`), or a whole URL (a token realm), and its headers. */
export interface HttpRequest {
  method: 'GET' | 'HEAD';
  path: string;
  headers: Record<string, string>;
  /** Bodies larger than this are refused (manifests are at most 4 MiB by the distribution spec). */
  maxBodyBytes: number;
  /** Values to mask in any message built from the answer (the credentials sent). */
  secrets: readonly string[];
}

const MAX_REDIRECTS = 5;
/** Connection errors that mean "this port speaks no TLS": an insecure registry is then asked over HTTP. */
const NOT_TLS_CODES = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET' && !code.startsWith('UND_ERR_ABORT'))
      return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function describeFailure(err: unknown): string {
  if (err instanceof AttemptTimeout) return err.message;
  const code = errorCode(err);
  const cause = (err as { cause?: { message?: string } })?.cause?.message;
  const message = err instanceof Error ? err.message : String(err);
  return [code, cause ?? message].filter(Boolean).join(': ');
}

/** Pooled, keep-alive connections to registries; one per process is enough. */
export class RegistryHttp {
  readonly #o: HttpOptions;
  readonly #verified: Agent;
  readonly #unverified: Agent;
  /** Insecure registries found to speak plain HTTP. */
  readonly #plainHttp = new Set<string>();

  constructor(options: HttpOptions) {
    this.#o = options;
    const ca = options.tls.caBundle ? [...rootCertificates, options.tls.caBundle] : undefined;
    const pool = { keepAliveTimeout: 30_000, connections: 16 };
    this.#verified = new Agent({ ...pool, connect: ca ? { ca } : {} });
    this.#unverified = new Agent({ ...pool, connect: { rejectUnauthorized: false } });
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await Promise.all([this.#verified.close(), this.#unverified.close()]);
  }

  /**
   * Sends `req`, retrying what may pass. Resolves with any final answer that
   * is not retryable (including 401 and 404, for the caller to classify);
   * throws {@link RegistryUnavailableError} when the registry cannot be asked.
   */
  async send(endpoint: RegistryEndpoint, req: HttpRequest): Promise<HttpResponse> {
    const { retry, clock } = this.#o;
    let failure = '';
    for (let attempt = 0; ; attempt++) {
      let waitMs: number | undefined;
      let status: number | undefined;
      try {
        const res = await this.#follow(endpoint, req);
        if (!isRetryableStatus(res.status)) return res;
        status = res.status;
        const retryAfter = parseRetryAfter(res.headers['retry-after'], clock.now());
        const said = registryMessage(res.body.toString('utf8'), req.secrets);
        failure = `HTTP ${res.status}${said ? `: ${said}` : ''}`;
        if (retryAfter !== undefined && retryAfter > retry.maxRetryAfterMs) {
          throw new RegistryUnavailableError(
            endpoint.registry,
            `${endpoint.registry} answered ${failure}, retry after ${Math.ceil(retryAfter / 1000)} s`,
            res.status,
            { retryAfterMs: retryAfter },
          );
        }
        if (attempt >= retry.retries) {
          throw new RegistryUnavailableError(
            endpoint.registry,
            `${endpoint.registry} answered ${failure}`,
            res.status,
            {
              ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
            },
          );
        }
        waitMs = retryAfter;
      } catch (err) {
        if (err instanceof RegistryUnavailableError || err instanceof RegistryInvalidResponseError) throw err;
        failure = describeFailure(err);
        if (attempt >= retry.retries) {
          throw new RegistryUnavailableError(
            endpoint.registry,
            `${endpoint.registry} unreachable: ${failure}`,
            status,
            {
              cause: err,
            },
          );
        }
      }
      await this.#sleep(waitMs ?? backoffDelay(attempt, retry, this.#o.random()));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#o.clock.schedule(ms, resolve));
  }

  /** One attempt, following redirects. */
  async #follow(endpoint: RegistryEndpoint, req: HttpRequest): Promise<HttpResponse> {
    const absolute = /^https?:\/\//.test(req.path);
    let url = absolute
      ? req.path
      : `${this.#plainHttp.has(endpoint.apiHost) ? 'http' : 'https'}://${endpoint.apiHost}${req.path}`;
    let headers = req.headers;
    for (let hop = 0; ; hop++) {
      let res: HttpResponse;
      try {
        res = await this.#once(endpoint, url, req, headers);
      } catch (err) {
        // An insecure registry without TLS: ask it again over plain HTTP, and remember.
        const code = errorCode(err);
        if (
          endpoint.insecure &&
          !absolute &&
          url.startsWith('https://') &&
          hop === 0 &&
          code &&
          NOT_TLS_CODES.has(code)
        ) {
          this.#plainHttp.add(endpoint.apiHost);
          url = `http://${endpoint.apiHost}${req.path}`;
          res = await this.#once(endpoint, url, req, headers);
        } else throw err;
      }
      const location = res.headers.location;
      if (res.status < 300 || res.status > 399 || res.status === 304 || !location) return res;
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryInvalidResponseError(endpoint.registry, `${endpoint.registry}: too many redirects`);
      }
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) {
        const { authorization: _, ...rest } = headers;
        headers = rest;
      }
      url = next.toString();
    }
  }

  async #once(
    endpoint: RegistryEndpoint,
    url: string,
    req: HttpRequest,
    headers: Record<string, string>,
  ): Promise<HttpResponse> {
    const abort = new AbortController();
    const timer = this.#o.clock.schedule(this.#o.timeoutMs, () =>
      abort.abort(new AttemptTimeout(`${endpoint.registry}: no answer within ${this.#o.timeoutMs} ms`)),
    );
    try {
      const res = await request(url, {
        method: req.method,
        headers: { 'user-agent': this.#o.userAgent, ...headers },
        dispatcher: endpoint.insecure ? this.#unverified : this.#verified,
        signal: abort.signal,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > req.maxBodyBytes) {
          res.body.destroy();
          throw new RegistryInvalidResponseError(
            endpoint.registry,
            `${endpoint.registry}: the answer to ${req.method} ${req.path} exceeds ${req.maxBodyBytes} bytes`,
            res.statusCode,
          );
        }
        chunks.push(chunk as Buffer);
      }
      const flat: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        // Several WWW-Authenticate headers are one list of challenges.
        if (value !== undefined) flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { status: res.statusCode, headers: flat, body: Buffer.concat(chunks), url };
    } catch (err) {
      if (abort.signal.aborted && abort.signal.reason instanceof AttemptTimeout) throw abort.signal.reason;
      throw err;
    } finally {
      timer.cancel();
    }
  }
}
