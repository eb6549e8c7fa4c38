/**
 * The shared resolver: one registry request per distinct (registry,
 * repository, tag, credentials) per refresh interval, whoever asks. Callers
 * asking at once share one request in flight; an answer is reused until it
 * is older than the asker's interval, shortened by a random part of up to
 * `jitter` fixed per answer, so that tags resolved together drift apart
 * instead of hitting the registry in bursts. Failures are kept too, and
 * retried with jittered exponential backoff (never sooner than the
 * registry's `Retry-After`, never later than the interval), so a broken
 * registry is never asked in a hot loop. Pure scheduling on an injected
 * clock; the request itself comes in as a function.
 */
import { formatImageReference, type ImageReference } from '../image/reference.ts';
import type { Clock } from '../runtime/clock.ts';
import { RegistryUnavailableError } from './errors.ts';
import { credentialFingerprint, type RegistryCredential } from './keyring.ts';
import { backoffDelay } from './retry.ts';

/** What to resolve, and with which credentials. */
export interface ResolveTarget {
  /** A reference; one with a digest is asked about that digest (never resolved). */
  ref: ImageReference;
  credentials: readonly RegistryCredential[];
}

export interface SharedResolverOptions<T> {
  clock: Clock;
  /** In [0, 1); `Math.random` by default. */
  random?: () => number;
  /** The request, e.g. a registry HEAD. */
  fetch: (target: ResolveTarget) => Promise<T>;
  /** Largest part of an interval by which an answer's reuse is shortened. Default 0.1. */
  jitter?: number;
  /** Backoff of failures: first delay and cap (the asker's interval caps it too). */
  errorBackoff?: { baseMs: number; maxMs: number };
  /** Answers nobody asked for in this long are dropped by {@link SharedResolver.prune}. Default 1 hour. */
  idleMs?: number;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Entry<T> {
  outcome?: Outcome<T>;
  settledAt: number;
  /** This answer's random share of the jitter, in [0, 1). */
  jitterShare: number;
  /** Failures in a row. */
  failures: number;
  inflight?: Promise<T>;
  lastAskedAt: number;
}

/** The key of a target: its reference and a fingerprint of its credentials, never the credentials. */
export function resolveKey(target: ResolveTarget): string {
  return `${formatImageReference(target.ref)} ${credentialFingerprint(target.credentials)}`;
}

/** Shares registry answers between every caller; one per process. */
export class SharedResolver<T> {
  readonly #o: Required<Omit<SharedResolverOptions<T>, 'random'>> & { random: () => number };
  readonly #entries = new Map<string, Entry<T>>();

  constructor(o: SharedResolverOptions<T>) {
    this.#o = {
      random: Math.random,
      jitter: 0.1,
      errorBackoff: { baseMs: 1_000, maxMs: 5 * 60_000 },
      idleMs: 60 * 60_000,
      ...o,
    };
  }

  /** How many targets are remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The answer for `target`, fetched at most once per `intervalMs` (less
   * jitter) however many callers ask; rejects with the remembered failure
   * until its backoff ends. With `fresherThan` (clock milliseconds, a refresh
   * someone asked for), an answer or failure from before then is asked
   * anew, back-off or not; a request in flight is still shared.
   */
  get(target: ResolveTarget, intervalMs: number, fresherThan?: number): Promise<T> {
    const key = resolveKey(target);
    const now = this.#o.clock.now();
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { settledAt: now, jitterShare: 0, failures: 0, lastAskedAt: now };
      this.#entries.set(key, entry);
    }
    entry.lastAskedAt = now;
    if (entry.inflight) return entry.inflight;
    const stale = fresherThan !== undefined && entry.settledAt < fresherThan;
    if (entry.outcome && !stale && now < this.#expiresAt(entry, intervalMs)) {
      const outcome = entry.outcome;
      return outcome.ok ? Promise.resolve(outcome.value) : Promise.reject(outcome.error);
    }
    return this.#start(entry, target);
  }

  /**
   * Milliseconds until `target`'s answer is due to be fetched again for an
   * asker of `intervalMs`: what a controller requeues after. 0 when it is
   * due now or unknown.
   */
  dueIn(target: ResolveTarget, intervalMs: number): number {
    const entry = this.#entries.get(resolveKey(target));
    if (!entry?.outcome || entry.inflight) return 0;
    return Math.max(0, this.#expiresAt(entry, intervalMs) - this.#o.clock.now());
  }

  /**
   * When `target`'s remembered answer or failure came from the registry, in
   * clock milliseconds; undefined before the first. Callers date what they
   * show by it, not by when they asked: an answer reused, or a failure
   * repeated during its back-off, keeps the time of the request that made it.
   */
  answeredAt(target: ResolveTarget): number | undefined {
    const entry = this.#entries.get(resolveKey(target));
    return entry?.outcome ? entry.settledAt : undefined;
  }

  /** Forgets targets nobody asked for within `idleMs`, so memory follows what is in use. */
  prune(): void {
    const cutoff = this.#o.clock.now() - this.#o.idleMs;
    for (const [key, entry] of this.#entries) {
      if (!entry.inflight && entry.lastAskedAt < cutoff) this.#entries.delete(key);
    }
  }

  #expiresAt(entry: Entry<T>, intervalMs: number): number {
    const outcome = entry.outcome!;
    const reuse = intervalMs * (1 - this.#o.jitter * entry.jitterShare);
    if (outcome.ok) return entry.settledAt + reuse;
    const backoff = backoffDelay(entry.failures - 1, this.#o.errorBackoff, entry.jitterShare);
    const retryAfter =
      outcome.error instanceof RegistryUnavailableError ? (outcome.error.retryAfterMs ?? 0) : 0;
    return entry.settledAt + Math.max(retryAfter, Math.min(backoff, reuse));
  }

  #start(entry: Entry<T>, target: ResolveTarget): Promise<T> {
    const settle = (outcome: Outcome<T>) => {
      entry.inflight = undefined;
      entry.outcome = outcome;
      entry.settledAt = this.#o.clock.now();
      entry.jitterShare = this.#o.random();
      entry.failures = outcome.ok ? 0 : entry.failures + 1;
    };
    const inflight = this.#o.fetch(target).then(
      (value) => {
        settle({ ok: true, value });
        return value;
      },
      (error: unknown) => {
        settle({ ok: false, error });
        throw error;
      },
    );
    entry.inflight = inflight;
    return inflight;
  }
}
