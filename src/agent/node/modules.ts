/**
 * The node agent's modules, in one list: a module registers by being added to
 * {@link buildAgentModules}, with whatever settings it reads from
 * {@link AgentSettings} (filled from `prepull agent` flags in src/cli/agent.ts).
 */
import { mirrorsModule } from '../mirrors/module.ts';
import { nodeCredsModule } from '../nodecreds/module.ts';
import { type ImporterSettings, importerRunner, unpinRunner } from './imports/importer.ts';
import { importModule } from './imports/module.ts';
import type { AgentModule } from './module.ts';

/** The agent's settings, from its flags; each module reads its own. */
export interface AgentSettings {
  /** Where the agent sees the node's root filesystem parts it mounts (e.g. /host). */
  hostRoot: string;
  /** containerd's socket as the agent sees it; undefined: detected under hostRoot. */
  runtimeSocket: string | undefined;
  /** containerd's config file on the host; undefined: the distribution's (mirrors module). */
  containerdConfig: string | undefined;
  /** The kubelet's --root-dir on the host, where its config.json is (nodecreds module; default /var/lib/kubelet). */
  kubeletRootDir: string | undefined;
  /** Host directory of the agent's state on the node (default /var/lib/prepull/agent). */
  stateDir: string;
  /** prepull-import in the agent's image. */
  importerPath: string;
  /** Where tarball downloads go. */
  workDir: string;
  /** Back-off between tries of a failed import: first wait and cap, in ms. */
  importRetry: { baseMs: number; maxMs: number };
  /** A PEM bundle trusted for https tarball downloads besides the system's. */
  downloadCaFile?: string | undefined;
  /** The largest tarball download accepted, in bytes; undefined: the importer's default. */
  maxDownloadBytes?: number | undefined;
  /** The port puller pods send volume claims' archives to; undefined: none is received. */
  archivePort?: number | undefined;
}

/** The importer gives up on one archive after this long. */
const IMPORT_TIMEOUT_MS = 30 * 60_000;

/** Every module the agent runs, built from its settings. */
export function buildAgentModules(settings: AgentSettings): AgentModule[] {
  const importer: ImporterSettings = {
    path: settings.importerPath,
    hostRoot: settings.hostRoot,
    runtimeSocket: settings.runtimeSocket,
    workDir: settings.workDir,
    timeoutMs: IMPORT_TIMEOUT_MS,
    ...(settings.downloadCaFile ? { downloadCaFile: settings.downloadCaFile } : {}),
    ...(settings.maxDownloadBytes ? { maxDownloadBytes: settings.maxDownloadBytes } : {}),
  };
  return [
    importModule({
      runImport: importerRunner(importer),
      runUnpin: unpinRunner(importer),
      retry: settings.importRetry,
      ...(settings.archivePort !== undefined && { archivePort: settings.archivePort }),
    }),
    mirrorsModule({
      hostRoot: settings.hostRoot,
      stateDir: settings.stateDir,
      ...(settings.containerdConfig ? { containerdConfig: settings.containerdConfig } : {}),
    }),
    nodeCredsModule({
      hostRoot: settings.hostRoot,
      stateDir: settings.stateDir,
      ...(settings.kubeletRootDir ? { kubeletRootDir: settings.kubeletRootDir } : {}),
    }),
  ];
}
