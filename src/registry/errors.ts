/**
 * The registry client's coded errors, one class per condition reason. Callers
 * branch on `code` or `reason`, never on message text. Messages carry what the
 * registry itself said, and never a credential or token. Pure.
 */
import { Reason } from '../api/conditions.ts';

/** What every registry error has: a stable code and the condition reason it maps to. */
export abstract class RegistryError extends Error {
  abstract readonly code: string;
  abstract readonly reason: Reason;
  /** The registry host the request went to, e.g. `127.0.0.1:5443`. */
  readonly registry: string;
  /** HTTP status, when the registry answered. */
  readonly status: number | undefined;

  constructor(registry: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.registry = registry;
    this.status = status;
  }
}

/** 401 or 403: no credentials, wrong ones, or no access to the repository. */
export class RegistryUnauthorizedError extends RegistryError {
  readonly code = 'PREPULL_ERR_REGISTRY_UNAUTHORIZED';
  readonly reason = Reason.Unauthorized;
  override readonly name = 'RegistryUnauthorizedError';
}

/** 404: no such repository, tag or digest. */
export class RegistryNotFoundError extends RegistryError {
  readonly code = 'PREPULL_ERR_REGISTRY_NOT_FOUND';
  readonly reason = Reason.NotFound;
  override readonly name = 'RegistryNotFoundError';
}

/**
 * The registry could not be asked: a timeout, a refused connection, a TLS
 * failure, a 5xx, or a 429 past the retries. `retryAfterMs` is the registry's
 * own `Retry-After`, when it gave one, so a caller backs off at least that long.
 */
export class RegistryUnavailableError extends RegistryError {
  readonly code = 'PREPULL_ERR_REGISTRY_UNAVAILABLE';
  readonly reason = Reason.RegistryUnavailable;
  override readonly name = 'RegistryUnavailableError';
  readonly retryAfterMs: number | undefined;

  constructor(
    registry: string,
    message: string,
    status?: number,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(registry, message, status, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The registry answered with something this client cannot use: an unknown
 * media type, a manifest that is not JSON, a digest that does not match the
 * content, a 4xx other than 401, 403, 404 and 429. Retrying does not help
 * until the registry changes.
 */
export class RegistryInvalidResponseError extends RegistryError {
  readonly code = 'PREPULL_ERR_REGISTRY_INVALID_RESPONSE';
  readonly reason = Reason.InvalidRegistryResponse;
  override readonly name = 'RegistryInvalidResponseError';
}

/** Whether a failure may go away by itself (so a caller retries it with backoff). */
export function isTransientRegistryError(err: unknown): boolean {
  return err instanceof RegistryUnavailableError;
}

/** The longest registry message kept; registries can send whole HTML pages. */
const MESSAGE_MAX_LENGTH = 300;

/**
 * The registry's own words from an error body: the distribution spec's
 * `{"errors":[{"code","message"}]}`, a token server's `{"error","details"}`,
 * or short plain text. Any of `secrets` that appears is masked.
 */
export function registryMessage(body: string, secrets: readonly string[] = []): string {
  let message = '';
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object') {
      const o = parsed as Record<string, unknown>;
      if (Array.isArray(o.errors)) {
        message = o.errors
          .map((e) => {
            const entry = (e ?? {}) as Record<string, unknown>;
            const code = typeof entry.code === 'string' ? entry.code : '';
            const text = typeof entry.message === 'string' ? entry.message : '';
            return code && text ? `${code}: ${text}` : code || text;
          })
          .filter(Boolean)
          .join('; ');
      } else if (
        typeof o.error === 'string' ||
        typeof o.details === 'string' ||
        typeof o.message === 'string'
      ) {
        message = [o.error, o.details ?? o.message].filter((s) => typeof s === 'string' && s).join(': ');
      }
    }
  } catch {
    // Not JSON: keep short plain text, drop markup.
    if (!/<[a-z!]/i.test(body)) message = body.trim();
  }
  for (const secret of secrets) if (secret.length >= 4) message = message.split(secret).join('***');
  message = message.replace(/\s+/g, ' ');
  return message.length > MESSAGE_MAX_LENGTH ? `${message.slice(0, MESSAGE_MAX_LENGTH)}…` : message;
}
