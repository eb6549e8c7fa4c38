/**
 * The loop of an agent module that keeps node files in line with the API:
 * informers on what it reads (its own Node among them), a pass once they have
 * synced, another after every change, and a re-check on a timer when nothing
 * changed, which catches files someone else edited. A change during a pass
 * does not wait for the re-check: the next pass starts as soon as this one
 * ends. Used by the mirrors and nodecreds modules. I/O.
 */
import { apiSource, Informer } from '../../kube/informer.ts';
import type { KubeObject, Node } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { Sleeper } from '../../runtime/clock.ts';
import type { AgentContext } from './module.ts';

/** An informer on the agent's client, for a module's loop. */
export function moduleInformer<T extends KubeObject>(
  ctx: AgentContext,
  name: string,
  selection: Parameters<typeof apiSource>[1],
): Informer<T> {
  return new Informer<T>({
    name,
    source: apiSource<T>(ctx.client, selection),
    clock: ctx.clock,
    log: ctx.log,
  });
}

/** An informer on the agent's own Node alone. */
export function ownNodeInformer(ctx: AgentContext): Informer<Node> {
  return moduleInformer<Node>(ctx, 'node', {
    type: Resources.nodes,
    fieldSelector: `metadata.name=${ctx.nodeName}`,
  });
}

/**
 * Starts `informers`, runs `pass` once they have synced, again after each of
 * their changes and every `recheckMs` without one, until `ctx.signal` aborts;
 * then stops them. A pass that throws ends the loop (the agent starts the
 * module again after a back-off): a pass reports its own failures.
 */
export async function runPasses(
  ctx: AgentContext,
  informers: Informer<KubeObject>[],
  recheckMs: number,
  pass: () => Promise<void>,
): Promise<void> {
  const { signal } = ctx;
  const sleeper = new Sleeper(ctx.clock);
  let changed = true;
  const wake = () => {
    changed = true;
    sleeper.wake();
  };
  for (const i of informers) {
    i.addHandler({ add: wake, update: wake, delete: wake });
    i.start();
  }
  signal.addEventListener('abort', wake);
  try {
    await Promise.race([
      Promise.all(informers.map((i) => i.waitForSync())),
      new Promise((resolve) => signal.addEventListener('abort', resolve)),
    ]);
    while (!signal.aborted) {
      changed = false;
      await pass();
      if (!changed) await sleeper.sleep(recheckMs);
    }
  } finally {
    signal.removeEventListener('abort', wake);
    await Promise.all(informers.map((i) => i.stop()));
  }
}
