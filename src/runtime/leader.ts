/**
 * Leader election on a Lease, as client-go does it: a candidate takes the
 * lease when it is free or its holder stopped renewing it for a whole lease
 * duration (measured on the candidate's own clock from when it last saw the
 * record change, so clocks need not agree); the leader renews every retry
 * period and gives up leading at once when it could not renew within the
 * renew deadline, which is shorter than the lease, so two never lead at once.
 * A renew that hangs (a cut connection) counts as failed once the deadline
 * passes: the leader does not wait for its answer to step down.
 */
import type { Logger } from 'pino';
import { microTime } from '../kube/time.ts';
import { type Clock, Sleeper } from './clock.ts';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Storage of the lease; the Kubernetes implementation is in src/kube/lease.ts. */
export interface LeaseLock {
  /** The record and an opaque version for optimistic concurrency; undefined when there is none. */
  get(): Promise<{ record: LeaseRecord; version: string } | undefined>;
  /** Creates the lease; rejects when it exists. */
  create(record: LeaseRecord): Promise<void>;
  /** Replaces the record if it is still at `version`; rejects otherwise. */
  update(record: LeaseRecord, version: string): Promise<void>;
  /** Where the lease lives, for logs. */
  describe(): string;
}

export interface LeaderElectorOptions {
  lock: LeaseLock;
  identity: string;
  clock: Clock;
  log: Logger;
  /** How long a lease holds without renewal. A standby takes over at most about this long after the leader dies. */
  leaseDurationMs?: number;
  /** The leader stops leading when it could not renew for this long. */
  renewDeadlineMs?: number;
  /** Pause between attempts. */
  retryPeriodMs?: number;
  random?: () => number;
}

export const defaultLeaseTiming = { leaseDurationMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };

export { microTime };

export type LeadershipEnd = 'lost' | 'stopped';

export class LeaderElector {
  readonly #options: Required<Omit<LeaderElectorOptions, 'random'>> & { random: () => number };
  #observed: { key: string; at: number } | undefined;
  #leading = false;
  #stopped = false;
  /** When the attempt that won the lease began. */
  #acquiredAt = 0;
  readonly #sleeper: Sleeper;

  constructor(options: LeaderElectorOptions) {
    this.#options = { ...defaultLeaseTiming, random: Math.random, ...options };
    this.#sleeper = new Sleeper(options.clock);
    if (this.#options.renewDeadlineMs >= this.#options.leaseDurationMs) {
      throw new Error('renewDeadlineMs must be shorter than leaseDurationMs');
    }
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Waits until this candidate leads, then calls `lead` with a signal that
   * aborts the moment leadership ends. Resolves with why it ended: `lost` (the
   * caller should exit, as client-go's users do) or `stopped`.
   */
  async run(lead: (signal: AbortSignal) => void): Promise<LeadershipEnd> {
    const { log, lock, identity, retryPeriodMs } = this.#options;
    while (!this.#stopped) {
      this.#acquiredAt = this.#options.clock.now();
      if (await this.#tryAcquireOrRenew()) break;
      await this.#sleeper.sleep(retryPeriodMs * (1 + this.#options.random() * 0.2));
    }
    if (this.#stopped) return 'stopped';

    this.#leading = true;
    log.info({ lease: lock.describe(), identity }, 'became the leader');
    const leadership = new AbortController();
    lead(leadership.signal);
    const { clock, renewDeadlineMs } = this.#options;
    // When the last successful renew began: others count the lease from no
    // earlier than that, so stepping down by then + renewDeadline is safe.
    let lastRenewed = this.#acquiredAt;
    let end: LeadershipEnd = 'stopped';
    while (!this.#stopped) {
      await this.#sleeper.sleep(
        Math.min(retryPeriodMs, Math.max(0, lastRenewed + renewDeadlineMs - clock.now())),
      );
      if (this.#stopped) break;
      const started = clock.now();
      const left = lastRenewed + renewDeadlineMs - started;
      if (left > 0 && (await this.#withDeadline(this.#tryAcquireOrRenew(), left))) {
        lastRenewed = started;
        continue;
      }
      if (clock.now() - lastRenewed >= renewDeadlineMs) {
        end = 'lost';
        break;
      }
    }
    this.#leading = false;
    leadership.abort();
    if (end === 'lost') log.error({ lease: lock.describe(), identity }, 'lost the lease: stopped leading');
    else await this.#release();
    return end;
  }

  /**
   * The attempt's outcome, or false once `ms` passed without one. The
   * attempt itself runs on (the API client's own deadline ends it); its late
   * success is ignored.
   */
  #withDeadline(attempt: Promise<boolean>, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.#options.clock.schedule(ms, () => {
        this.#options.log.warn(
          { lease: this.#options.lock.describe() },
          'lease renew got no answer before the renew deadline',
        );
        resolve(false);
      });
      attempt.then(
        (ok) => {
          timer.cancel();
          resolve(ok);
        },
        () => {
          timer.cancel();
          resolve(false);
        },
      );
    });
  }

  /** Stops campaigning; a leader releases the lease so that a standby takes over at once. */
  stop(): void {
    this.#stopped = true;
    this.#sleeper.wake();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { lock, identity, clock, leaseDurationMs, log } = this.#options;
    const now = clock.now();
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    try {
      const current = await lock.get();
      if (!current) {
        await lock.create({
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        });
        this.#observed = undefined;
        return true;
      }
      const { record, version } = current;
      const key = `${record.holderIdentity}|${record.renewTime}|${record.leaseTransitions}`;
      if (this.#observed?.key !== key) this.#observed = { key, at: now };
      const heldByOther = record.holderIdentity && record.holderIdentity !== identity;
      // Judged by how long *we* have seen the record unchanged, not by its renewTime.
      const duration = (record.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (heldByOther && this.#observed.at + duration > now) return false;
      const mine = record.holderIdentity === identity;
      await lock.update(
        {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: mine && record.acquireTime ? record.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: mine ? (record.leaseTransitions ?? 0) : (record.leaseTransitions ?? 0) + 1,
        },
        version,
      );
      return true;
    } catch (err) {
      log.debug(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        'lease attempt failed',
      );
      return false;
    }
  }

  async #release(): Promise<void> {
    const { lock, identity, clock, log } = this.#options;
    try {
      const current = await lock.get();
      if (current?.record.holderIdentity !== identity) return;
      await lock.update(
        { ...current.record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(clock.now()) },
        current.version,
      );
      log.info({ lease: lock.describe() }, 'released the lease');
    } catch (err) {
      log.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        'could not release the lease',
      );
    }
  }
}
