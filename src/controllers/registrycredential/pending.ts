/**
 * Writes whose watch event has not reached the cache yet. Right after a write
 * the informer still shows the object as it was; without this a reconcile in
 * that window would write again (a second create fails with AlreadyExists, a
 * ServiceAccount patch fails its resourceVersion test).
 */
export class PendingWrites {
  /** Object key → the resourceVersion the cache showed when we wrote (undefined: absent). */
  readonly #over = new Map<string, string | undefined>();

  /** Records a successful write of `key` over the cached version `over`. */
  wrote(key: string, over: string | undefined): void {
    this.#over.set(key, over);
  }

  /** An informer event for `key` arrived: the cache now shows our write, or something newer. */
  seen(key: string): void {
    this.#over.delete(key);
  }

  /**
   * Whether the cache, showing `key` at `cached` (undefined: absent), predates
   * our last write of it. A cache that moved on by any other path (a relist)
   * ends the wait too.
   */
  isPending(key: string, cached: string | undefined): boolean {
    if (!this.#over.has(key)) return false;
    if (this.#over.get(key) === cached) return true;
    this.#over.delete(key);
    return false;
  }

  get size(): number {
    return this.#over.size;
  }
}
