/**
 * Bearer tokens by (registry, scope, credentials), kept until shortly before
 * they expire. Token servers give `expires_in` seconds (60 when absent, per
 * the distribution token spec) and maybe `issued_at`. Pure, on an injected clock.
 */
import type { Clock } from '../runtime/clock.ts';

/** Tokens expire this much early, so one is never sent in its last seconds. */
const EXPIRY_MARGIN_MS = 10_000;
/** The spec's default lifetime when a token server names none. */
export const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Entries kept at most; the oldest go first. */
const MAX_ENTRIES = 1000;

/** A token server's answer, as the distribution token spec gives it. */
export interface TokenResponse {
  token: string;
  expiresInS: number;
  issuedAt?: string;
}

/** Reads a token server's JSON: `token` or `access_token` (OAuth 2 style), `expires_in`, `issued_at`. */
export function parseTokenResponse(body: string): TokenResponse | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const o = parsed as Record<string, unknown>;
  const token =
    typeof o.token === 'string' && o.token
      ? o.token
      : typeof o.access_token === 'string'
        ? o.access_token
        : '';
  if (!token) return undefined;
  const expiresIn =
    typeof o.expires_in === 'number' && Number.isFinite(o.expires_in) && o.expires_in > 0
      ? o.expires_in
      : DEFAULT_TOKEN_LIFETIME_S;
  return {
    token,
    expiresInS: expiresIn,
    ...(typeof o.issued_at === 'string' ? { issuedAt: o.issued_at } : {}),
  };
}

/** Tokens in memory, by key; a token past its expiry is never returned. */
export class TokenCache {
  readonly #clock: Clock;
  readonly #entries = new Map<string, { token: string; expiresAt: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The cache key of a token: never holds the credentials themselves, only their fingerprint. */
  static key(registry: string, scope: string, credentialFingerprint: string): string {
    return `${registry} ${scope} ${credentialFingerprint}`;
  }

  get(key: string): string | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (this.#clock.now() >= entry.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** Stores a token; its lifetime starts at `issuedAt` when given and sane, else now. */
  set(key: string, response: TokenResponse): void {
    const now = this.#clock.now();
    const issued = response.issuedAt ? Date.parse(response.issuedAt) : Number.NaN;
    // A token server's clock may be off; never trust an issue time in the future.
    const start = Number.isNaN(issued) ? now : Math.min(issued, now);
    const lifetime = response.expiresInS * 1000;
    const expiresAt = start + lifetime - Math.min(EXPIRY_MARGIN_MS, lifetime / 10);
    this.#entries.delete(key);
    this.#entries.set(key, { token: response.token, expiresAt });
    while (this.#entries.size > MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** Drops a token the registry refused. */
  delete(key: string): void {
    this.#entries.delete(key);
  }
}
