/**
 * One typed object controller for every kind. A kind declares only its
 * watches, its spec schema, a reconcile that returns the status it wants, and
 * pure functions for the rest; the runtime owns the machinery every kind
 * needs, once:
 *
 * - watches: the object itself, what it owns and what it maps from, each
 *   event turned into exactly the keys that depend on it;
 * - the consistency store: "my write is not in the cache yet", fed by the
 *   same events;
 * - spec parsing: a bad spec is an `InvalidSpec` status and a terminal
 *   result, never a retry;
 * - status: server-side apply under `prepull/<name>-status`, only when it
 *   changed (deep-equal against what we last wrote), at most once per
 *   interval per object (a condition that changes its status is written at
 *   once, once per interval), and written on every outcome, a failed step
 *   included, whose reason and message the conditions then carry; while the
 *   throttle holds an object's write back, the events a watch does not call
 *   urgent reach it when the throttle opens;
 * - Events derived from condition transitions;
 * - failures classified once ({@link classifyFailure}) and retried with
 *   back-off per key.
 *
 * This is the Cluster API shape: get, return early if gone, branch to
 * finalize or reconcile, and always write status once at the end.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Condition } from '../api/common.ts';
import { Reason } from '../api/conditions.ts';
import type { KubeObject } from '../api/object.ts';
import type { KubeClient } from '../kube/client.ts';
import { isNamespaceTerminating } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import { keyOf } from '../kube/objects.ts';
import type { ResourceType } from '../kube/resources.ts';
import type { Clock } from './clock.ts';
import { conditionsTransitioned, type TransitionRule, transitionEvents } from './conditions.ts';
import type { ConsistencyStore } from './consistency.ts';
import {
  Controller,
  type ControllerObserver,
  type ReconcileContext,
  type ReconcileResult,
  TerminalError,
} from './controller.ts';
import { ClassifiedError, type ClassifyOptions, causeOf, classifyFailure, type Failure } from './failure.ts';
import { WorkQueue, type WorkQueueObserver } from './queue.ts';

/** A status as the runtime handles it: any object; its `conditions`, if it has them, drive the transition Events. */
export type StatusShape = object;

/** An object of a kind: metadata, a spec, and a status of known shape. */
export interface KindObject<Status extends StatusShape> extends KubeObject {
  spec?: unknown;
  status?: Status;
}

/**
 * Something a kind watches besides its own objects: for every event, the
 * object's key (for the consistency store) and the keys of the kind's objects
 * that depend on it. Build one with {@link watch} or {@link owns}; its mapper
 * should read an index, not scan.
 */
export interface Watch {
  /** The watched type, for the consistency store. */
  resource: ResourceType;
  /**
   * `urgent`, when given, says which dependents must have the event at once
   * even while the throttle holds back their status write (see {@link WatchOptions}).
   */
  subscribe(
    onChange: (
      key: string,
      dependents: Iterable<string>,
      deleted: boolean,
      urgent?: (dependent: string) => boolean,
    ) => void,
  ): void;
}

/** One event of a watched object, for {@link WatchOptions.urgent}. */
export interface WatchedChange<O> {
  obj: O;
  /** The version before, on an update. */
  previous: O | undefined;
  deleted: boolean;
}

export interface WatchOptions<O> {
  /**
   * Whether `change` may change more for `dependent` than its status. Given,
   * every other event reaches a dependent whose status write the throttle
   * holds back only when the throttle opens: a rollout's pods change many
   * times a second, and a pass for each would compute a status that could not
   * be written sooner anyway. Absent, every event is urgent.
   */
  urgent?(change: WatchedChange<O>, dependent: string): boolean;
}

/** A watch of `informer`: `map` names the dependents of `obj` (on an update, `previous` is the version before). */
export function watch<O extends KubeObject>(
  informer: Informer<O>,
  resource: ResourceType,
  map: (obj: O, previous: O | undefined) => Iterable<string>,
  options: WatchOptions<O> = {},
): Watch {
  const { urgent } = options;
  return {
    resource,
    subscribe(onChange) {
      const changed = (obj: O, previous: O | undefined, deleted: boolean) =>
        onChange(
          keyOf(obj),
          map(obj, previous),
          deleted,
          urgent && ((dependent) => urgent({ obj, previous, deleted }, dependent)),
        );
      informer.addHandler({
        add: (obj) => changed(obj, undefined, false),
        update: (previous, obj) => changed(obj, previous, false),
        delete: (obj) => changed(obj, undefined, true),
      });
    },
  };
}

/** A watch of objects the kind owns: each maps to its owner's key, before and after an update. */
export function owns<O extends KubeObject>(
  informer: Informer<O>,
  resource: ResourceType,
  ownerKey: (obj: O) => string | undefined,
  options: WatchOptions<O> = {},
): Watch {
  return watch(
    informer,
    resource,
    (obj, previous) => {
      const keys = new Set<string>();
      for (const version of [previous, obj]) {
        const key = version && ownerKey(version);
        if (key) keys.add(key);
      }
      return keys;
    },
    options,
  );
}

/** What a kind's reconcile is given: the object as this controller last wrote it, and its parsed spec. */
export interface ReconcileRequest<T, Spec> {
  key: string;
  /** The cached object, with the status this controller last wrote if the cache does not show it yet. */
  object: T;
  spec: Spec;
  now: Date;
  log: Logger;
  /** For the kind's own writes of other objects; the runtime feeds it every watched event. */
  store: ConsistencyStore;
  /** `prepull/<name>`: the field manager of everything the kind applies besides status. */
  fieldManager: string;
  /**
   * How long until the throttle lets a status write through (0: now). A kind
   * whose status is costly to compute may skip it until then and come back;
   * the runtime would hold the write back anyway, unless a condition changes
   * its status (a transition goes through at once, once per interval).
   */
  statusDueInMs: number;
}

/** What a reconcile concluded. */
export interface ReconcileOutcome<Status> {
  /** The status to write (compared first; nothing is sent when it is unchanged). Undefined: leave it. */
  status?: Status;
  /** Come back after this long even if nothing changes. */
  requeueAfterMs?: number;
  /**
   * Part of the work failed in a way `status` already reports: written first,
   * then retried with back-off when `failure.retry`, else left until something changes.
   */
  failure?: Failure;
}

/** A kind, as the runtime runs it. */
export interface ObjectKind<T extends KindObject<Status>, Spec, Status extends StatusShape> {
  /** Controller name: metrics, logs, and the field managers `prepull/<name>` and `prepull/<name>-status`. */
  name: string;
  resource: ResourceType;
  informer: Informer<T>;
  specSchema: z.ZodType<Spec>;
  watches: Watch[];
  /**
   * Whether an update of the object itself can matter to its reconcile
   * (absent, every update does); objects made and deleted always do. A kind
   * that acts on few of its objects (the node gate, on the nodes its taint
   * holds) skips the rest: kubelets renew every node's status, thousands of
   * updates a minute in a large cluster.
   */
  updateMatters?(object: T, previous: T): boolean;
  reconcile(request: ReconcileRequest<T, Spec>): Promise<ReconcileOutcome<Status>>;
  /**
   * Pure: the status of a pass that cannot go on (an invalid spec, a failed
   * step): conditions from `failure`, everything else as it was. A kind that
   * owns no status of the objects it reconciles (the node gate) has none.
   */
  stalledStatus?(object: T, failure: Failure, now: Date): Status;
  /** Events on condition transitions. */
  transitions: readonly TransitionRule[];
  /**
   * The object is being deleted. Without a finalize the runtime does nothing:
   * owned objects go with the garbage collector.
   */
  finalize?(request: ReconcileRequest<T, Spec>): Promise<ReconcileOutcome<Status>>;
  /** The object left the cache: drop whatever the kind keeps for it. */
  forget?(key: string): void;
  /**
   * For event sources the runtime does not watch itself (watches the kind
   * starts and stops per object): called once with the queue's `add`.
   */
  connect?(enqueue: (key: string) => void): void;
  /** Stops what the kind started; the controller calls it after its workers have stopped. */
  stop?(): Promise<void>;
  /**
   * Status writes per object at least this far apart, the first immediate
   * (default 0); a function of the object for a kind whose status costs more
   * to compute as the object grows.
   */
  statusWriteIntervalMs?: number | ((object: T) => number);
  /** How failures are described (e.g. without the server's text where a write body is secret). */
  classify?: ClassifyOptions;
}

export interface ObjectControllerDeps {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  events: EventRecorder;
  store: ConsistencyStore;
  /** Keys reconciled at once (never the same key twice). */
  concurrency: number;
  observer?: ControllerObserver;
  queueObserver?: WorkQueueObserver;
}

/** The field manager of a controller's writes other than status. */
export function fieldManagerOf(name: string): string {
  return `prepull/${name}`;
}

/** The field manager of a controller's status writes. */
export function statusFieldManagerOf(name: string): string {
  return `prepull/${name}-status`;
}

/** The consistency store's name for an object's status subresource. */
export function statusResourceOf(type: ResourceType): ResourceType {
  return { ...type, plural: `${type.plural}/status` };
}

/** `path: message; …` for a spec the schema refused. */
export function formatSchemaError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`).join('; ');
}

/**
 * Builds the controller of `kind`: its queue, the handlers that fill it, and
 * the reconcile of one key. Every object in the cache is queued for a first
 * pass; `start()` runs it.
 */
export function createObjectController<T extends KindObject<Status>, Spec, Status extends StatusShape>(
  kind: ObjectKind<T, Spec, Status>,
  deps: ObjectControllerDeps,
): Controller {
  const { client, clock, store } = deps;
  const queue = new WorkQueue<string>({
    clock,
    ...(deps.queueObserver ? { observer: deps.queueObserver } : {}),
  });
  const statusType = statusResourceOf(kind.resource);
  const fieldManager = fieldManagerOf(kind.name);
  const statusFieldManager = statusFieldManagerOf(kind.name);
  const intervalOption = kind.statusWriteIntervalMs ?? 0;
  /** The throttle's interval for the object of `key` (as cached). */
  const intervalOf = (key: string): number => {
    if (typeof intervalOption === 'number') return intervalOption;
    const object = kind.informer.get(key);
    return object ? intervalOption(object) : 0;
  };
  /** When each object's status was last written, for the per-object throttle. */
  const lastWrite = new Map<string, number>();
  /** When a condition transition last went past the throttle, per object: once per interval, so a flapping condition is throttled too. */
  const lastTransitionWrite = new Map<string, number>();
  /** Objects whose namespace the API server reported as being deleted, by key: their uid then. */
  const namespaceGoing = new Map<string, string>();

  kind.informer.addHandler({
    add: (obj) => queue.add(keyOf(obj)),
    update: (previous, obj) => {
      store.seen(statusType, keyOf(obj), false);
      if (kind.updateMatters && !kind.updateMatters(obj, previous)) return;
      queue.add(keyOf(obj));
    },
    delete: (obj) => {
      store.seen(statusType, keyOf(obj), true);
      queue.add(keyOf(obj));
    },
  });
  for (const w of kind.watches) {
    w.subscribe((objectKey, dependents, deleted, urgent) => {
      store.seen(w.resource, objectKey, deleted);
      for (const key of dependents) {
        // An event that can change only status waits while the throttle holds the write back.
        const wait = urgent ? statusDueInMs(key) : 0;
        if (wait > 0 && !urgent?.(key)) queue.addAfter(key, wait);
        else queue.add(key);
      }
    });
  }
  kind.connect?.((key) => queue.add(key));
  for (const obj of kind.informer.list()) queue.add(keyOf(obj));

  /**
   * Writes `status` if it differs from the object's; returns how long to wait
   * when the throttle holds it back (`immediate` skips the throttle).
   */
  async function writeStatus(object: T, status: Status, log: Logger, immediate: boolean) {
    const key = keyOf(object);
    if (isDeepStrictEqual(object.status ?? {}, status)) return undefined;
    const conditions = (s: StatusShape | undefined) =>
      (s as { conditions?: Condition[] } | undefined)?.conditions;
    if (!immediate) {
      const wait = statusDueInMs(key);
      const transition =
        conditionsTransitioned(conditions(object.status), conditions(status)) &&
        (lastTransitionWrite.get(key) ?? Number.NEGATIVE_INFINITY) + intervalOf(key) <= clock.now();
      if (wait > 0 && !transition) return wait;
      if (wait > 0) lastTransitionWrite.set(key, clock.now());
    }
    await client.apply(
      kind.resource,
      {
        metadata: { name: object.metadata.name, namespace: object.metadata.namespace },
        status,
      } as KubeObject,
      { fieldManager: statusFieldManager, force: true, subresource: 'status' },
    );
    store.wrote(statusType, key, object.metadata.resourceVersion, { value: status });
    lastWrite.set(key, clock.now());
    log.debug('wrote status');
    for (const e of transitionEvents(conditions(object.status), conditions(status), kind.transitions)) {
      await deps.events.record(object, e.type, e.reason, e.action, e.note);
    }
    return undefined;
  }

  /** The status of a failed pass, written at once; a failure to write it is logged, not thrown over the first. */
  async function writeStalled(object: T, failure: Failure, now: Date, log: Logger): Promise<void> {
    try {
      if (kind.stalledStatus) await writeStatus(object, kind.stalledStatus(object, failure, now), log, true);
    } catch (err) {
      log.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        'could not write status',
      );
    }
  }

  /** Milliseconds until the throttle lets a status write for `key` through. */
  function statusDueInMs(key: string): number {
    const last = lastWrite.get(key);
    return last === undefined ? 0 : Math.max(0, last + intervalOf(key) - clock.now());
  }

  async function reconcileKey(key: string, { log }: ReconcileContext): Promise<ReconcileResult | undefined> {
    const cached = kind.informer.get(key);
    if (!cached) {
      lastWrite.delete(key);
      lastTransitionWrite.delete(key);
      store.forget(statusType, key);
      kind.forget?.(key);
      namespaceGoing.delete(key);
      return undefined;
    }
    // Its namespace is being deleted, and it with it: nothing more to do.
    if (namespaceGoing.get(key) === (cached.metadata.uid ?? '')) return undefined;
    const mine = store.written<Status>(statusType, key, cached);
    const object: T = mine ? { ...cached, status: mine } : cached;
    const now = new Date(clock.now());
    const parsed = kind.specSchema.safeParse(object.spec);
    const request = (spec: Spec): ReconcileRequest<T, Spec> => ({
      key,
      object,
      spec,
      now,
      log,
      store,
      fieldManager,
      statusDueInMs: statusDueInMs(key),
    });

    if (object.metadata.deletionTimestamp) {
      if (!kind.finalize || !parsed.success) return undefined;
      return finish(object, await kind.finalize(request(parsed.data)), log, true);
    }
    if (!parsed.success) {
      const message = formatSchemaError(parsed.error);
      const failure = { reason: Reason.InvalidSpec, message, retry: false };
      if (kind.stalledStatus) await writeStatus(object, kind.stalledStatus(object, failure, now), log, true);
      throw new TerminalError(Reason.InvalidSpec, message);
    }

    let outcome: ReconcileOutcome<Status>;
    try {
      outcome = await kind.reconcile(request(parsed.data));
    } catch (err) {
      if (isNamespaceTerminating(causeOf(err))) {
        // No status, no Event (the API server refuses it too), no retry: the
        // namespace controller deletes this object next. Its uid, not its key,
        // is what is going: an object of the same name in a namespace made
        // again is reconciled as any other.
        namespaceGoing.set(key, cached.metadata.uid ?? '');
        log.debug('namespace is being deleted; leaving the object to go with it');
        return undefined;
      }
      const failure = classifyFailure(err, kind.classify);
      await writeStalled(object, failure, now, log);
      if (!failure.retry) throw new TerminalError(failure.reason, failure.message);
      throw new ClassifiedError(failure);
    }
    return finish(object, outcome, log, false);
  }

  async function finish(
    object: T,
    outcome: ReconcileOutcome<Status>,
    log: Logger,
    immediate: boolean,
  ): Promise<ReconcileResult | undefined> {
    const throttled = outcome.status
      ? await writeStatus(object, outcome.status, log, immediate || outcome.failure !== undefined)
      : undefined;
    if (outcome.failure?.retry) throw new ClassifiedError(outcome.failure);
    const comeBack = [throttled, outcome.requeueAfterMs].filter((ms): ms is number => ms !== undefined);
    return comeBack.length > 0 ? { requeueAfterMs: Math.min(...comeBack) } : undefined;
  }

  return new Controller({
    name: kind.name,
    queue,
    concurrency: deps.concurrency,
    clock,
    log: deps.log,
    reconcile: reconcileKey,
    ...(deps.observer ? { observer: deps.observer } : {}),
    ...(kind.stop ? { onStop: kind.stop } : {}),
  });
}
