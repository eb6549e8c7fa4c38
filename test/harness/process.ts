/**
 * Child processes of the harness: each in its own process group (so a stop
 * takes its children too), output appended to `<logDir>/<name>.log`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Supervised {
  name: string;
  child: ChildProcess;
  logFile: string;
}

/** Starts `command` detached, in its own process group, logging to a file. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  logDir: string,
  env?: NodeJS.ProcessEnv,
): Supervised {
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  child.on('error', (err) => log.write(`spawn failed: ${err.message}\n`));
  return { name, child, logFile };
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process exited. */
export async function stopProcess(p: Supervised, graceMs = 10_000): Promise<void> {
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {}
  }, graceMs);
  await exited;
  clearTimeout(timer);
  // Anything left in the group (children that ignored SIGTERM) goes too.
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {}
}

/** The last lines of a log, for error messages. */
export function logTail(logFile: string, lines = 30): string {
  if (!existsSync(logFile)) return '(no log)';
  return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
}

/**
 * Polls `check` until it returns true; on timeout, throws an error quoting
 * the component's log. Exits early when the process died.
 */
export async function waitUntilReady(
  p: Supervised | undefined,
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  logFile?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const log = logFile ?? p?.logFile ?? '';
  for (;;) {
    try {
      if (await check()) return;
    } catch {}
    if (p && (p.child.exitCode !== null || p.child.signalCode !== null)) {
      throw new Error(
        `${what} exited (${p.child.exitCode ?? p.child.signalCode}); last lines of ${log}:\n${logTail(log)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${timeoutMs / 1000}s; last lines of ${log}:\n${logTail(log)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Pids of processes whose command line contains `needle` (not this process). */
export function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** SIGKILLs every process whose command line mentions `needle`: leftovers of a crashed run. */
export function killMentioning(needle: string): number {
  const pids = pidsMentioning(needle);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return pids.length;
}
