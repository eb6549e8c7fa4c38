/**
 * Kubernetes Events (events.k8s.io/v1) about Prepull's objects, for
 * `kubectl describe` and `kubectl events`. The same event about the same
 * object is not repeated within a quiet period, so a flapping node cannot
 * flood the API server. Notes must never carry secrets: callers pass
 * kubelet messages and reasons, never credentials.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import type { KubeObject } from './objects.ts';
import { Resources } from './resources.ts';
import { microTime } from './time.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  /** e.g. prepull.dev/operator */
  reportingController: string;
  /** This process, e.g. the pod name. */
  reportingInstance: string;
  /** An identical event about one object is sent at most once per this period. */
  quietPeriodMs?: number;
}

/** Longest name the API server takes for an Event (a DNS subdomain). */
export const MAX_EVENT_NAME = 253;

/**
 * client-go's naming, the object's name and a unique suffix, kept within 253
 * characters: a long name is cut and a hash of the whole name added, so two
 * long names that share their first 230 characters still differ. Pure.
 */
export function eventName(objectName: string, now: number, seq: number): string {
  const suffix = `.${now.toString(16)}${seq.toString(16)}`;
  const name = `${objectName}${suffix}`;
  if (name.length <= MAX_EVENT_NAME) return name;
  const hash = createHash('sha256').update(objectName).digest('hex').slice(0, 8);
  // A DNS subdomain: the cut part must not end in . or - before the hash.
  const keep = objectName.slice(0, MAX_EVENT_NAME - suffix.length - hash.length - 1).replace(/[.-]+$/, '');
  return `${keep}-${hash}${suffix}`;
}

export class EventRecorder {
  readonly #options: EventRecorderOptions;
  readonly #lastSent = new Map<string, number>();
  #seq = 0;

  constructor(options: EventRecorderOptions) {
    this.#options = options;
  }

  /** Records an event; never throws (a lost event must not fail a reconcile). */
  async record(
    regarding: KubeObject,
    type: EventType,
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const { clock, client, log } = this.#options;
    const now = clock.now();
    const dedupe = `${regarding.metadata.uid}|${type}|${reason}|${note}`;
    const last = this.#lastSent.get(dedupe);
    if (last !== undefined && now - last < (this.#options.quietPeriodMs ?? 10 * 60_000)) return;
    this.#lastSent.set(dedupe, now);
    if (this.#lastSent.size > 10_000) this.#forgetOldest();
    const namespace = regarding.metadata.namespace || 'default';
    try {
      await client.create(Resources.events, {
        metadata: { name: eventName(regarding.metadata.name ?? '', now, this.#seq++), namespace },
        eventTime: microTime(now),
        reportingController: this.#options.reportingController,
        reportingInstance: this.#options.reportingInstance,
        action,
        reason,
        type,
        note: note.length > 1024 ? `${note.slice(0, 1023)}…` : note,
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: regarding.metadata.name,
          ...(regarding.metadata.namespace ? { namespace: regarding.metadata.namespace } : {}),
          uid: regarding.metadata.uid,
          resourceVersion: regarding.metadata.resourceVersion,
        },
      });
    } catch (err) {
      log.warn(
        { reason, err: { message: err instanceof Error ? err.message : String(err) } },
        'could not record event',
      );
    }
  }

  #forgetOldest(): void {
    const cutoff = this.#options.clock.now() - (this.#options.quietPeriodMs ?? 10 * 60_000);
    for (const [key, at] of this.#lastSent) if (at < cutoff) this.#lastSent.delete(key);
  }
}
