/**
 * Whether the cluster serves a resource type, from the API server's discovery
 * document of its group version. I/O: one GET, retried until it answers.
 */
import type { Clock } from '../runtime/clock.ts';
import { Sleeper } from '../runtime/clock.ts';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import type { ResourceType } from './resources.ts';

const RETRY_MS = 5_000;

/**
 * True when `/apis/<group>/<version>` lists `type.plural`; false when the
 * group version is not served (404) or lacks it. Other failures (the API
 * server not reachable yet) are retried every few seconds until `signal`
 * aborts, which resolves false.
 */
export async function servesResource(
  client: KubeClient,
  type: ResourceType,
  clock: Clock,
  signal: AbortSignal,
  onRetry: (err: unknown) => void = () => {},
): Promise<boolean> {
  const path = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const sleeper = new Sleeper(clock);
  signal.addEventListener('abort', () => sleeper.wake(), { once: true });
  while (!signal.aborted) {
    try {
      const document = (await client.getPath(path)) as { resources?: Array<{ name?: string }> };
      return (document.resources ?? []).some((r) => r.name === type.plural);
    } catch (err) {
      if (isNotFound(err)) return false;
      onRetry(err);
      await sleeper.sleep(RETRY_MS);
    }
  }
  return false;
}
