/**
 * Retries an assertion until it passes or `timeoutMs` runs out, then throws the
 * last failure. For cluster tests: they wait for convergence, never time it.
 */
export async function eventually(
  assertion: () => void | Promise<void>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await assertion();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
