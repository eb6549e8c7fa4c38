/**
 * An informer: list, then watch from the list's resourceVersion, keeping an
 * in-memory cache that reconcilers read instead of GETting. It relists on 410
 * Gone, re-watches when the server closes the stream, restarts with jittered
 * exponential backoff on any error, and restarts a watch that went silent (no
 * event and no bookmark for too long). `synced` resolves after the first list.
 *
 * The API server sends bookmarks only from its watch cache. A type it serves
 * from etcd directly (Events, by kube-apiserver's defaults) gets none, so a
 * quiet watch of it cannot be told from a dead one, and its resourceVersion
 * stays the list's: every restart then replays from etcd all that changed
 * since, or, once etcd has compacted past it (every 5 minutes by default),
 * ends in 410 and a relist. Once a watch went silent without the informer
 * ever having seen a bookmark, its watches run long (20 to 40 minutes) and
 * count as stalled only a minute after the server should have ended them.
 *
 * Once synced, the informer catches up by a watch-list, not a list: one watch
 * that first replays every object of its selection (`sendInitialEvents`) and
 * marks the end of the replay with a bookmark; objects the replay left out are
 * deleted from the cache. So a 410 costs one request instead of a list and a
 * watch, and a quiet watch with no bookmarks, whose resourceVersion etcd has
 * compacted (older than {@link COMPACTED_AFTER_MS}), goes straight to one, not
 * through a watch doomed to 410 first. A server that refuses watch-lists (the
 * WatchList feature is off: 422) is listed again as before, and so is one whose
 * watch-list failed otherwise, so that the list's error is seen.
 */
import type { Logger } from 'pino';
import { type Clock, Sleeper } from '../runtime/clock.ts';
import type { KubeClient, ListOptions, ListResult, WatchEvent } from './client.ts';
import { ApiError, isGone, isInvalid } from './errors.ts';
import { type KubeObject, keyOf } from './objects.ts';
import type { ResourceType } from './resources.ts';

/** Where an informer's objects come from: a list and a watch of the same selection. */
export interface ListWatchSource<T extends KubeObject> {
  list(options: Pick<ListOptions, 'limit' | 'continue'>): Promise<ListResult<T>>;
  /** With `sendInitialEvents`, a watch-list: the current objects first, then a bookmark annotated {@link INITIAL_EVENTS_END}. */
  watch(
    options: { resourceVersion: string; timeoutSeconds: number; sendInitialEvents?: true },
    signal: AbortSignal,
  ): AsyncIterable<WatchEvent<T>>;
}

/** The selection an informer watches: a type, optionally one namespace and selectors. */
export interface Selection {
  type: ResourceType;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** A {@link ListWatchSource} over the API server. */
export function apiSource<T extends KubeObject>(
  client: KubeClient,
  selection: Selection,
): ListWatchSource<T> {
  const { type, ...filter } = selection;
  return {
    list: (options) => client.list<T>(type, { ...filter, ...options }),
    watch: (options, signal) => client.watch<T>(type, { ...filter, ...options }, signal),
  };
}

export interface InformerHandler<T> {
  add?(obj: T): void;
  update?(previous: T, obj: T): void;
  delete?(obj: T): void;
}

/** Why a watch was restarted, for the watch-restart metric. */
export type RestartReason = 'gone' | 'error' | 'stall' | 'closed';

export interface InformerOptions<T extends KubeObject> {
  /** For logs and metrics, e.g. `pods`. */
  name: string;
  source: ListWatchSource<T>;
  clock: Clock;
  log: Logger;
  /** Applied to every object before it is cached; by default strips managedFields. */
  transform?: (obj: T) => T;
  /** A watch with no event and no bookmark for this long is restarted. */
  stallTimeoutMs?: number;
  /** Backoff between failed attempts: base and cap, jittered by up to +50%. */
  backoff?: { baseMs: number; maxMs: number };
  /** Page size of the list. */
  pageSize?: number;
  random?: () => number;
  onRestart?: (reason: RestartReason) => void;
  onEvent?: (type: string) => void;
}

/** Drops what the operator never reads and what costs the most memory. */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata.managedFields) delete obj.metadata.managedFields;
  return obj;
}

type IndexFn<T> = (obj: T) => string[];

/** Server-side watch timeout, in seconds, while the server sends bookmarks: 5 to 10 minutes, as client-go's. */
const WATCH_TIMEOUT_S = { min: 300, spread: 300 };
/** The same for a server that sends no bookmarks on this watch: 20 to 40 minutes. */
const UNBOOKMARKED_WATCH_TIMEOUT_S = { min: 1200, spread: 1200 };
/** How long after its timeout a watch with no bookmarks counts as stalled. */
const UNBOOKMARKED_STALL_MARGIN_MS = 60_000;
/**
 * How old a resourceVersion may be before etcd has likely compacted it: the
 * API server compacts every 5 minutes by default (--etcd-compaction-interval).
 */
export const COMPACTED_AFTER_MS = 300_000;
/** The annotation of the bookmark that ends a watch-list's replay. */
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';

export class Informer<T extends KubeObject> {
  readonly name: string;
  readonly #options: InformerOptions<T>;
  readonly #transform: (obj: T) => T;
  readonly #store = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #indexers = new Map<string, IndexFn<T>>();
  readonly #indices = new Map<string, Map<string, Set<string>>>();
  #synced = false;
  #resolveSynced!: () => void;
  readonly #syncedPromise: Promise<void>;
  #stopped = true;
  /** A bookmark came on some watch: the server sends them, so silence means a stall. */
  #bookmarked = false;
  /** A watch went silent before any bookmark came: the server sends none (see the module's comment). */
  #unbookmarked = false;
  /** The server refused a watch-list (422): re-syncs list, as before the WatchList feature. */
  #watchListRefused = false;
  #abort: AbortController | undefined;
  readonly #sleeper: Sleeper;
  #running: Promise<void> | undefined;

  constructor(options: InformerOptions<T>) {
    this.name = options.name;
    this.#options = options;
    this.#sleeper = new Sleeper(options.clock);
    this.#transform = options.transform ?? stripManagedFields;
    this.#syncedPromise = new Promise((resolve) => {
      this.#resolveSynced = resolve;
    });
  }

  /** Handlers run synchronously on every change; they should only enqueue keys. */
  addHandler(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Adds an index; {@link Informer.byIndex} then finds objects by one of the values `fn` returns. */
  addIndex(name: string, fn: IndexFn<T>): void {
    this.#indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.#indices.set(name, index);
    for (const [key, obj] of this.#store) this.#indexAdd(name, index, key, obj);
  }

  get hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first list is in the cache. */
  waitForSync(): Promise<void> {
    return this.#syncedPromise;
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  get size(): number {
    return this.#store.size;
  }

  /** How many objects {@link Informer.byIndex} would return, without building the list. */
  countByIndex(name: string, value: string): number {
    return this.#indices.get(name)?.get(value)?.size ?? 0;
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.#indices.get(name)?.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const key of keys) {
      const obj = this.#store.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#running = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort();
    this.#sleeper.wake();
    await this.#running;
  }

  async #run(): Promise<void> {
    const { clock, log } = this.#options;
    let resourceVersion: string | undefined;
    /** When resourceVersion last moved: a quiet one with no bookmarks grows old enough for etcd to compact. */
    let progressedAt = clock.now();
    let failures = 0;
    /** The last watch-list failed: the next re-sync lists, so that its error shows as a list's. */
    let listNext = false;
    while (!this.#stopped) {
      const byWatchList =
        resourceVersion === undefined && this.#synced && !this.#watchListRefused && !listNext;
      try {
        if (resourceVersion === undefined && !byWatchList) {
          resourceVersion = await this.#relist();
          progressedAt = clock.now();
          listNext = false;
        }
        // stop() may have come while the list was in flight.
        if (this.#stopped) break;
        const outcome = await this.#watch(byWatchList ? undefined : resourceVersion, (rv) => {
          resourceVersion = rv;
          progressedAt = clock.now();
          failures = 0;
        });
        if (this.#stopped) break;
        if (byWatchList && resourceVersion === undefined) {
          // Ended with no end to its replay: a server from before the WatchList feature,
          // which took it for a plain watch. A list puts right what the gap left out.
          this.#watchListRefused = true;
          log.info(
            { informer: this.name },
            'the server ended a watch-list before its replay did; listing instead',
          );
        }
        // The server ended the watch (its timeout): carry on from where it stopped.
        this.#options.onRestart?.(outcome);
        if (this.#unbookmarked && !this.#bookmarked && clock.now() - progressedAt > COMPACTED_AFTER_MS) {
          // Quiet this long with no bookmark to move it, the resourceVersion is likely compacted.
          resourceVersion = undefined;
        }
        if (outcome === 'stall' && !this.#bookmarked && !this.#unbookmarked) {
          // Not known to be dead: the server may simply send no bookmarks.
          this.#unbookmarked = true;
          log.info(
            { informer: this.name },
            'watch brought no bookmark; the server sends none for it, so its watches run longer',
          );
        } else if (outcome === 'stall') {
          log.warn({ informer: this.name }, 'watch went silent; restarting it');
          await this.#sleeper.sleep(this.#delay(failures++));
        }
      } catch (err) {
        if (this.#stopped) break;
        if (byWatchList && isInvalid(err)) {
          this.#watchListRefused = true;
          log.info(
            { informer: this.name, err: describe(err) },
            'the server refuses watch-lists (sendInitialEvents); listing instead',
          );
          continue;
        }
        if (byWatchList) listNext = true;
        if (isGone(err)) {
          log.info(
            { informer: this.name, resourceVersion },
            'resourceVersion too old (410 Gone); syncing again',
          );
          resourceVersion = undefined;
          this.#options.onRestart?.('gone');
          continue;
        }
        const delay = this.#delay(failures++);
        this.#options.onRestart?.('error');
        log.warn(
          { informer: this.name, err: describe(err), retryInMs: delay },
          'list or watch failed; retrying',
        );
        await this.#sleeper.sleep(delay);
      }
    }
  }

  /** Lists every page, replaces the cache, tells handlers what changed, and returns the list's resourceVersion. */
  async #relist(): Promise<string> {
    const fresh = new Map<string, T>();
    let page: ListResult<T> | undefined;
    do {
      page = await this.#options.source.list({
        limit: this.#options.pageSize ?? 500,
        ...(page?.continue ? { continue: page.continue } : {}),
      });
      for (const item of page.items) {
        const obj = this.#transform(item);
        fresh.set(keyOf(obj), obj);
      }
    } while (page.continue && !this.#stopped);
    const resourceVersion = page.resourceVersion;
    for (const [key, previous] of this.#store) {
      if (!fresh.has(key)) this.#remove(key, previous);
    }
    for (const [key, obj] of fresh) this.#put(key, obj);
    if (!this.#synced) {
      this.#synced = true;
      this.#options.log.debug({ informer: this.name, objects: this.#store.size }, 'informer synced');
      this.#resolveSynced();
    }
    return resourceVersion;
  }

  /**
   * Runs one watch until it ends; returns why it ended, throws on errors
   * (ApiError 410 for Gone). With no `resourceVersion`, a watch-list: the
   * replay of every current object replaces the cache at its end bookmark,
   * and only then does the resourceVersion move.
   */
  async #watch(
    resourceVersion: string | undefined,
    progressed: (rv: string) => void,
  ): Promise<RestartReason> {
    const { clock, source } = this.#options;
    /** The keys the replay of a watch-list brought so far; undefined once it ended. */
    let replayed = resourceVersion === undefined ? new Set<string>() : undefined;
    const abort = new AbortController();
    this.#abort = abort;
    let stalled = false;
    const random = this.#options.random ?? Math.random;
    // Spread the server-side timeouts so that watches do not all restart together.
    const timeout = this.#unbookmarked && !this.#bookmarked ? UNBOOKMARKED_WATCH_TIMEOUT_S : WATCH_TIMEOUT_S;
    const timeoutSeconds = Math.floor(timeout.min + random() * timeout.spread);
    const stallMs = () =>
      this.#unbookmarked && !this.#bookmarked
        ? timeoutSeconds * 1000 + UNBOOKMARKED_STALL_MARGIN_MS
        : (this.#options.stallTimeoutMs ?? 180_000);
    const arm = () =>
      clock.schedule(stallMs(), () => {
        stalled = true;
        abort.abort();
      });
    let stallTimer = arm();
    const options =
      resourceVersion === undefined
        ? { resourceVersion: '', timeoutSeconds, sendInitialEvents: true as const }
        : { resourceVersion, timeoutSeconds };
    try {
      for await (const event of source.watch(options, abort.signal)) {
        const replayEnd =
          event.type === 'BOOKMARK' && event.object.metadata?.annotations?.[INITIAL_EVENTS_END] === 'true';
        // The replay's end comes on servers that send no other bookmark.
        if (event.type === 'BOOKMARK' && !replayEnd) this.#bookmarked = true;
        stallTimer.cancel();
        stallTimer = arm();
        this.#options.onEvent?.(event.type);
        if (event.type === 'ERROR') {
          const status = event.object as unknown as { code?: number; reason?: string; message?: string };
          throw new ApiError(
            status.code ?? 500,
            status.reason ?? 'Unknown',
            status.message ?? 'watch error',
            'watch',
          );
        }
        const rv = event.object.metadata?.resourceVersion;
        if (event.type !== 'BOOKMARK') {
          const obj = this.#transform(event.object);
          const key = keyOf(obj);
          if (event.type === 'DELETED') {
            const previous = this.#store.get(key);
            if (previous) this.#remove(key, previous);
            replayed?.delete(key);
          } else {
            this.#put(key, obj);
            replayed?.add(key);
          }
        }
        if (replayed && replayEnd) {
          for (const [key, previous] of this.#store) {
            if (!replayed.has(key)) this.#remove(key, previous);
          }
          replayed = undefined;
          this.#options.log.debug({ informer: this.name, objects: this.#store.size }, 'informer re-synced');
        }
        // Within a replay, objects come in no order of resourceVersion: it moves at the replay's end.
        if (rv && !replayed) progressed(rv);
      }
      return 'closed';
    } catch (err) {
      if (stalled) return 'stall';
      if (this.#stopped) return 'closed';
      throw err;
    } finally {
      stallTimer.cancel();
      if (this.#abort === abort) this.#abort = undefined;
    }
  }

  #put(key: string, obj: T): void {
    const previous = this.#store.get(key);
    if (previous?.metadata.resourceVersion === obj.metadata.resourceVersion && previous) return;
    if (previous) this.#unindex(key, previous);
    this.#store.set(key, obj);
    for (const [name, index] of this.#indices) this.#indexAdd(name, index, key, obj);
    for (const handler of this.#handlers) {
      if (previous) handler.update?.(previous, obj);
      else handler.add?.(obj);
    }
  }

  #remove(key: string, previous: T): void {
    this.#store.delete(key);
    this.#unindex(key, previous);
    for (const handler of this.#handlers) handler.delete?.(previous);
  }

  #indexAdd(name: string, index: Map<string, Set<string>>, key: string, obj: T): void {
    const fn = this.#indexers.get(name);
    if (!fn) return;
    for (const value of fn(obj)) {
      let keys = index.get(value);
      if (!keys) {
        keys = new Set();
        index.set(value, keys);
      }
      keys.add(key);
    }
  }

  #unindex(key: string, obj: T): void {
    for (const [name, index] of this.#indices) {
      const fn = this.#indexers.get(name);
      if (!fn) continue;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }

  #delay(failures: number): number {
    const { baseMs, maxMs } = this.#options.backoff ?? { baseMs: 500, maxMs: 30_000 };
    const random = this.#options.random ?? Math.random;
    const base = Math.min(maxMs, baseMs * 2 ** failures);
    return Math.round(base * (1 + random() * 0.5));
  }
}

/** An error for logs: message and code only (never a request body). */
function describe(err: unknown): { message: string; status?: number; reason?: string } {
  if (err instanceof ApiError) return { message: err.message, status: err.status, reason: err.reason };
  return { message: err instanceof Error ? err.message : String(err) };
}
