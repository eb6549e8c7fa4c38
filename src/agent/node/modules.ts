/**
 * The node agent's modules, in one list: a module registers by being added to
 * {@link buildAgentModules}, with whatever settings it reads from
 * {@link AgentSettings} (filled from `prepull agent` flags in src/cli/agent.ts).
 */
import type { AgentModule } from './module.ts';

/** The agent's settings, from its flags; each module reads its own. */
export interface AgentSettings {
  /** Where the agent sees the node's root filesystem parts it mounts (e.g. /host). */
  hostRoot: string;
  /** containerd's socket as the agent sees it; undefined: detected under hostRoot. */
  runtimeSocket: string | undefined;
}

/** Every module the agent runs, built from its settings. */
export function buildAgentModules(_settings: AgentSettings): AgentModule[] {
  return [];
}
