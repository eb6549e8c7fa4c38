/**
 * `prepull send-archive`: the `archive-<i>` container of a puller pod whose
 * image comes from a volume claim (archive-protocol.ts). It runs in the
 * tenant's namespace, unprivileged, with the claim mounted read-only, and
 * sends the archive to the node agent of its own node, authenticated by the
 * pod's projected token. It asks with `Expect: 100-continue`, so nothing is
 * transferred until the agent starts the import. When it cannot read the
 * archive (missing, a symlink out of the claim, a FIFO) it says so instead,
 * so the PrePulledImage's status shows why. It tries again until the import
 * is done (as the agent says when: a failed import's back-off, its own for an
 * agent it cannot reach), then waits for its pod to end. The token is read
 * for each send (the kubelet renews it) and never written anywhere. I/O.
 */
import { constants, type ReadStream } from 'node:fs';
import { open, readFile, realpath } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { isAbsolute, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Reason } from '../../../api/conditions.ts';
import { untilSignal } from '../../../runtime/signals.ts';
import { type ArchiveAnswer, archiveAnswerSchema, type SenderFailure } from './archive-protocol.ts';

export const sendArchiveUsage = `usage: prepull send-archive --root DIR --file PATH --to URL --token-file PATH

Run by a puller pod (its archive-<i> container): sends the archive PATH, inside
the volume mounted at DIR, to the node agent at URL, then waits for SIGTERM.
`;

export interface SendOptions {
  root: string;
  file: string;
  to: URL;
  tokenFile: string;
}

/** One line of what happened, for the container's log. */
export type SendLog = (event: string, fields?: Record<string, unknown>) => void;

/** Waits between tries to reach an agent: 2 s doubling to 60 s. */
const UNREACHABLE_MS = { base: 2_000, max: 60_000 };
/** Waits after a refusal that names no time: 30 s doubling to 10 min. */
const REFUSED_MS = { base: 30_000, max: 600_000 };

type Opened = { ok: true; stream: ReadStream; size: number } | { ok: false; failure: SenderFailure };

/**
 * Opens `file` inside `root`: its real path (symlinks resolved) must stay in
 * the volume, and it must be a regular file (opened non-blocking, so a FIFO
 * cannot hang the open).
 */
export async function openArchive(root: string, file: string): Promise<Opened> {
  const shown = `${file} in the volume claim`;
  let real: string;
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(join(root, file));
  } catch (err) {
    return {
      ok: false,
      failure: { reason: Reason.ImportFailed, message: `opening ${shown}: ${errorText(err)}` },
    };
  }
  const inside = relative(realRoot, real);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    return {
      ok: false,
      failure: {
        reason: Reason.PathRefused,
        message: `${shown} leads out of the volume (symlinks included)`,
      },
    };
  }
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    return {
      ok: false,
      failure: { reason: Reason.ImportFailed, message: `opening ${shown}: ${errorText(err)}` },
    };
  }
  const stat = await handle.stat();
  if (!stat.isFile()) {
    await handle.close();
    const kind = stat.isFIFO() ? 'a FIFO' : stat.isDirectory() ? 'a directory' : 'not a regular file';
    return {
      ok: false,
      failure: { reason: Reason.NotRegularFile, message: `${shown} is ${kind}, not a regular file` },
    };
  }
  return { ok: true, stream: handle.createReadStream(), size: stat.size };
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT'
    ? 'no such file'
    : e.code === 'EACCES'
      ? 'permission denied (the file must be readable by the pod, UID 65532)'
      : (e.message ?? String(err));
}

/** One send: the archive, or the failure to read it. Resolves with the agent's answer and HTTP status. */
export function sendOnce(
  to: URL,
  token: string,
  body: { archive: ReadStream; size: number } | { failure: SenderFailure },
): Promise<{ status: number; answer: ArchiveAnswer }> {
  return new Promise((resolve, reject) => {
    const isArchive = 'archive' in body;
    const json = isArchive ? '' : JSON.stringify(body.failure);
    const req = request(to, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': isArchive ? 'application/octet-stream' : 'application/json',
        'content-length': isArchive ? body.size : Buffer.byteLength(json),
        ...(isArchive && { expect: '100-continue' }),
      },
    });
    let settled = false;
    const done = (err: Error | undefined, value?: { status: number; answer: ArchiveAnswer }) => {
      if (settled) return;
      settled = true;
      if (isArchive) body.archive.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    req.on('error', (err) => done(err));
    req.on('continue', () => {
      if (isArchive) body.archive.pipe(req);
    });
    req.on('response', (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < 65_536) text += chunk;
      });
      res.on('end', () => {
        let answer: ArchiveAnswer;
        try {
          answer = archiveAnswerSchema.parse(JSON.parse(text));
        } catch {
          answer = { ok: false, message: `the agent answered ${res.statusCode} with no result` };
        }
        const retry = Number(res.headers['retry-after']);
        if (answer.retryAfterSeconds === undefined && Number.isFinite(retry) && retry > 0) {
          answer.retryAfterSeconds = retry;
        }
        done(undefined, { status: res.statusCode ?? 0, answer });
      });
      res.on('error', (err) => done(err));
      // The agent answered before taking the archive: none of it is sent.
      if (isArchive && !req.writableFinished) body.archive.unpipe(req);
    });
    if (isArchive) body.archive.on('error', (err) => req.destroy(err));
    else req.end(json);
  });
}

/**
 * Sends until the agent says the import is done, then resolves; `signal`
 * ends it early. `sleep` waits (the container's clock).
 */
export async function sendUntilDone(
  options: SendOptions,
  log: SendLog,
  signal: AbortSignal,
  sleep: (ms: number) => Promise<void>,
): Promise<boolean> {
  let unreachable = 0;
  let refused = 0;
  while (!signal.aborted) {
    const opened = await openArchive(options.root, options.file);
    let token: string;
    try {
      token = (await readFile(options.tokenFile, 'utf8')).trim();
    } catch (err) {
      if (opened.ok) opened.stream.destroy();
      log('no token', { message: errorText(err) });
      await sleep(backoff(UNREACHABLE_MS, unreachable++));
      continue;
    }
    let result: { status: number; answer: ArchiveAnswer };
    try {
      result = await sendOnce(
        options.to,
        token,
        opened.ok ? { archive: opened.stream, size: opened.size } : { failure: opened.failure },
      );
    } catch (err) {
      log('agent unreachable', { to: options.to.origin, message: (err as Error).message });
      await sleep(backoff(UNREACHABLE_MS, unreachable++));
      continue;
    }
    unreachable = 0;
    const { status, answer } = result;
    if (answer.ok) {
      // Done, whether by this send or before it (the agent then took none of it).
      if (opened.ok) opened.stream.destroy();
      log('imported', { digest: answer.digest });
      return true;
    }
    log(opened.ok ? 'import not done' : 'archive unreadable', {
      status,
      ...(answer.reason && { reason: answer.reason }),
      message: answer.message,
    });
    const wait =
      answer.retryAfterSeconds !== undefined
        ? answer.retryAfterSeconds * 1000
        : backoff(REFUSED_MS, refused++);
    await sleep(wait);
  }
  return false;
}

function backoff(policy: { base: number; max: number }, tries: number): number {
  return Math.min(policy.max, policy.base * 2 ** Math.min(tries, 20));
}

/** The command: resolves with the exit code once SIGTERM or SIGINT ends the pod. */
export async function runSendArchive(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      root: { type: 'string' },
      file: { type: 'string' },
      to: { type: 'string' },
      'token-file': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(sendArchiveUsage);
    return 0;
  }
  if (!values.root || !values.file || !values.to || !values['token-file']) {
    process.stderr.write(sendArchiveUsage);
    return 2;
  }
  // Up until the pod ends: once done, nothing else would keep the process alive.
  const life = untilSignal();
  const controller = new AbortController();
  const wakers = new Set<() => void>();
  void life.signal.then(() => {
    controller.abort();
    for (const wake of wakers) wake();
  });
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakers.add(wake);
    });
  const log: SendLog = (event, fields = {}) =>
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
  await sendUntilDone(
    { root: values.root, file: values.file, to: new URL(values.to), tokenFile: values['token-file'] },
    log,
    controller.signal,
    sleep,
  );
  // Done: the pod keeps running (like its hold containers) until it is stopped.
  await life.signal;
  return 0;
}
