/**
 * Runs the Go importer (`prepull-import`, in the Prepull image) for one task:
 * its flags from the task and the agent's mounts, its one JSON result line
 * read back. The importer redacts URLs in every message it writes; its
 * arguments stay inside the agent's container, never in a pod spec. I/O.
 */
import { execFile } from 'node:child_process';
import { Reason } from '../../../api/conditions.ts';
import type { ImportTask } from './plan.ts';
import type { ImportOutcome } from './state.ts';

export interface ImporterSettings {
  /** Path of prepull-import in the agent's image. */
  path: string;
  /** Where the node's mounted directories appear (hostPath sources are resolved inside it). */
  hostRoot: string;
  /** containerd's socket as the agent sees it; undefined: the importer detects it under hostRoot. */
  runtimeSocket: string | undefined;
  /** Where downloads go (an emptyDir with a size limit). */
  workDir: string;
  /** The importer gives up after this long. */
  timeoutMs: number;
}

/** Runs one import; `signal` ends it early (the agent is stopping). */
export type RunImport = (task: ImportTask, signal: AbortSignal) => Promise<ImportOutcome>;

/** The importer's flags for `task`. */
export function importerArgs(task: ImportTask, settings: ImporterSettings): string[] {
  const { tarball } = task;
  const source = tarball.url
    ? ['--url', tarball.url, ...(tarball.sha256 ? ['--sha256', tarball.sha256] : [])]
    : // Resolved inside hostRoot, symlinks included: only the mounted directories exist there.
      ['--archive-root', settings.hostRoot, '--archive', tarball.hostPath ?? ''];
  return [
    '--image',
    task.image,
    // An image imported for another namespace is never replaced.
    '--owner',
    task.namespace,
    ...source,
    ...(settings.runtimeSocket ? ['--address', settings.runtimeSocket] : ['--host-root', settings.hostRoot]),
    '--work-dir',
    settings.workDir,
    '--timeout',
    `${Math.floor(settings.timeoutMs / 1000)}s`,
    '--exit-zero',
  ];
}

/**
 * The one reading of the importer's output: its last line as JSON. Only an
 * explicit `ok: true` is a success; anything else (no output, a crash) failed.
 */
export function parseImporterOutput(stdout: string, fallback: string): ImportOutcome {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  let parsed: { ok?: unknown; reason?: unknown; message?: unknown; digest?: unknown } | undefined;
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== 'object')
    return { ok: false, reason: Reason.ImportFailed, message: fallback };
  if (parsed.ok === true)
    return { ok: true, ...(typeof parsed.digest === 'string' && { digest: parsed.digest }) };
  const known: ReadonlySet<string> = new Set(Object.values(Reason));
  return {
    ok: false,
    reason:
      typeof parsed.reason === 'string' && known.has(parsed.reason) ? parsed.reason : Reason.ImportFailed,
    message: typeof parsed.message === 'string' && parsed.message ? parsed.message : fallback,
  };
}

/** A {@link RunImport} over the real importer binary. */
export function importerRunner(settings: ImporterSettings): RunImport {
  return (task, signal) =>
    new Promise((resolve) => {
      execFile(
        settings.path,
        importerArgs(task, settings),
        // A little longer than the importer's own timeout, so it reports first.
        { signal, timeout: settings.timeoutMs + 30_000, maxBuffer: 1024 * 1024, env: {} },
        (err, stdout) => {
          // Never err.message: it repeats the command line, a URL's query and userinfo included.
          const exit = err as (Error & { code?: unknown; signal?: unknown }) | null;
          const fallback = exit
            ? `the importer failed without a result (${String(exit.code ?? exit.signal ?? 'error')})`
            : 'the importer wrote no result';
          resolve(parseImporterOutput(stdout ?? '', fallback));
        },
      );
    });
}
