/**
 * The controller loop: informers' events only enqueue keys; workers take keys
 * from the queue and reconcile them. A failure is retried with per-key
 * backoff; a {@link TerminalError} (a bad spec) is reported by the reconciler
 * and not retried until the object changes; `requeueAfterMs` plans a re-check.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { WorkQueue } from './queue.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this long even if nothing changes. */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  log: Logger;
  /** Short random id carried by every log line of one reconcile. */
  reconcileId: string;
}

export type Reconciler = (key: string, context: ReconcileContext) => Promise<ReconcileResult | undefined>;

/** A failure that retrying cannot fix, e.g. an invalid spec: logged, not retried. */
export class TerminalError extends Error {
  readonly code = 'PREPULL_ERR_TERMINAL';
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.name = 'TerminalError';
    this.reason = reason;
  }
}

/** Observations for metrics. */
export interface ControllerObserver {
  reconciled?(
    controller: string,
    result: 'success' | 'error' | 'terminal' | 'requeue',
    seconds: number,
  ): void;
}

export interface ControllerOptions {
  name: string;
  queue: WorkQueue<string>;
  reconcile: Reconciler;
  /** Keys reconciled at once (never the same key twice). */
  concurrency: number;
  clock: Clock;
  log: Logger;
  observer?: ControllerObserver;
  /** Runs after the workers stopped, e.g. to stop watches the reconciler started. */
  onStop?: () => Promise<void>;
}

export class Controller {
  readonly name: string;
  readonly #options: ControllerOptions;
  #workers: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#options = options;
  }

  get queue(): WorkQueue<string> {
    return this.#options.queue;
  }

  start(): void {
    if (this.#workers.length > 0) return;
    for (let i = 0; i < this.#options.concurrency; i++) this.#workers.push(this.#work());
  }

  /** Stops taking keys and waits for reconciles in flight to finish. */
  async stop(): Promise<void> {
    await this.#options.queue.shutDown();
    await Promise.all(this.#workers);
    this.#workers = [];
    await this.#options.onStop?.();
  }

  async #work(): Promise<void> {
    const { queue } = this.#options;
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.#reconcileOne(key);
      } finally {
        queue.done(key);
      }
    }
  }

  async #reconcileOne(key: string): Promise<void> {
    const { queue, clock, observer, name } = this.#options;
    const reconcileId = randomBytes(4).toString('hex');
    const log = this.#options.log.child({ controller: name, key, reconcileId });
    const started = clock.now();
    const seconds = () => (clock.now() - started) / 1000;
    try {
      const result = await this.#options.reconcile(key, { log, reconcileId });
      queue.forget(key);
      if (result?.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        queue.addAfter(key, result.requeueAfterMs);
        observer?.reconciled?.(name, 'requeue', seconds());
      } else {
        observer?.reconciled?.(name, 'success', seconds());
      }
    } catch (err) {
      if (err instanceof TerminalError) {
        queue.forget(key);
        observer?.reconciled?.(name, 'terminal', seconds());
        log.warn(
          { reason: err.reason, err: { message: err.message } },
          'reconcile stopped: fix the object to continue',
        );
        return;
      }
      const retryInMs = queue.addRateLimited(key);
      observer?.reconciled?.(name, 'error', seconds());
      const message = err instanceof Error ? err.message : String(err);
      log.error({ err: { message }, retryInMs, failures: queue.failures(key) }, 'reconcile failed');
    }
  }
}
