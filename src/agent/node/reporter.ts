/**
 * Publishes the agent modules' reports on the agent's own pod, as one merge
 * patch of its annotations. Only what changed since the last write is sent; a
 * failed write is tried again with back-off, with whatever is newest by then,
 * so a module that reports often never queues writes. I/O through the injected
 * client and clock.
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import { Resources } from '../../kube/resources.ts';
import { ExponentialBackoff } from '../../runtime/backoff.ts';
import type { Clock, TimerHandle } from '../../runtime/clock.ts';
import { encodeReport, reportAnnotation } from './report.ts';

export interface ReportPublisherOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  namespace: string;
  podName: string;
  fieldManager?: string;
  backoff?: { baseMs: number; maxMs: number };
}

export class ReportPublisher {
  readonly #options: ReportPublisherOptions;
  /** Annotation key → the newest value asked for. */
  readonly #wanted = new Map<string, string>();
  /** Annotation key → the value the pod carries, as far as we wrote it. */
  readonly #written = new Map<string, string>();
  readonly #backoff: ExponentialBackoff<'write'>;
  #timer: TimerHandle | undefined;
  #writing: Promise<void> | undefined;
  #stopped = false;

  constructor(options: ReportPublisherOptions) {
    this.#options = options;
    this.#backoff = new ExponentialBackoff(options.backoff ?? { baseMs: 500, maxMs: 30_000 });
  }

  /** Asks for `module`'s report to be `value`; throws for a value that cannot be published. */
  publish(module: string, value: unknown): void {
    const key = reportAnnotation(module);
    const text = encodeReport(module, value);
    this.#wanted.set(key, text);
    if (this.#written.get(key) !== text) this.#kick(0);
  }

  /** Stops writing; what is not written yet is dropped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#writing;
  }

  #pending(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [key, text] of this.#wanted) if (this.#written.get(key) !== text) out.set(key, text);
    return out;
  }

  #kick(delayMs: number): void {
    if (this.#stopped || this.#timer || this.#writing) return;
    this.#timer = this.#options.clock.schedule(delayMs, () => {
      this.#timer = undefined;
      this.#writing = this.#writeAll();
    });
  }

  /** Writes until nothing is pending; after a failure, comes back after the back-off. */
  async #writeAll(): Promise<void> {
    let retryInMs: number | undefined;
    try {
      for (let pending = this.#pending(); pending.size > 0 && !this.#stopped; pending = this.#pending()) {
        const { client, namespace, podName, log } = this.#options;
        try {
          await client.patch(
            Resources.pods,
            podName,
            namespace,
            { metadata: { annotations: Object.fromEntries(pending) } },
            'merge',
            { fieldManager: this.#options.fieldManager ?? 'prepull-agent' },
          );
        } catch (err) {
          retryInMs = this.#backoff.next('write');
          log.warn({ err: { message: String(err) }, retryInMs }, 'publishing reports failed; retrying');
          break;
        }
        for (const [key, text] of pending) this.#written.set(key, text);
        this.#backoff.forget('write');
        log.debug({ reports: [...pending.keys()] }, 'published reports');
      }
    } finally {
      this.#writing = undefined;
    }
    if (retryInMs !== undefined) this.#kick(retryInMs);
  }
}
