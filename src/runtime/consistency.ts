/**
 * The one memory of "my write is not in the cache yet", shared by every
 * controller (Cluster API keeps the same in its controller wrapper). Right
 * after a write the informer still shows the object as it was; a reconcile in
 * that window must not act on the stale copy: write a status again, record
 * its Event twice, create a secret that exists, or lift a pull slot twice.
 *
 * A write is pending until the cache shows something newer than what it was
 * written over, or, for a write with an `until` test, until the cached object
 * passes the test (or is gone). Informer events end the plain waits too, so a
 * created object that is deleted before any reconcile saw it is not waited
 * for forever. Pure bookkeeping: no I/O, no clock.
 */
import type { ResourceType } from '../kube/resources.ts';

/** A cached object as the store reads it: its resourceVersion, or the whole object for an `until` test. */
export interface Cached {
  metadata: { resourceVersion?: string };
}

interface PendingWrite {
  /** The resourceVersion the cache showed when we wrote; undefined: the object was absent. */
  over: string | undefined;
  /** Pending while the cached object fails this (and exists). */
  until?: (cached: unknown) => boolean;
  /** What we wrote, for {@link ConsistencyStore.written}. */
  value?: unknown;
}

/** Pending writes of every controller, by resource type and object key. */
export class ConsistencyStore {
  readonly #pending = new Map<string, PendingWrite>();

  /**
   * Records a successful write of `key` made over the cached version `over`
   * (undefined when the cache had no such object). `value` is kept for
   * {@link written}; `until` makes the write pending until the cache shows its
   * effect, whatever else changes meanwhile.
   */
  wrote<O>(
    type: ResourceType,
    key: string,
    over: string | undefined,
    options: { value?: unknown; until?: (cached: O) => boolean } = {},
  ): void {
    const { value, until } = options;
    this.#pending.set(id(type, key), {
      over,
      ...(value !== undefined ? { value } : {}),
      ...(until ? { until: until as (cached: unknown) => boolean } : {}),
    });
  }

  /** Whether the cache, showing `cached` at `key` (undefined: absent), predates our last write of it. */
  isPending(type: ResourceType, key: string, cached: Cached | undefined): boolean {
    const name = id(type, key);
    const write = this.#pending.get(name);
    if (!write) return false;
    const pending = write.until
      ? cached !== undefined && !write.until(cached)
      : cached === undefined
        ? write.over === undefined
        : cached.metadata.resourceVersion !== undefined && cached.metadata.resourceVersion === write.over;
    if (!pending) this.#pending.delete(name);
    return pending;
  }

  /**
   * What we last wrote at `key`, while the cache (showing `cached`) does not
   * have it yet; undefined once it has.
   */
  written<V>(type: ResourceType, key: string, cached: Cached | undefined): V | undefined {
    if (!this.isPending(type, key, cached)) return undefined;
    return this.#pending.get(id(type, key))?.value as V | undefined;
  }

  /**
   * An informer event for `key` arrived. A deletion ends every wait; another
   * event ends the plain ones (the cache now shows our write or something
   * newer), not those waiting for an effect.
   */
  seen(type: ResourceType, key: string, deleted: boolean): void {
    const name = id(type, key);
    const write = this.#pending.get(name);
    if (write && (deleted || !write.until)) this.#pending.delete(name);
  }

  /** Drops the pending write of `key` (its object is gone). */
  forget(type: ResourceType, key: string): void {
    this.#pending.delete(id(type, key));
  }

  get size(): number {
    return this.#pending.size;
  }
}

function id(type: ResourceType, key: string): string {
  return `${type.group}/${type.plural}/${key}`;
}
