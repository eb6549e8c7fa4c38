import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../runtime/clock.ts';
import type { ListResult, WatchEvent } from './client.ts';
import { ApiError } from './errors.ts';
import { COMPACTED_AFTER_MS, Informer, type ListWatchSource, type RestartReason } from './informer.ts';
import type { KubeObject } from './objects.ts';

const log = pino({ level: 'silent' });

function cm(name: string, rv: number, data = ''): KubeObject {
  return { metadata: { name, namespace: 'ns', resourceVersion: String(rv), managedFields: [{}] }, data };
}

/**
 * A scripted API: a list of current objects, and watches the test feeds event
 * by event. A watch-list (sendInitialEvents) replays the current objects, then
 * the bookmark that ends the replay, as the API server does with the WatchList
 * feature on; `watchList` makes it a server that refuses them (422) or one from
 * before them, which ignores the parameter and never ends the replay.
 */
class ScriptedSource implements ListWatchSource<KubeObject> {
  objects = new Map<string, KubeObject>();
  rv = 1;
  lists = 0;
  watches: Array<{
    from: string;
    timeoutSeconds: number;
    watchList: boolean;
    push: (e: WatchEvent<KubeObject> | Error | 'end') => void;
  }> = [];
  listError: Error | undefined;
  watchList: 'serve' | 'refuse' | 'ignore' = 'serve';
  /** Cuts the next watch-list's replay off with this before its end, once. */
  watchListError: Error | undefined;

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
    options: { resourceVersion: string; timeoutSeconds: number; sendInitialEvents?: true },
    signal: AbortSignal,
  ): AsyncIterable<WatchEvent<KubeObject>> {
    const queue: Array<WatchEvent<KubeObject> | Error | 'end'> = [];
    let wake: (() => void) | undefined;
    const push = (e: WatchEvent<KubeObject> | Error | 'end') => {
      queue.push(e);
      wake?.();
    };
    const watchList = options.sendInitialEvents === true;
    this.watches.push({
      from: options.resourceVersion,
      timeoutSeconds: options.timeoutSeconds,
      watchList,
      push,
    });
    signal.addEventListener('abort', () => push(new DOMException('aborted', 'AbortError')));
    if (watchList && this.watchList === 'refuse') {
      push(new ApiError(422, 'Invalid', 'sendInitialEvents is forbidden for watch', 'watch'));
    } else if (watchList) {
      for (const obj of this.objects.values()) push({ type: 'ADDED', object: obj });
      const end = { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } };
      if (this.watchListError) push(this.watchListError);
      else if (this.watchList === 'serve') push({ type: 'BOOKMARK', object: { metadata: end } });
      this.watchListError = undefined;
    }
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

/** What a 410 Gone looks like on a watch. */
function gone(): WatchEvent<KubeObject> {
  return {
    type: 'ERROR',
    object: { metadata: {}, code: 410, reason: 'Expired', message: 'too old resource version' } as KubeObject,
  };
}

/** While the watch was away: b deleted, c created, a changed; then the watch ends in 410. */
function awayAndGone(source: ScriptedSource): void {
  source.objects.delete('b');
  source.set('c');
  source.set('a', 'new');
  source.current.push(gone());
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

  it('lists again on 410 Gone and reports what changed meanwhile, deletions included, where the server refuses watch-lists', async () => {
    const { source, informer, seen, restarts } = setup();
    source.watchList = 'refuse';
    source.set('a');
    source.set('b');
    informer.start();
    await informer.waitForSync();
    await settle();
    // While the watch was away: b deleted, c created, a changed.
    awayAndGone(source);
    await settle();
    expect(restarts).toEqual(['gone']);
    expect(source.lists).toBe(2);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'c']);
    expect(informer.get('ns/a')?.data).toBe('new');
    expect(seen.slice(2)).toEqual(['delete b', 'update a', 'add c']);
    // Refused once, never asked again: the next 410 lists at once.
    source.current.push(gone());
    await settle();
    expect(source.lists).toBe(3);
    expect(source.watches.filter((w) => w.watchList)).toHaveLength(1);
    await informer.stop();
  });

  it('catches up after 410 Gone by one watch-list, not a list: what changed meanwhile, deletions included', async () => {
    const { source, informer, seen, restarts } = setup();
    source.set('a');
    source.set('b');
    source.set('d');
    informer.start();
    await informer.waitForSync();
    await settle();
    awayAndGone(source);
    await settle();
    expect(restarts).toEqual(['gone']);
    expect(source.lists).toBe(1);
    expect(source.watches.map((w) => w.watchList)).toEqual([false, true]);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'd', 'c']);
    expect(informer.get('ns/a')?.data).toBe('new');
    // d came back in the replay unchanged: no handler hears of it.
    expect(seen.slice(3)).toEqual(['update a', 'add c', 'delete b']);
    // The same watch goes on with changes, and its successor starts where the replay ended.
    source.current.push({ type: 'MODIFIED', object: source.set('d', 'later') });
    source.current.push('end');
    await settle();
    expect(informer.get('ns/d')?.data).toBe('later');
    expect(source.watches.map((w) => w.watchList)).toEqual([false, true, false]);
    expect(source.current.from).toBe(String(source.rv));
    expect(source.lists).toBe(1);
    await informer.stop();
  });

  it('leaves the cache and resourceVersion alone until a replay ends, and lists after a watch-list that failed', async () => {
    const { clock, source, informer, seen } = setup();
    source.set('a');
    source.set('b');
    informer.start();
    await informer.waitForSync();
    await settle();
    // A replay cut off before its end: nothing deleted, nothing to watch on from.
    source.objects.delete('b');
    source.watchListError = new Error('connection reset');
    source.current.push(gone());
    await settle();
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'b']);
    // The next try is a list, so that what failed shows as the list's error (a 403, say).
    source.listError = new ApiError(403, 'Forbidden', 'secrets is forbidden', 'list');
    clock.advance(500);
    await settle();
    expect(source.lists).toBe(2);
    source.listError = undefined;
    clock.advance(1_000);
    await settle();
    expect(source.lists).toBe(3);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a']);
    expect(seen.slice(2)).toEqual(['delete b']);
    // A later 410 tries a watch-list again.
    source.current.push(gone());
    await settle();
    expect(source.watches.at(-1)?.watchList).toBe(true);
    expect(source.lists).toBe(3);
    await informer.stop();
  });

  it('lists after a watch-list the server took for a plain watch (no end to its replay), and asks no more', async () => {
    const { source, informer } = setup();
    source.watchList = 'ignore';
    source.set('a');
    source.set('b');
    informer.start();
    await informer.waitForSync();
    await settle();
    source.objects.delete('b');
    source.current.push(gone());
    await settle();
    source.current.push('end');
    await settle();
    expect(source.lists).toBe(2);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a']);
    source.current.push(gone());
    await settle();
    expect(source.lists).toBe(3);
    expect(source.watches.filter((w) => w.watchList)).toHaveLength(1);
    await informer.stop();
  });

  it('catches a quiet watch with no bookmarks up by a watch-list once etcd has likely compacted its resourceVersion', async () => {
    const { clock, source, informer, restarts } = setup({ stallTimeoutMs: 60_000 });
    source.set('a');
    informer.start();
    await informer.waitForSync();
    await settle();
    clock.advance(60_000);
    await settle();
    expect(restarts).toEqual(['stall']);
    expect(source.current.timeoutSeconds).toBe(1200);
    // Closed by the server within the compaction interval of its last event: on from there.
    source.current.push({ type: 'MODIFIED', object: source.set('a', 'x') });
    clock.advance(COMPACTED_AFTER_MS);
    source.current.push('end');
    await settle();
    expect(source.current.watchList).toBe(false);
    expect(source.current.from).toBe(String(source.rv));
    // Quiet for longer: no watch from an old resourceVersion, which etcd answers with 410.
    clock.advance(COMPACTED_AFTER_MS + 1);
    source.set('b');
    source.current.push('end');
    await settle();
    expect(source.current.watchList).toBe(true);
    expect(informer.list().map((o) => o.metadata.name)).toEqual(['a', 'b']);
    expect(source.lists).toBe(1);
    // The bookmark that ended the replay does not make the server one that sends bookmarks.
    expect(source.current.timeoutSeconds).toBe(1200);
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
