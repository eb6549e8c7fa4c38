import { describe, expect, it } from 'vitest';
import { ExponentialBackoff } from './backoff.ts';
import { FakeClock } from './clock.ts';
import { WorkQueue } from './queue.ts';

function newQueue(clock = new FakeClock()) {
  return { clock, queue: new WorkQueue<string>({ clock, backoff: { baseMs: 100, maxMs: 1000 } }) };
}

describe('WorkQueue', () => {
  it('deduplicates a key that is already waiting', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
  });

  it('never hands out a key twice at once: an add while processing waits for done', async () => {
    const { queue } = newQueue();
    queue.add('a');
    const first = await queue.get();
    queue.add('a');
    expect(queue.length).toBe(0);
    let second: string | undefined;
    void queue.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done(first!);
    await Promise.resolve();
    expect(second).toBe('a');
    expect(queue.processing).toBe(1);
  });

  it('wakes a waiting worker on add', async () => {
    const { queue } = newQueue();
    const next = queue.get();
    queue.add('x');
    expect(await next).toBe('x');
  });

  it('addAfter delivers when the clock reaches the delay, and the earliest delay wins', async () => {
    const { clock, queue } = newQueue();
    queue.addAfter('a', 1000);
    queue.addAfter('a', 300);
    queue.addAfter('a', 2000);
    clock.advance(299);
    expect(queue.length).toBe(0);
    clock.advance(1);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('a');
    queue.done('a');
    clock.advance(5000);
    expect(queue.length).toBe(0);
  });

  it('an immediate add supersedes a planned one', async () => {
    const { clock, queue } = newQueue();
    queue.addAfter('a', 500);
    queue.add('a');
    expect(await queue.get()).toBe('a');
    queue.done('a');
    clock.advance(1000);
    expect(queue.length).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('backs off per key exponentially up to the cap, and forget resets it', () => {
    const { queue } = newQueue();
    expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited('a'))).toEqual([100, 200, 400, 800, 1000]);
    expect(queue.addRateLimited('b')).toBe(100);
    expect(queue.failures('a')).toBe(5);
    queue.forget('a');
    expect(queue.addRateLimited('a')).toBe(100);
  });

  it('shutDown wakes idle workers, drops planned keys, and waits for keys in progress', async () => {
    const { clock, queue } = newQueue();
    queue.add('busy');
    const busy = await queue.get();
    const idle = queue.get();
    queue.add('busy');
    queue.addAfter('later', 100);
    let drained = false;
    const shutdown = queue.shutDown().then(() => {
      drained = true;
    });
    expect(await idle).toBeUndefined();
    await Promise.resolve();
    expect(drained).toBe(false);
    queue.done(busy!);
    await shutdown;
    expect(drained).toBe(true);
    clock.advance(1000);
    expect(await queue.get()).toBeUndefined();
    queue.add('after');
    expect(queue.length).toBe(0);
  });

  it('reports depth and the time a key waited', async () => {
    const clock = new FakeClock();
    const depths: number[] = [];
    const waits: number[] = [];
    const queue = new WorkQueue<string>({
      clock,
      observer: { depth: (d) => depths.push(d), waited: (ms) => waits.push(ms) },
    });
    queue.add('a');
    queue.add('b');
    clock.advance(250);
    await queue.get();
    expect(depths).toEqual([1, 2, 1]);
    expect(waits).toEqual([250]);
  });
});

describe('ExponentialBackoff', () => {
  it('never exceeds the cap even after many failures', () => {
    const backoff = new ExponentialBackoff<string>({ baseMs: 5, maxMs: 60_000 });
    let last = 0;
    for (let i = 0; i < 2000; i++) last = backoff.next('k');
    expect(last).toBe(60_000);
  });
});

describe('FakeClock', () => {
  it('fires timers in time order, including ones scheduled while advancing', () => {
    const clock = new FakeClock(0);
    const fired: string[] = [];
    clock.schedule(30, () => fired.push('30'));
    clock.schedule(10, () => {
      fired.push('10');
      clock.schedule(5, () => fired.push('15'));
    });
    const cancelled = clock.schedule(20, () => fired.push('20'));
    cancelled.cancel();
    clock.advance(100);
    expect(fired).toEqual(['10', '15', '30']);
    expect(clock.now()).toBe(100);
  });
});
