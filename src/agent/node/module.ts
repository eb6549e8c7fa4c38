/**
 * What a node agent module is: one concern of the privileged node agent
 * (`prepull agent`), such as tarball imports or registry mirror settings,
 * started once per agent process with what it may use. Types only.
 *
 * A module registers by being listed in modules.ts. It runs until its signal
 * aborts, reading the cluster through informers on `client`, and publishes
 * what it wants the controllers to see with `report` (annotation
 * `prepull.dev/report.<name>` on the agent's own pod; see report.ts).
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import type { Clock } from '../../runtime/clock.ts';

/** What a module is given when it starts. */
export interface AgentContext {
  /** The node this agent runs on (NODE_NAME, from the downward API). */
  nodeName: string;
  /** Prepull's namespace, where the agent pod runs. */
  namespace: string;
  /** The agent's own pod, which carries the reports. */
  podName: string;
  /** The agent's API client, under the agent's ServiceAccount. */
  client: KubeClient;
  clock: Clock;
  /** A child logger with `module: <name>`. */
  log: Logger;
  /** Aborted when the agent stops; the module's `run` should then return soon. */
  signal: AbortSignal;
  /**
   * Publishes this module's report (JSON, at most MAX_REPORT_BYTES) on the
   * agent's pod. Only a value that differs from the last published one is
   * written; a failed write is retried with back-off, the newest value
   * winning. Throws at once for a value that is not JSON or too large.
   */
  report(value: unknown): void;
}

/** One concern of the node agent. */
export interface AgentModule {
  /** A lowercase DNS label; names the report annotation and the log lines. */
  name: string;
  /** Runs until `context.signal` aborts. A rejection is logged and the module is started again after a back-off. */
  run(context: AgentContext): Promise<void>;
}
