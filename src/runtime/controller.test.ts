import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import { Controller, type ReconcileResult, TerminalError } from './controller.ts';
import { WorkQueue } from './queue.ts';

const log = pino({ level: 'silent' });

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(reconcile: (key: string) => Promise<ReconcileResult | undefined>) {
  const clock = new FakeClock();
  const queue = new WorkQueue<string>({ clock, backoff: { baseMs: 100, maxMs: 1_000 } });
  const results: string[] = [];
  const controller = new Controller({
    name: 'test',
    queue,
    concurrency: 2,
    clock,
    log,
    reconcile,
    observer: { reconciled: (_, result) => results.push(result) },
  });
  controller.start();
  return { clock, queue, controller, results };
}

describe('Controller', () => {
  it('retries a failing key with growing backoff and forgets its failures after a success', async () => {
    let calls = 0;
    const { clock, queue, controller, results } = setup(async () => {
      calls++;
      if (calls <= 2) throw new Error('conflict');
      return undefined;
    });
    queue.add('ns/a');
    await settle();
    expect(calls).toBe(1);
    clock.advance(99);
    await settle();
    expect(calls).toBe(1);
    clock.advance(1);
    await settle();
    expect(calls).toBe(2);
    clock.advance(199);
    await settle();
    expect(calls).toBe(2);
    clock.advance(1);
    await settle();
    expect(calls).toBe(3);
    expect(results).toEqual(['error', 'error', 'success']);
    expect(queue.failures('ns/a')).toBe(0);
    await controller.stop();
  });

  it('does not retry a terminal error (a bad spec) until the key is added again', async () => {
    let calls = 0;
    const { clock, queue, controller, results } = setup(async () => {
      calls++;
      throw new TerminalError('InvalidSpec', 'images: list at least one image');
    });
    queue.add('ns/bad');
    await settle();
    clock.advance(60_000);
    await settle();
    expect(calls).toBe(1);
    expect(results).toEqual(['terminal']);
    queue.add('ns/bad');
    await settle();
    expect(calls).toBe(2);
    await controller.stop();
  });

  it('comes back after requeueAfterMs, never earlier', async () => {
    let calls = 0;
    const { clock, queue, controller } = setup(async () => {
      calls++;
      return calls === 1 ? { requeueAfterMs: 2_000 } : undefined;
    });
    queue.add('ns/a');
    await settle();
    clock.advance(1_999);
    await settle();
    expect(calls).toBe(1);
    clock.advance(1);
    await settle();
    expect(calls).toBe(2);
    await controller.stop();
  });

  it('never reconciles one key twice at once, and drains on stop', async () => {
    let running = 0;
    let most = 0;
    let release: (() => void) | undefined;
    const { queue, controller } = setup(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      running--;
      return undefined;
    });
    queue.add('ns/a');
    await settle();
    queue.add('ns/a');
    queue.add('ns/a');
    await settle();
    expect(running).toBe(1);
    const stopped = controller.stop();
    release?.();
    await stopped;
    expect(most).toBe(1);
  });
});
