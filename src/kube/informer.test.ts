import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../runtime/clock.ts';
import type { ListResult, WatchEvent } from './client.ts';
import { ApiError } from './errors.ts';
import { Informer, type ListWatchSource, type RestartReason } from './informer.ts';
import type { KubeObject } from './objects.ts';

const log = pino({ level: 'silent' });

function cm(name: string, rv: number, data = ''): KubeObject {
  return { metadata: { name, namespace: 'ns', resourceVersion: String(rv), managedFields: [{}] }, data };
}

/** A scripted API: a list of current objects, and watches the test feeds event by event. */
class ScriptedSource implements ListWatchSource<KubeObject> {
  objects = new Map<string, KubeObject>();
  rv = 1;
  lists = 0;
  watches: Array<{
    from: string;
    timeoutSeconds: number;
    push: (e: WatchEvent<KubeObject> | Error | 'end') => void;
  }> = [];
  listError: Error | undefined;

  set(name: string, data = ''): KubeObject {
    const obj = cm(name, ++this.rv, data);
    this.objects.set(name, obj);
    return obj;
  }

  async list(options: { limit?: number; continue?: string }): Promise<ListResult<KubeObject>> {
    this.lists++;
    if (this.listError) throw this.listError;
    const all = [...this.objects.values()].map((o) => structuredClone(o));
    const start = options.continue ? Number(options.continue) : 0;
    const limit = options.limit ?? all.length;
    const items = all.slice(start, start + limit);
    const next = start + limit < all.length ? String(start + limit) : undefined;
    return { items, resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) };
  }

  watch(
    options: { resourceVersion: string; timeoutSeconds: number },
    signal: AbortSignal,
  ): AsyncIterable<WatchEvent<KubeObject>> {
    const queue: Array<WatchEvent<KubeObject> | Error | 'end'> = [];
    let wake: (() => void) | undefined;
    const push = (e: WatchEvent<KubeObject> | Error | 'end') => {
      queue.push(e);
      wake?.();
    };
    this.watches.push({ from: options.resourceVersion, timeoutSeconds: options.timeoutSeconds, push });
    signal.addEventListener('abort', () => push(new DOMException('aborted', 'AbortError')));
    return (async function* () {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const next = queue.shift()!;
        if (next === 'end') return;
        if (next instanceof Error) throw next;
        yield structuredClone(next);
      }
    })();
  }

  get current() {
    return this.watches.at(-1)!;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

function setup(options: { pageSize?: number; stallTimeoutMs?: number } = {}) {
  const clock = new FakeClock();
  const source = new ScriptedSource();
  const restarts: RestartReason[] = [];
  const informer = new Informer<KubeObject>({
    name: 'configmaps',
    source,
    clock,
    log,
    random: () => 0,
    onRestart: (r) => restarts.push(r),
    ...options,
  });
  const seen: string[] = [];
  informer.addHandler({
    add: (o) => seen.push(`add ${o.metadata.name}`),
    update: (_, o) => seen.push(`update ${o.metadata.name}`),
    delete: (o) => seen.push(`delete ${o.metadata.name}`),
  });
  return { clock, source, informer, seen, restarts };
}

describe('Informer', () => {
  it('lists every page, syncs, strips managedFields, then watches from the list resourceVersion', async () => {
    const { source, informer, seen } = setup({ pageSize: 2 });
    for (const n of ['a', 'b', 'c', 'd', 'e']) source.set(n);
    informer.start();
    await informer.waitForSync();
    await settle();
    expect(informer.hasSynced).toBe(true);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(informer.get('ns/a')?.metadata.managedFields).toBeUndefined();
    expect(source.current.from).toBe(String(source.rv));
    expect(seen).toHaveLength(5);
    await informer.stop();
  });

  it('applies watch events to the cache and tells handlers', async () => {
    const { source, informer, seen } = setup();
    source.set('a');
    informer.start();
    await informer.waitForSync();
    await settle();
    source.current.push({ type: 'ADDED', object: source.set('b') });
    source.current.push({ type: 'MODIFIED', object: source.set('a', 'changed') });
    source.current.push({ type: 'DELETED', object: cm('b', ++source.rv) });
    await settle();
    expect(informer.get('ns/a')?.data).toBe('changed');
    expect(informer.get('ns/b')).toBeUndefined();
    expect(seen).toEqual(['add a', 'add b', 'update a', 'delete b']);
    await informer.stop();
  });

  it('re-watches from the last resourceVersion, bookmarks included, when the server closes the watch', async () => {
    const { source, informer, restarts } = setup();
    informer.start();
    await informer.waitForSync();
    await settle();
    source.current.push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '42' } } });
    source.current.push('end');
    await settle();
    expect(source.watches).toHaveLength(2);
    expect(source.current.from).toBe('42');
    expect(source.lists).toBe(1);
    expect(restarts).toEqual(['closed']);
    await informer.stop();
  });

  it('lists again on 410 Gone and reports what changed meanwhile, deletions included', async () => {
    const { source, informer, seen, restarts } = setup();
    source.set('a');
    source.set('b');
    informer.start();
    await informer.waitForSync();
    await settle();
    // While the watch was away: b deleted, c created, a changed.
    source.objects.delete('b');
    source.set('c');
    source.set('a', 'new');
    source.current.push({
      type: 'ERROR',
      object: {
        metadata: {},
        code: 410,
        reason: 'Expired',
        message: 'too old resource version',
      } as KubeObject,
    });
    await settle();
    expect(restarts).toEqual(['gone']);
    expect(source.lists).toBe(2);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'c']);
    expect(informer.get('ns/a')?.data).toBe('new');
    expect(seen.slice(2)).toEqual(['delete b', 'update a', 'add c']);
    await informer.stop();
  });

  it('backs off with growing delays on errors and resumes without a relist', async () => {
    const { clock, source, informer, restarts } = setup();
    informer.start();
    await informer.waitForSync();
    await settle();
    source.current.push(new Error('connection reset'));
    await settle();
    expect(source.watches).toHaveLength(1);
    clock.advance(499);
    await settle();
    expect(source.watches).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(source.watches).toHaveLength(2);
    source.current.push(new ApiError(503, 'ServiceUnavailable', 'down', 'watch'));
    await settle();
    clock.advance(999);
    await settle();
    expect(source.watches).toHaveLength(2);
    clock.advance(1);
    await settle();
    expect(source.watches).toHaveLength(3);
    expect(source.lists).toBe(1);
    expect(restarts).toEqual(['error', 'error']);
    await informer.stop();
  });

  it('keeps retrying a failing list and only then syncs', async () => {
    const { clock, source, informer } = setup();
    source.set('a');
    source.listError = new ApiError(500, 'InternalError', 'etcd unavailable', 'list');
    informer.start();
    await settle();
    expect(informer.hasSynced).toBe(false);
    source.listError = undefined;
    await settle();
    clock.advance(500);
    await informer.waitForSync();
    expect(informer.list()).toHaveLength(1);
    await informer.stop();
  });

  it('stops cleanly when stopped while a list is in flight', async () => {
    const { source, informer } = setup();
    informer.start();
    await informer.stop();
    expect(source.watches).toHaveLength(0);
  });

  it('restarts a watch that goes silent', async () => {
    const { clock, source, informer, restarts } = setup({ stallTimeoutMs: 60_000 });
    informer.start();
    await informer.waitForSync();
    await settle();
    clock.advance(59_000);
    await settle();
    source.current.push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } });
    await settle();
    clock.advance(59_000);
    await settle();
    expect(source.watches).toHaveLength(1);
    clock.advance(1_000);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(restarts).toEqual(['stall']);
    expect(source.watches).toHaveLength(2);
    expect(source.current.from).toBe('7');
    await informer.stop();
  });

  it('lets a watch the server sends no bookmarks on run to its long timeout, until a bookmark comes', async () => {
    const { clock, source, informer, restarts } = setup({ stallTimeoutMs: 60_000 });
    informer.start();
    await informer.waitForSync();
    await settle();
    expect(source.current.timeoutSeconds).toBe(300);
    // Silent before any bookmark: not known to be dead, so restarted at once, with a long timeout.
    clock.advance(60_000);
    await settle();
    expect(restarts).toEqual(['stall']);
    expect(source.watches).toHaveLength(2);
    expect(source.current.timeoutSeconds).toBe(1200);
    // Silence is no stall now, until a minute after the server should have ended the watch.
    clock.advance(1_200_000);
    await settle();
    expect(source.watches).toHaveLength(2);
    clock.advance(60_000);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(restarts).toEqual(['stall', 'stall']);
    expect(source.watches).toHaveLength(3);
    // A bookmark says the server sends them: silence is a stall again.
    source.current.push({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } });
    await settle();
    clock.advance(60_000);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(restarts).toEqual(['stall', 'stall', 'stall']);
    expect(source.current.from).toBe('9');
    expect(source.current.timeoutSeconds).toBe(300);
    expect(source.lists).toBe(1);
    await informer.stop();
  });

  it('finds objects through an index and keeps it current', async () => {
    const { source, informer } = setup();
    informer.addIndex('data', (o) => [String(o.data)]);
    source.set('a', 'x');
    source.set('b', 'y');
    informer.start();
    await informer.waitForSync();
    await settle();
    expect(informer.byIndex('data', 'x').map((o) => o.metadata.name)).toEqual(['a']);
    source.current.push({ type: 'MODIFIED', object: source.set('a', 'y') });
    await settle();
    expect(informer.byIndex('data', 'x')).toEqual([]);
    expect(
      informer
        .byIndex('data', 'y')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['a', 'b']);
    expect([informer.countByIndex('data', 'x'), informer.countByIndex('data', 'y')]).toEqual([0, 2]);
    source.current.push({ type: 'DELETED', object: source.objects.get('b')! });
    await settle();
    expect(informer.countByIndex('data', 'y')).toBe(1);
    expect(informer.countByIndex('other', 'y')).toBe(0);
    await informer.stop();
  });
});
