import { describe, expect, it } from 'vitest';
import { mapConcurrently } from './parallel.ts';

/** A call that finishes when the test says so. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('mapConcurrently', () => {
  it('keeps the order of the items', async () => {
    const out = await mapConcurrently([3, 1, 2], 2, async (n) => {
      await new Promise((r) => setImmediate(r));
      return n * 10;
    });
    expect(out).toEqual([30, 10, 20]);
  });

  it('never has more than `limit` calls in flight, and uses all of them', async () => {
    const gates = Array.from({ length: 10 }, deferred);
    let inFlight = 0;
    let most = 0;
    const run = mapConcurrently(gates, 3, async (gate) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await gate.promise;
      inFlight--;
    });
    for (const gate of gates) {
      await new Promise((r) => setImmediate(r));
      gate.resolve();
    }
    await run;
    expect(most).toBe(3);
  });

  it('handles an empty batch', async () => {
    expect(await mapConcurrently([], 16, async () => 1)).toEqual([]);
  });

  it('rejects with the first failure once the calls in flight have settled', async () => {
    const settled: number[] = [];
    const run = mapConcurrently([1, 2, 3, 4], 2, async (n) => {
      await new Promise((r) => setImmediate(r));
      if (n === 1) throw new Error('one');
      settled.push(n);
    });
    await expect(run).rejects.toThrow('one');
    // 2 was in flight and finished; 3 and 4 never started.
    expect(settled).toEqual([2]);
  });
});
