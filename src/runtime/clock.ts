/**
 * Time, injected: the runtime never reads Date.now() or calls setTimeout
 * directly, so tests move time by hand and never sleep.
 */

/** A cancellable timer. */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /**
   * Runs `fn` once after `ms`. Any delay works: negative or NaN means now,
   * Infinity means never, and delays beyond what one Node timer can hold are
   * chained.
   */
  schedule(ms: number, fn: () => void): TimerHandle;
}

/**
 * The longest delay one Node timer holds (2^31 - 1 ms, about 24.8 days).
 * Above it setTimeout warns and fires after 1 ms, which turned a long
 * requeue into a hot loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay as the clocks read it: NaN and negative values are 0. */
export function normalizeDelay(ms: number): number {
  return Number.isNaN(ms) || ms < 0 ? 0 : ms;
}

/** What the real clock needs from the platform's timers; tests pass their own. */
export interface PlatformTimers {
  /** Returns a handle; Node's has `unref`, which the clock calls when present. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/**
 * A clock on real time. A delay longer than `maxTimerMs` runs as a chain of
 * timers of at most that length, so no timer overflows.
 */
export function createSystemClock(
  timers: PlatformTimers = globalThis as unknown as PlatformTimers,
  maxTimerMs = MAX_TIMER_MS,
): Clock {
  return {
    now: () => Date.now(),
    schedule(ms, fn) {
      let remaining = normalizeDelay(ms);
      let current: unknown;
      let cancelled = false;
      const arm = () => {
        const step = Math.min(remaining, maxTimerMs);
        remaining -= step;
        const timer = timers.setTimeout(() => {
          if (cancelled) return;
          if (remaining > 0) arm();
          else fn();
        }, step);
        (timer as { unref?: () => unknown }).unref?.();
        current = timer;
      };
      // Never: no timer at all rather than one every 24.8 days forever.
      if (remaining !== Number.POSITIVE_INFINITY) arm();
      return {
        cancel: () => {
          cancelled = true;
          if (current !== undefined) timers.clearTimeout(current);
        },
      };
    },
  };
}

/** The real clock. Timers do not keep the process alive. */
export const systemClock: Clock = createSystemClock();

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to; timers fire in time order during {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: FakeTimer[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  schedule(ms: number, fn: () => void): TimerHandle {
    const timer: FakeTimer = { at: this.#now + normalizeDelay(ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > until) break;
      this.#timers.shift();
      this.#now = next.at;
      next.fn();
    }
    this.#now = until;
  }
}

/**
 * Sleeps on a clock, one sleep at a time, and can be woken early: what a loop
 * that backs off uses so that stopping it never waits for a timer.
 */
export class Sleeper {
  readonly #clock: Clock;
  #current: { timer: TimerHandle; wake: () => void } | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#current = undefined;
        resolve();
      };
      this.#current = { timer: this.#clock.schedule(ms, wake), wake };
    });
  }

  /** Ends the current sleep now, if any. */
  wake(): void {
    const current = this.#current;
    if (!current) return;
    current.timer.cancel();
    current.wake();
  }
}
