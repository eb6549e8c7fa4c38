import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import { LeaderElector, type LeaseLock, type LeaseRecord, microTime } from './leader.ts';

const log = pino({ level: 'silent' });

/** An in-memory lease with optimistic concurrency, and a switch to make it unreachable. */
class MemoryLock implements LeaseLock {
  record: LeaseRecord | undefined;
  version = 0;
  reachable = true;
  /** Requests that never get an answer: a connection cut without a reset. */
  hung = false;

  async get() {
    if (this.hung) return new Promise<never>(() => {});
    if (!this.reachable) throw new Error('connection refused');
    return this.record ? { record: { ...this.record }, version: String(this.version) } : undefined;
  }
  async create(record: LeaseRecord) {
    if (!this.reachable) throw new Error('connection refused');
    if (this.record) throw new Error('AlreadyExists');
    this.record = record;
    this.version++;
  }
  async update(record: LeaseRecord, version: string) {
    if (this.hung) return new Promise<never>(() => {});
    if (!this.reachable) throw new Error('connection refused');
    if (String(this.version) !== version) throw new Error('Conflict');
    this.record = record;
    this.version++;
  }
  describe() {
    return 'memory';
  }
}

/** Moves the fake clock in small steps, letting promises settle between them. */
async function elapse(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  }
}

function candidate(lock: LeaseLock, clock: FakeClock, identity: string) {
  const elector = new LeaderElector({ lock, identity, clock, log, random: () => 0 });
  const state = {
    leading: false,
    signal: undefined as AbortSignal | undefined,
    end: undefined as string | undefined,
  };
  const done = elector.run((signal) => {
    state.leading = true;
    state.signal = signal;
    signal.addEventListener('abort', () => {
      state.leading = false;
    });
  });
  done.then((end) => {
    state.end = end;
  });
  return { elector, state, done };
}

describe('LeaderElector', () => {
  it('takes a free lease at once and renews it', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const a = candidate(lock, clock, 'a');
    await elapse(clock, 100);
    expect(a.state.leading).toBe(true);
    expect(lock.record?.holderIdentity).toBe('a');
    const firstRenew = lock.record?.renewTime;
    await elapse(clock, 2_100);
    expect(lock.record?.renewTime).not.toBe(firstRenew);
    expect(lock.record?.leaseTransitions).toBe(0);
    a.elector.stop();
    await a.done;
  });

  it('keeps a standby waiting while the leader renews, then takes over within a lease duration of its death', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const a = candidate(lock, clock, 'a');
    await elapse(clock, 100);
    const b = candidate(lock, clock, 'b');
    await elapse(clock, 30_000);
    expect(a.state.leading).toBe(true);
    expect(b.state.leading).toBe(false);

    // The leader dies without releasing: it simply stops renewing.
    a.elector.stop();
    lock.reachable = false;
    await elapse(clock, 200);
    lock.reachable = true;
    const died = clock.now();
    while (!b.state.leading) await elapse(clock, 100);
    const takeover = clock.now() - died;
    expect(takeover).toBeGreaterThan(8_000);
    expect(takeover).toBeLessThanOrEqual(15_000);
    expect(lock.record?.holderIdentity).toBe('b');
    expect(lock.record?.leaseTransitions).toBe(1);
    b.elector.stop();
    await b.done;
  });

  it('stops leading at once when it cannot renew within the renew deadline, before the lease could pass on', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const a = candidate(lock, clock, 'a');
    await elapse(clock, 100);
    expect(a.state.leading).toBe(true);
    lock.reachable = false;
    const cut = clock.now();
    while (a.state.leading) await elapse(clock, 100);
    const gaveUp = clock.now() - cut;
    expect(gaveUp).toBeLessThan(10_000);
    await a.done;
    expect(a.state.end).toBe('lost');
    expect(a.state.signal?.aborted).toBe(true);
  });

  it('stops leading by the renew deadline when a renew hangs, while a standby waits a whole lease', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const a = candidate(lock, clock, 'a');
    await elapse(clock, 100);
    const lastRenew = Date.parse(lock.record!.renewTime!);
    lock.hung = true;
    while (a.state.leading) await elapse(clock, 100);
    // No answer ever came; it gave up on its own clock, within the renew deadline of its last renew.
    expect(clock.now() - lastRenew).toBeLessThanOrEqual(7_000 + 100);
    expect(a.state.end).toBe('lost');
    // A standby that saw that last renew cannot take over before a lease duration has passed.
    lock.hung = false;
    const b = candidate(lock, clock, 'b');
    while (!b.state.leading) await elapse(clock, 100);
    expect(clock.now() - lastRenew).toBeGreaterThanOrEqual(10_000);
    b.elector.stop();
    await b.done;
  });

  it('releases the lease on stop so that a standby takes over without waiting for expiry', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const a = candidate(lock, clock, 'a');
    await elapse(clock, 100);
    const b = candidate(lock, clock, 'b');
    await elapse(clock, 5_000);
    a.elector.stop();
    await a.done;
    expect(a.state.end).toBe('stopped');
    expect(lock.record?.holderIdentity).toBe('');
    const released = clock.now();
    while (!b.state.leading) await elapse(clock, 100);
    expect(clock.now() - released).toBeLessThanOrEqual(3_000);
    b.elector.stop();
    await b.done;
  });

  it('never lets two candidates lead at once under random interleavings', async () => {
    const clock = new FakeClock();
    const lock = new MemoryLock();
    const all = ['a', 'b', 'c'].map((id) => candidate(lock, clock, id));
    for (let round = 0; round < 40; round++) {
      lock.reachable = round % 7 !== 3;
      await elapse(clock, 700);
      expect(all.filter((c) => c.state.leading).length).toBeLessThanOrEqual(1);
    }
    for (const c of all) c.elector.stop();
    await Promise.all(all.map((c) => c.done));
  });

  it('writes MicroTime with six fractional digits', () => {
    expect(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe('2026-01-02T03:04:05.678000Z');
  });
});
