/**
 * The node agent's modules, in one list: a module registers by being added to
 * {@link buildAgentModules}, with whatever settings it reads from
 * {@link AgentSettings} (filled from `prepull agent` flags in src/cli/agent.ts).
 */
import { importerRunner } from './imports/importer.ts';
import { importModule } from './imports/module.ts';
import type { AgentModule } from './module.ts';

/** The agent's settings, from its flags; each module reads its own. */
export interface AgentSettings {
  /** Where the agent sees the node's root filesystem parts it mounts (e.g. /host). */
  hostRoot: string;
  /** containerd's socket as the agent sees it; undefined: detected under hostRoot. */
  runtimeSocket: string | undefined;
  /** prepull-import in the agent's image. */
  importerPath: string;
  /** Where tarball downloads go. */
  workDir: string;
  /** Back-off between tries of a failed import: first wait and cap, in ms. */
  importRetry: { baseMs: number; maxMs: number };
}

/** The importer gives up on one archive after this long. */
const IMPORT_TIMEOUT_MS = 30 * 60_000;

/** Every module the agent runs, built from its settings. */
export function buildAgentModules(settings: AgentSettings): AgentModule[] {
  return [
    importModule({
      runImport: importerRunner({
        path: settings.importerPath,
        hostRoot: settings.hostRoot,
        runtimeSocket: settings.runtimeSocket,
        workDir: settings.workDir,
        timeoutMs: IMPORT_TIMEOUT_MS,
      }),
      retry: settings.importRetry,
    }),
  ];
}
