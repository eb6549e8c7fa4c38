/**
 * The node agent process (`prepull agent`): one pod per node, in Prepull's own
 * namespace, the only place Prepull does privileged node work. It starts every
 * registered module (modules.ts) with its context, restarts a module that
 * fails after a back-off, publishes their reports on its own pod, and stops
 * them all on SIGTERM or SIGINT.
 */
import type { Logger } from 'pino';
import { KubeClient } from '../../kube/client.ts';
import type { KubeConfig } from '../../kube/config.ts';
import { ExponentialBackoff } from '../../runtime/backoff.ts';
import { type Clock, Sleeper } from '../../runtime/clock.ts';
import type { AgentContext, AgentModule } from './module.ts';
import { checkModuleName } from './report.ts';
import { ReportPublisher } from './reporter.ts';

export const AGENT_USER_AGENT = 'prepull-agent';

/** Where the agent runs, from the downward API. */
export interface AgentIdentity {
  nodeName: string;
  namespace: string;
  podName: string;
}

/** Reads NODE_NAME, POD_NAMESPACE and POD_NAME; throws naming what is missing. */
export function agentIdentityFromEnv(env: NodeJS.ProcessEnv): AgentIdentity {
  const missing = ['NODE_NAME', 'POD_NAMESPACE', 'POD_NAME'].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `the agent needs ${missing.join(', ')} (the downward API in deploy/agent.yaml sets them)`,
    );
  }
  return { nodeName: env.NODE_NAME!, namespace: env.POD_NAMESPACE!, podName: env.POD_NAME! };
}

export interface AgentOptions {
  kc: KubeConfig;
  log: Logger;
  clock: Clock;
  identity: AgentIdentity;
  modules: readonly AgentModule[];
  /** Back-off before a failed module runs again. */
  restartBackoff?: { baseMs: number; maxMs: number };
}

export interface RunningAgent {
  client: KubeClient;
  /** Stops every module and the report writes; resolves when they returned. */
  stop(): Promise<void>;
}

/** Starts the modules; they run until {@link RunningAgent.stop}. */
export function startAgent(options: AgentOptions): RunningAgent {
  const { log, clock, identity } = options;
  const names = new Set<string>();
  for (const module of options.modules) {
    checkModuleName(module.name);
    if (names.has(module.name)) throw new Error(`two agent modules are named ${module.name}`);
    names.add(module.name);
  }
  const client = new KubeClient(options.kc, { userAgent: AGENT_USER_AGENT });
  const publisher = new ReportPublisher({
    client,
    clock,
    log,
    namespace: identity.namespace,
    podName: identity.podName,
  });
  const abort = new AbortController();
  const backoff = new ExponentialBackoff<string>(options.restartBackoff ?? { baseMs: 1_000, maxMs: 60_000 });

  const runModule = async (module: AgentModule): Promise<void> => {
    const sleeper = new Sleeper(clock);
    abort.signal.addEventListener('abort', () => sleeper.wake());
    const context: AgentContext = {
      ...identity,
      client,
      clock,
      log: log.child({ module: module.name }),
      signal: abort.signal,
      report: (value) => publisher.publish(module.name, value),
    };
    while (!abort.signal.aborted) {
      try {
        await module.run(context);
        if (abort.signal.aborted) return;
        context.log.warn('the module returned before the agent stopped; starting it again');
      } catch (err) {
        if (abort.signal.aborted) return;
        context.log.error(
          { err: { message: err instanceof Error ? err.message : String(err) } },
          'module failed',
        );
      }
      await sleeper.sleep(backoff.next(module.name));
    }
  };
  log.info({ node: identity.nodeName, modules: [...names] }, 'node agent started');
  const running = Promise.all(options.modules.map(runModule));
  return {
    client,
    async stop() {
      abort.abort();
      await running;
      await publisher.stop();
    },
  };
}
