/**
 * When and how long to wait before asking a registry again: jittered
 * exponential backoff, which answers are worth retrying, and `Retry-After`
 * (seconds or an HTTP date). Pure: time and randomness come in as arguments.
 */

/** Backoff between attempts of one request. */
export interface RetryOptions {
  /** Attempts after the first. */
  retries: number;
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** No delay exceeds this. */
  maxMs: number;
  /** A `Retry-After` longer than this is not waited out: the request fails with it, for the caller to honour. */
  maxRetryAfterMs: number;
}

export const defaultRetryOptions: RetryOptions = {
  retries: 3,
  baseMs: 250,
  maxMs: 5_000,
  maxRetryAfterMs: 30_000,
};

/**
 * The delay before retry number `attempt` (0 for the first retry): the
 * exponential step, jittered down by up to half so that many clients that
 * failed together do not come back together. `random` is in [0, 1).
 */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, 'baseMs' | 'maxMs'>,
  random: number,
): number {
  const step = Math.min(options.maxMs, options.baseMs * 2 ** attempt);
  return Math.round(step * (1 - random / 2));
}

/** 429 and 5xx may pass; any other status will not change by asking again. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/**
 * `Retry-After` in milliseconds from `nowMs`: delta-seconds or an HTTP date.
 * Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT`; nothing else is a date here.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
