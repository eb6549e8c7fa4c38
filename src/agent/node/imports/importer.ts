/**
 * Runs the Go importer (`prepull-import`, in the Prepull image) for one task:
 * its flags from the task and the agent's mounts, its one JSON result line
 * read back. The importer redacts URLs in every message it writes; its
 * arguments stay inside the agent's container, never in a pod spec. A
 * download credential goes to it on standard input (argv is readable by
 * every process of the node, /proc/<pid>/cmdline). I/O.
 */
import { execFile } from 'node:child_process';
import type { Readable } from 'node:stream';
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
  /** A PEM bundle trusted for https downloads besides the system's, as the agent sees it. */
  downloadCaFile?: string;
  /** The largest download accepted, in bytes (default: the importer's, 16 GiB). */
  maxDownloadBytes?: number;
}

/** What an import reads besides its task. */
export interface ImportInput {
  /** The HTTP Authorization value for a url source's download. */
  authorization?: string | undefined;
  /** A volume claim source: the archive as its puller pod sends it (archive-protocol.ts). */
  archive?: Readable;
}

/** Runs one import; `signal` ends it early (the agent is stopping). */
export type RunImport = (
  task: ImportTask,
  signal: AbortSignal,
  input?: ImportInput,
) => Promise<ImportOutcome>;

/** What unpinning gave: the images unpinned, or why it failed. */
export type UnpinOutcome = { ok: true; unpinned: string[] } | { ok: false; message: string };

/**
 * Unpins every image Prepull imported on the node that is not in `held`
 * (no PrePulledImage with a puller pod here names it any longer).
 */
export type RunUnpin = (held: readonly string[], signal: AbortSignal) => Promise<UnpinOutcome>;

/** The importer's flags for `task`; `withCredential`: it reads one from standard input. */
export function importerArgs(task: ImportTask, settings: ImporterSettings, withCredential = false): string[] {
  const { tarball } = task;
  const source = tarball.persistentVolumeClaim
    ? // Sent by the puller pod, on standard input (the importer caps what it writes).
      ['--archive', '-']
    : tarball.url
      ? [
          '--url',
          tarball.url,
          ...(tarball.sha256 ? ['--sha256', tarball.sha256] : []),
          ...(task.redirectWithin ?? []).flatMap((prefix) => ['--redirect-within', prefix]),
          ...(settings.downloadCaFile ? ['--ca-file', settings.downloadCaFile] : []),
          ...(settings.maxDownloadBytes ? ['--max-download-bytes', String(settings.maxDownloadBytes)] : []),
          ...(withCredential ? ['--credentials-stdin'] : []),
        ]
      : // Resolved inside hostRoot, symlinks included: only the mounted directories exist there.
        ['--archive-root', settings.hostRoot, '--archive', tarball.hostPath ?? ''];
  return [
    '--image',
    task.image,
    // An image imported for another namespace is never replaced.
    '--owner',
    task.namespace,
    ...source,
    ...socketArgs(settings),
    '--work-dir',
    settings.workDir,
    '--timeout',
    `${Math.floor(settings.timeoutMs / 1000)}s`,
    '--exit-zero',
  ];
}

function socketArgs(settings: ImporterSettings): string[] {
  return settings.runtimeSocket ? ['--address', settings.runtimeSocket] : ['--host-root', settings.hostRoot];
}

/** The importer's flags to unpin what is not held. */
export function unpinArgs(held: readonly string[], settings: ImporterSettings): string[] {
  return ['--unpin', '--unpin-except', [...held].sort().join(','), ...socketArgs(settings), '--exit-zero'];
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

/** What the importer reads on standard input with --credentials-stdin: one JSON object. */
export function credentialInput(authorization: string): string {
  return JSON.stringify({ authorization });
}

/**
 * Runs the importer with `args`, `input` on its standard input; resolves with
 * its output and a message for when it wrote no result.
 */
function runImporter(
  settings: ImporterSettings,
  args: string[],
  signal: AbortSignal,
  input: string | Readable = '',
): Promise<{ stdout: string; fallback: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      settings.path,
      args,
      // A little longer than the importer's own timeout, so it reports first.
      { signal, timeout: settings.timeoutMs + 30_000, maxBuffer: 1024 * 1024, env: {} },
      (err, stdout) => {
        // Never err.message: it repeats the command line, a URL's query and userinfo included.
        const exit = err as (Error & { code?: unknown; signal?: unknown }) | null;
        const fallback = exit
          ? `the importer failed without a result (${String(exit.code ?? exit.signal ?? 'error')})`
          : 'the importer wrote no result';
        resolve({ stdout: stdout ?? '', fallback });
      },
    );
    // It may exit before reading (a refused URL): a closed pipe is no failure of ours.
    child.stdin?.on('error', () => {});
    if (typeof input === 'string') child.stdin?.end(input);
    else if (child.stdin) {
      // A sender that goes away ends the archive early: the importer reports it as truncated.
      input.on('error', () => child.stdin?.end());
      input.pipe(child.stdin);
    }
  });
}

/** A {@link RunImport} over the real importer binary. */
export function importerRunner(settings: ImporterSettings): RunImport {
  return async (task, signal, input = {}) => {
    const { authorization, archive } = input;
    const withCredential = authorization !== undefined;
    const { stdout, fallback } = await runImporter(
      settings,
      importerArgs(task, settings, withCredential),
      signal,
      archive ?? (withCredential ? credentialInput(authorization) : ''),
    );
    return parseImporterOutput(stdout, fallback);
  };
}

/** A {@link RunUnpin} over the real importer binary. */
export function unpinRunner(settings: ImporterSettings): RunUnpin {
  return async (held, signal) => {
    const { stdout, fallback } = await runImporter(settings, unpinArgs(held, settings), signal);
    const outcome = parseImporterOutput(stdout, fallback);
    if (!outcome.ok) return { ok: false, message: outcome.message };
    const line = stdout.trim().split('\n').at(-1) ?? '{}';
    const unpinned = (JSON.parse(line) as { unpinned?: unknown }).unpinned;
    return {
      ok: true,
      unpinned: Array.isArray(unpinned) ? unpinned.filter((n) => typeof n === 'string') : [],
    };
  };
}
