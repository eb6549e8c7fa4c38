/** Bounded parallelism for a batch of writes: many requests in flight, never too many. */

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; resolves with
 * the results in the order of `items`. A rejection rejects the whole batch
 * only after the calls already started have settled, so no write is left
 * running unobserved; callers that want every outcome catch inside `fn`.
 */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  await Promise.all(workers);
  if (failure) throw failure.error;
  return results;
}
