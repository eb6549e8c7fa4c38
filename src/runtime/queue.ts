/**
 * A keyed work queue in the manner of client-go's: a key waits at most once,
 * is never handed to two workers at once (an add while it is processed is kept
 * and delivered after `done`), failures back off per key, and planned
 * re-checks are delayed adds, never sleeps.
 */
import { type BackoffOptions, defaultBackoff, ExponentialBackoff } from './backoff.ts';
import type { Clock, TimerHandle } from './clock.ts';

/** Observations for metrics; every hook is optional. */
export interface WorkQueueObserver {
  /** Keys waiting, after every change. */
  depth?(depth: number): void;
  /** A key was added (including re-adds that were deduplicated). */
  added?(): void;
  /** Milliseconds a key waited between becoming due and being taken by a worker. */
  waited?(ms: number): void;
}

export interface WorkQueueOptions {
  clock: Clock;
  backoff?: BackoffOptions;
  observer?: WorkQueueObserver;
}

export class WorkQueue<K = string> {
  readonly #clock: Clock;
  readonly #backoff: ExponentialBackoff<K>;
  readonly #observer: WorkQueueObserver;
  readonly #queue: K[] = [];
  /** Keys that need processing: waiting in #queue, or re-added while processing. */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #dueAt = new Map<K, number>();
  readonly #delayed = new Map<K, { at: number; timer: TimerHandle }>();
  readonly #waiters: Array<(key: K | undefined) => void> = [];
  #shuttingDown = false;
  #drained: (() => void) | undefined;

  constructor(options: WorkQueueOptions) {
    this.#clock = options.clock;
    this.#backoff = new ExponentialBackoff<K>(options.backoff ?? defaultBackoff);
    this.#observer = options.observer ?? {};
  }

  /** Keys waiting for a worker. */
  get length(): number {
    return this.#queue.length;
  }

  /** Keys being processed now. */
  get processing(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Queues `key` now; a key already waiting is not queued twice. */
  add(key: K): void {
    if (this.#shuttingDown) return;
    this.#observer.added?.();
    const delayed = this.#delayed.get(key);
    if (delayed) {
      delayed.timer.cancel();
      this.#delayed.delete(key);
    }
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#dueAt.set(key, this.#clock.now());
    // Delivered by done() instead, so one key never runs twice at once.
    if (this.#processing.has(key)) return;
    this.#enqueue(key);
  }

  /** Queues `key` after `ms`; an earlier pending delay for the key wins. */
  addAfter(key: K, ms: number): void {
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + ms;
    const existing = this.#delayed.get(key);
    if (existing && existing.at <= at) return;
    existing?.timer.cancel();
    const timer = this.#clock.schedule(ms, () => {
      this.#delayed.delete(key);
      this.add(key);
    });
    this.#delayed.set(key, { at, timer });
  }

  /** Queues `key` after its next backoff delay: for a failed reconcile. */
  addRateLimited(key: K): number {
    const delay = this.#backoff.next(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** Forgets `key`'s failures after a success, so its next failure starts from the base delay. */
  forget(key: K): void {
    this.#backoff.forget(key);
  }

  /** Failures of `key` since its last success. */
  failures(key: K): number {
    return this.#backoff.failures(key);
  }

  /** The next key, once one is due; `undefined` once the queue shuts down. */
  get(): Promise<K | undefined> {
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#take(key);
      this.#observer.depth?.(this.#queue.length);
      return Promise.resolve(key);
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks `key` finished; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#enqueue(key);
    if (this.#shuttingDown && this.#processing.size === 0) this.#drained?.();
  }

  /**
   * Stops handing out keys, cancels planned re-checks, and resolves once every
   * key being processed is done.
   */
  shutDown(): Promise<void> {
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) timer.cancel();
    this.#delayed.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }

  #enqueue(key: K): void {
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#take(key);
      waiter(key);
    } else {
      this.#queue.push(key);
    }
    this.#observer.depth?.(this.#queue.length);
  }

  #take(key: K): void {
    this.#dirty.delete(key);
    this.#processing.add(key);
    const due = this.#dueAt.get(key);
    this.#dueAt.delete(key);
    if (due !== undefined) this.#observer.waited?.(this.#clock.now() - due);
  }
}
