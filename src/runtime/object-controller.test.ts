import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Condition } from '../api/common.ts';
import type { KubeClient, ListResult, WatchEvent } from '../kube/client.ts';
import { ApiError } from '../kube/errors.ts';
import { EventRecorder } from '../kube/events.ts';
import { Informer, type ListWatchSource } from '../kube/informer.ts';
import type { KubeObject } from '../kube/objects.ts';
import type { ResourceType } from '../kube/resources.ts';
import { FakeClock } from './clock.ts';
import { applyConditions, verdict } from './conditions.ts';
import { ConsistencyStore } from './consistency.ts';
import type { Controller } from './controller.ts';
import { type Failure, StepError } from './failure.ts';
import {
  createObjectController,
  type ObjectKind,
  owns,
  type ReconcileOutcome,
  type WatchOptions,
} from './object-controller.ts';

const log = pino({ level: 'silent' });
const widgets: ResourceType = {
  group: 'test.dev',
  version: 'v1',
  plural: 'widgets',
  kind: 'Widget',
  namespaced: true,
};
const SET = { ready: 'Ready', progressing: 'Progressing', failing: 'Degraded' };

interface WidgetStatus {
  conditions?: Condition[];
  count?: number;
}
interface Widget extends KubeObject {
  spec: { replicas: number };
  status?: WidgetStatus;
}
const specSchema = z.strictObject({ replicas: z.number().int().min(0) });

/** A list/watch source the test drives: objects, and watch events pushed by hand. */
class Source implements ListWatchSource<Widget> {
  rv = 1;
  objects = new Map<string, Widget>();
  #push: ((e: WatchEvent<Widget>) => void) | undefined;
  #backlog: WatchEvent<Widget>[] = [];

  put(obj: Widget, type: 'ADDED' | 'MODIFIED' = 'MODIFIED'): Widget {
    const next = structuredClone({
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(++this.rv) },
    });
    this.objects.set(next.metadata.name ?? '', next);
    const event = { type, object: structuredClone(next) };
    if (this.#push) this.#push(event);
    else this.#backlog.push(event);
    return next;
  }

  async list(): Promise<ListResult<Widget>> {
    return {
      items: [...this.objects.values()].map((o) => structuredClone(o)),
      resourceVersion: String(this.rv),
    };
  }

  watch(_options: unknown, signal: AbortSignal): AsyncIterable<WatchEvent<Widget>> {
    const queue: WatchEvent<Widget>[] = this.#backlog.splice(0);
    let wake: (() => void) | undefined;
    this.#push = (e) => {
      queue.push(e);
      wake?.();
    };
    return (async function* () {
      while (!signal.aborted) {
        while (queue.length === 0) {
          await new Promise<void>((r) => {
            wake = r;
            signal.addEventListener('abort', () => r(), { once: true });
          });
          if (signal.aborted) return;
        }
        yield queue.shift()!;
      }
    })();
  }
}

/** Records status applies and Event creates; a status apply can be made to fail. */
class FakeClient {
  statusWrites: WidgetStatus[] = [];
  events: Array<{ reason: string; type: string; note: string }> = [];
  readonly source: Source;

  constructor(source: Source) {
    this.source = source;
  }

  async apply(_type: ResourceType, obj: Widget, options: { subresource?: string }): Promise<Widget> {
    if (options.subresource !== 'status') throw new Error('unexpected apply');
    this.statusWrites.push(structuredClone(obj.status ?? {}));
    const current = this.source.objects.get(obj.metadata.name ?? '')!;
    return { ...current, status: obj.status ?? {} };
  }

  async create(_type: ResourceType, obj: { reason: string; type: string; note: string }) {
    this.events.push({ reason: obj.reason, type: obj.type, note: obj.note });
    return obj;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

function widget(replicas: number | string, generation = 1): Widget {
  return {
    apiVersion: 'test.dev/v1',
    kind: 'Widget',
    metadata: { name: 'w', namespace: 'ns', uid: 'uid-w', generation },
    spec: { replicas: replicas as number },
  };
}

function stalled(obj: Widget, failure: Failure, now: Date): WidgetStatus {
  const decided = verdict(SET, { ...failure, ready: false, progressing: failure.retry, failing: true });
  return { ...obj.status, conditions: applyConditions(obj, decided, now) };
}

async function setup(
  options: {
    intervalMs?: number | ((obj: Widget) => number);
    reconcile?: (obj: Widget) => Promise<ReconcileOutcome<WidgetStatus>>;
    /** Also watch parts, widgets owned by the widget their `owner` annotation names, with these options. */
    parts?: WatchOptions<Widget>;
    updateMatters?: (obj: Widget, previous: Widget) => boolean;
  } = {},
) {
  const clock = new FakeClock();
  const source = new Source();
  const client = new FakeClient(source);
  const informer = new Informer<Widget>({ name: 'widgets', source, clock, log });
  const partSource = new Source();
  const parts = new Informer<Widget>({ name: 'parts', source: partSource, clock, log });
  const reconciles: string[] = [];
  const kind: ObjectKind<Widget, { replicas: number }, WidgetStatus> = {
    name: 'widget',
    resource: widgets,
    informer,
    specSchema,
    watches: options.parts
      ? [owns(parts, widgets, (part) => part.metadata.annotations?.owner, options.parts)]
      : [],
    statusWriteIntervalMs: options.intervalMs ?? 0,
    ...(options.updateMatters && { updateMatters: options.updateMatters }),
    transitions: [
      { condition: 'Ready', when: 'becameTrue', type: 'Normal', action: 'Count' },
      { condition: 'Degraded', when: 'trueAndNew', type: 'Warning', action: 'Count' },
    ],
    stalledStatus: stalled,
    async reconcile({ object, spec, now }) {
      reconciles.push(object.metadata.resourceVersion ?? '');
      if (options.reconcile) return options.reconcile(object);
      const decided = verdict(SET, {
        reason: 'Counted',
        message: `${spec.replicas} counted`,
        ready: true,
        progressing: false,
        failing: false,
      });
      return { status: { conditions: applyConditions(object, decided, now), count: spec.replicas } };
    },
  };
  const events = new EventRecorder({
    client: client as unknown as KubeClient,
    clock,
    log,
    reportingController: 'test',
    reportingInstance: 'test',
    quietPeriodMs: 0,
  });
  const controller: Controller = createObjectController(kind, {
    client: client as unknown as KubeClient,
    clock,
    log,
    events,
    store: new ConsistencyStore(),
    concurrency: 1,
  });
  informer.start();
  parts.start();
  await Promise.all([informer.waitForSync(), parts.waitForSync()]);
  controller.start();
  const stop = async () => {
    await controller.stop();
    await parts.stop();
  };
  return { clock, source, partSource, client, informer, controller, reconciles, stop };
}

describe('createObjectController', () => {
  it('writes status once, and a reconcile before the cache shows it writes nothing again', async () => {
    const { source, client, controller, informer } = await setup();
    source.put(widget(3), 'ADDED');
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    expect(client.statusWrites[0]?.count).toBe(3);
    // Our write has not come back through the watch; a second pass sees the stale cache.
    expect(informer.get('ns/w')?.status).toBeUndefined();
    controller.queue.add('ns/w');
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    expect(client.events.map((e) => e.reason)).toEqual(['Counted']);
    await controller.stop();
  });

  it('throttles status writes per object and comes back for the rest', async () => {
    const { clock, source, client, controller } = await setup({ intervalMs: 2_000 });
    source.put(widget(1), 'ADDED');
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    source.put({ ...widget(2, 2), status: client.statusWrites[0]! });
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    clock.advance(2_000);
    await settle();
    expect(client.statusWrites.map((s) => s.count)).toEqual([1, 2]);
    await controller.stop();
  });

  it('reconciles only the updates the kind says can matter; a new object always', async () => {
    const { source, controller, reconciles } = await setup({
      updateMatters: (obj, previous) =>
        obj.metadata.labels?.held === 'yes' || previous.metadata.labels?.held === 'yes',
    });
    source.put(widget(1), 'ADDED');
    await settle();
    expect(reconciles).toHaveLength(1);
    source.put(widget(2, 2));
    await settle();
    expect(reconciles).toHaveLength(1);
    const held = { ...widget(3, 3), metadata: { ...widget(3, 3).metadata, labels: { held: 'yes' } } };
    source.put(held);
    await settle();
    expect(reconciles).toHaveLength(2);
    // Released: the update that lets it go still reaches the reconcile.
    source.put(widget(4, 4));
    await settle();
    expect(reconciles).toHaveLength(3);
    await controller.stop();
  });

  it('takes the throttle interval of each object from the object, when the kind says so', async () => {
    const { clock, source, client, stop } = await setup({ intervalMs: (w) => w.spec.replicas * 1_000 });
    source.put(widget(3), 'ADDED');
    await settle();
    source.put({ ...widget(4, 2), status: client.statusWrites[0]! });
    await settle();
    clock.advance(3_000);
    await settle();
    // Four replicas: four seconds.
    expect(client.statusWrites.map((s) => s.count)).toEqual([3]);
    clock.advance(1_000);
    await settle();
    expect(client.statusWrites.map((s) => s.count)).toEqual([3, 4]);
    await stop();
  });

  it('lets a condition transition past the throttle at once, once per interval', async () => {
    const counted = (object: Widget, ready: boolean) => {
      const decided = verdict(SET, {
        reason: ready ? 'Counted' : 'Counting',
        message: `${object.spec.replicas} counted`,
        ready,
        progressing: !ready,
        failing: false,
      });
      const count = object.spec.replicas;
      return { status: { conditions: applyConditions(object, decided, new Date(0)), count } };
    };
    const { clock, source, client, controller } = await setup({
      intervalMs: 2_000,
      reconcile: async (object) => counted(object, object.spec.replicas >= 3),
    });
    const ready = () => client.statusWrites.map((s) => s.conditions?.find((c) => c.type === 'Ready')?.status);
    source.put(widget(1), 'ADDED');
    await settle();
    // A count that moves within the interval waits for it.
    source.put({ ...widget(2, 2), status: client.statusWrites[0]! });
    await settle();
    expect(client.statusWrites.map((s) => s.count)).toEqual([1]);
    // Ready turning True does not wait.
    source.put({ ...widget(3, 3), status: client.statusWrites[0]! });
    await settle();
    expect(client.statusWrites.map((s) => s.count)).toEqual([1, 3]);
    expect(ready()).toEqual(['False', 'True']);
    expect(client.events.map((e) => e.reason)).toEqual(['Counted']);
    // A second transition in the same interval waits: a flapping condition is throttled like a count.
    source.put({ ...widget(1, 4), status: client.statusWrites[1]! });
    await settle();
    expect(client.statusWrites).toHaveLength(2);
    clock.advance(2_000);
    await settle();
    expect(ready()).toEqual(['False', 'True', 'False']);
    await controller.stop();
  });

  it('writes the failed step into status with the server message, and retries with back-off', async () => {
    let fail = true;
    const { clock, source, client, controller, reconciles } = await setup({
      async reconcile() {
        if (fail) {
          throw new StepError(
            'applying the child',
            new ApiError(403, 'Forbidden', 'pods "x" is forbidden: exceeded quota: compute', 'apply'),
          );
        }
        return { status: { count: 1 } };
      },
    });
    source.put(widget(1), 'ADDED');
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    const degraded = client.statusWrites[0]?.conditions?.find((c) => c.type === 'Degraded');
    expect(degraded).toMatchObject({ status: 'True', reason: 'Forbidden' });
    expect(degraded?.message).toBe(
      'applying the child: 403 Forbidden: pods "x" is forbidden: exceeded quota: compute',
    );
    expect(client.events).toEqual([{ type: 'Warning', reason: 'Forbidden', note: degraded?.message }]);
    const tries = reconciles.length;
    fail = false;
    clock.advance(60_000);
    await settle();
    expect(reconciles.length).toBe(tries + 1);
    expect(client.statusWrites.at(-1)?.count).toBe(1);
    await controller.stop();
  });

  it('leaves an object whose namespace is being deleted: no status, no Event, no retry, until it is made again', async () => {
    const terminating = new ApiError(
      403,
      'Forbidden',
      'daemonsets.apps "x" is forbidden: unable to create new content in namespace ns because it is being terminated',
      'apply',
      ['NamespaceTerminating'],
    );
    let fail = true;
    const { clock, source, client, controller, reconciles } = await setup({
      async reconcile() {
        if (fail) throw new StepError('applying the child', terminating);
        return { status: { count: 1 } };
      },
    });
    source.put(widget(1), 'ADDED');
    await settle();
    expect(reconciles).toHaveLength(1);
    // Children going one by one wake the object again: it is not tried again.
    controller.queue.add('ns/w');
    clock.advance(3_600_000);
    await settle();
    expect(reconciles).toHaveLength(1);
    expect(client.statusWrites).toEqual([]);
    expect(client.events).toEqual([]);
    // The namespace made again, and an object of the same name in it: a new uid, reconciled as any other.
    fail = false;
    source.put({ ...widget(1), metadata: { ...widget(1).metadata, uid: 'uid-w-again' } }, 'ADDED');
    await settle();
    expect(reconciles).toHaveLength(2);
    expect(client.statusWrites.map((s) => s.count)).toEqual([1]);
    await controller.stop();
  });

  it('retries a plain 403 even when the namespace is the same: only NamespaceTerminating means going', async () => {
    const { clock, source, controller, reconciles } = await setup({
      async reconcile() {
        throw new ApiError(403, 'Forbidden', 'daemonsets.apps is forbidden: User cannot patch', 'apply', []);
      },
    });
    source.put(widget(1), 'ADDED');
    await settle();
    const tries = reconciles.length;
    clock.advance(60_000);
    await settle();
    expect(reconciles.length).toBeGreaterThan(tries);
    await controller.stop();
  });

  it('stalls on a spec the schema refuses: InvalidSpec, one write, no retry', async () => {
    const { clock, source, client, controller, reconciles } = await setup();
    source.put(widget('three'), 'ADDED');
    await settle();
    expect(reconciles).toEqual([]);
    expect(client.statusWrites).toHaveLength(1);
    expect(client.statusWrites[0]?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      observedGeneration: 1,
    });
    expect(client.statusWrites[0]?.conditions?.find((c) => c.type === 'Progressing')?.status).toBe('False');
    clock.advance(3_600_000);
    await settle();
    expect(client.statusWrites).toHaveLength(1);
    expect(reconciles).toEqual([]);
    await controller.stop();
  });

  it('records Events on transitions only, not on every write', async () => {
    const { source, client, controller } = await setup();
    let current = source.put(widget(1), 'ADDED');
    await settle();
    for (const replicas of [2, 3]) {
      current = source.put({ ...widget(replicas, replicas), status: client.statusWrites.at(-1)! });
      await settle();
    }
    expect(client.statusWrites.map((s) => s.count)).toEqual([1, 2, 3]);
    // Ready became True once; it stayed True through the later writes.
    expect(client.events.map((e) => e.reason)).toEqual(['Counted']);
    expect(current.metadata.generation).toBe(3);
    await controller.stop();
  });

  it('holds a change of an owned object that is not urgent until the status throttle opens, and passes an urgent one at once', async () => {
    const { clock, source, partSource, client, reconciles, stop } = await setup({
      intervalMs: 2_000,
      parts: { urgent: ({ obj }) => obj.metadata.labels?.urgent === 'yes' },
    });
    const part = (name: string, urgent: boolean): Widget => ({
      ...widget(0),
      metadata: {
        name,
        namespace: 'ns',
        annotations: { owner: 'ns/w' },
        ...(urgent && { labels: { urgent: 'yes' } }),
      },
    });
    source.put(widget(1), 'ADDED');
    await settle();
    expect([reconciles.length, client.statusWrites.length]).toEqual([1, 1]);
    // Within the interval after that write, plain changes wait for it to end, and come as one pass.
    partSource.put(part('p', false), 'ADDED');
    partSource.put(part('q', false), 'ADDED');
    await settle();
    clock.advance(1_000);
    await settle();
    expect(reconciles).toHaveLength(1);
    clock.advance(1_000);
    await settle();
    expect(reconciles).toHaveLength(2);
    // That pass wrote nothing (status unchanged), so the throttle is open: nothing is held.
    partSource.put(part('q', false));
    await settle();
    expect(reconciles).toHaveLength(3);
    // A new write closes it again; a plain change waits, an urgent one does not, and takes the held one with it.
    source.put({ ...widget(2, 2), status: client.statusWrites[0]! });
    await settle();
    expect([reconciles.length, client.statusWrites.length]).toEqual([4, 2]);
    partSource.put(part('p', false));
    await settle();
    expect(reconciles).toHaveLength(4);
    partSource.put(part('q', true));
    await settle();
    expect(reconciles).toHaveLength(5);
    clock.advance(2_000);
    await settle();
    expect(reconciles).toHaveLength(5);
    await stop();
  });
});
