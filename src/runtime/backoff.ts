/** Per-key exponential backoff for failed reconciles. */

export interface BackoffOptions {
  /** Delay after the first failure. */
  baseMs: number;
  /** Delays never exceed this. */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 200, maxMs: 5 * 60_000 };

/** Remembers failures per key; {@link ExponentialBackoff.next} doubles the delay each time up to the cap. */
export class ExponentialBackoff<K> {
  readonly #options: BackoffOptions;
  readonly #failures = new Map<K, number>();

  constructor(options: BackoffOptions = defaultBackoff) {
    this.#options = options;
  }

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  next(key: K): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2^failures overflows to Infinity long before it matters; the cap bounds it.
    return Math.min(this.#options.maxMs, this.#options.baseMs * 2 ** failures);
  }

  /** How many times `key` failed since it last succeeded. */
  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Forgets `key` after a success. */
  forget(key: K): void {
    this.#failures.delete(key);
  }
}
