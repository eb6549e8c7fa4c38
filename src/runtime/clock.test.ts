import { describe, expect, it } from 'vitest';
import { createSystemClock, FakeClock, MAX_TIMER_MS, type PlatformTimers, systemClock } from './clock.ts';

/** Platform timers that only record what they were asked, and fire when told. */
class RecordingTimers implements PlatformTimers {
  readonly armed: Array<{ fn: () => void; ms: number; cleared: boolean }> = [];
  setTimeout(fn: () => void, ms: number) {
    const timer = { fn, ms, cleared: false };
    this.armed.push(timer);
    return timer;
  }
  clearTimeout(timer: unknown) {
    (timer as { cleared: boolean }).cleared = true;
  }
  /** Fires the newest timer, as the platform would once its delay passed. */
  fireLatest() {
    const timer = this.armed.at(-1)!;
    if (!timer.cleared) timer.fn();
  }
}

describe('system clock', () => {
  it('chains timers for a delay above what one Node timer holds, none of them overflowing', () => {
    const timers = new RecordingTimers();
    const clock = createSystemClock(timers);
    let fired = 0;
    const delay = 1000 * 60 * 60 * 1000; // 1000 h: what refresh.interval once overflowed with
    clock.schedule(delay, () => fired++);
    let fires = 0;
    while (fired === 0 && fires < 100) {
      expect(timers.armed.at(-1)!.ms).toBeLessThanOrEqual(MAX_TIMER_MS);
      timers.fireLatest();
      fires++;
    }
    expect(fired).toBe(1);
    expect(timers.armed.reduce((sum, t) => sum + t.ms, 0)).toBe(delay);
    expect(timers.armed).toHaveLength(Math.ceil(delay / MAX_TIMER_MS));
  });

  it('cancels a chained timer between links', () => {
    const timers = new RecordingTimers();
    const clock = createSystemClock(timers, 10);
    let fired = false;
    const handle = clock.schedule(25, () => {
      fired = true;
    });
    timers.fireLatest();
    handle.cancel();
    timers.fireLatest();
    expect(fired).toBe(false);
    expect(timers.armed.at(-1)!.cleared).toBe(true);
  });

  it('treats NaN and negative delays as now, and Infinity as never', () => {
    const timers = new RecordingTimers();
    const clock = createSystemClock(timers);
    clock.schedule(Number.NaN, () => {});
    clock.schedule(-5, () => {});
    expect(timers.armed.map((t) => t.ms)).toEqual([0, 0]);
    clock.schedule(Number.POSITIVE_INFINITY, () => {});
    expect(timers.armed).toHaveLength(2);
  });

  it('on real timers, a delay of 2^31 ms does not fire before a 20 ms timer set after it', async () => {
    let early = false;
    const handle = systemClock.schedule(2 ** 31, () => {
      early = true;
    });
    // Node's overflowing timer would fire after 1 ms, so before this one.
    await new Promise((resolve) => setTimeout(resolve, 20));
    handle.cancel();
    expect(early).toBe(false);
  });

  it('on real timers, a short chained delay fires once', async () => {
    const clock = createSystemClock(undefined, 2);
    let fired = 0;
    await new Promise<void>((resolve) =>
      clock.schedule(7, () => {
        fired++;
        resolve();
      }),
    );
    expect(fired).toBe(1);
  });
});

describe('fake clock', () => {
  it('fires a delay beyond 2^31 - 1 ms only once time reaches it', () => {
    const clock = new FakeClock();
    let fired = false;
    clock.schedule(2 ** 32, () => {
      fired = true;
    });
    clock.advance(MAX_TIMER_MS + 1);
    expect(fired).toBe(false);
    clock.advance(2 ** 32 - MAX_TIMER_MS - 1);
    expect(fired).toBe(true);
  });

  it('treats NaN as now and Infinity as never', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.schedule(Number.NaN, () => fired.push('nan'));
    clock.schedule(Number.POSITIVE_INFINITY, () => fired.push('never'));
    clock.advance(0);
    clock.advance(Number.MAX_SAFE_INTEGER);
    expect(fired).toEqual(['nan']);
  });
});
