/**
 * What the benchmarks share: a cluster of their own (apart from the test
 * cluster's name and ports), the CRDs, kwok nodes, and the operator as a child
 * process whose memory we can read and whose requests the audit log shows.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageNodeEnv, imageNodeFlags } from '../scripts/build.ts';
import { KubeClient } from '../src/kube/client.ts';
import { loadKubeConfig } from '../src/kube/config.ts';
import { releasedImage } from '../src/version.ts';
import type { ClusterInfo } from '../test/harness/types.ts';

export const root = join(import.meta.dirname, '..');

export function say(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

// On a busy 2-core machine kwok renews thousands of node leases late, and the
// node lifecycle controller's default grace (50 s) then marks nodes NotReady
// (seen at 2500 nodes with the machine's load at 12 to 20, and at 2000 with 8).
// A longer grace keeps them Ready for every benchmark; a floor and what it is
// compared with see the same nodes either way.
const BENCH_CONTROLLER_MANAGER_FLAGS = ['--node-monitor-grace-period=5m'];

/**
 * More flags for one run, space-separated, after the benchmark's own (a
 * repeated flag's last value wins): BENCH_KCM_FLAGS (kube-controller-manager),
 * BENCH_APISERVER_FLAGS, BENCH_SCHEDULER_FLAGS and BENCH_KWOK_FLAGS. For
 * trying what lifts the harness's limits at thousands of nodes; the
 * benchmark prints them with its figures.
 */
export function benchFlags(): Record<'kcm' | 'apiserver' | 'scheduler' | 'kwok', string[]> {
  const split = (name: string) => (process.env[name] ?? '').split(' ').filter((f) => f !== '');
  return {
    kcm: split('BENCH_KCM_FLAGS'),
    apiserver: split('BENCH_APISERVER_FLAGS'),
    scheduler: split('BENCH_SCHEDULER_FLAGS'),
    kwok: split('BENCH_KWOK_FLAGS'),
  };
}

/** Starts a cluster for one benchmark and stops it afterwards, whatever happens. */
export async function withCluster<T>(
  name: string,
  basePort: number,
  options: { kwok: boolean; registry?: boolean },
  run: (cluster: ClusterInfo, client: KubeClient) => Promise<T>,
): Promise<T> {
  const { startCluster } = await import('../test/harness/cluster.ts');
  const extra = benchFlags();
  const cluster = await startCluster({
    name,
    basePort,
    kwok: options.kwok,
    ...(options.registry ? { registry: true } : {}),
    controllerManagerFlags: [...BENCH_CONTROLLER_MANAGER_FLAGS, ...extra.kcm],
    apiServerFlags: extra.apiserver,
    schedulerFlags: extra.scheduler,
    kwokFlags: extra.kwok,
    progress: (l) => say(l),
  });
  try {
    kubectl(cluster, ['apply', '--server-side', '-f', join(root, 'crds')]);
    return await run(cluster.info, new KubeClient(loadKubeConfig(cluster.info.kubeconfig)));
  } finally {
    await cluster.stop();
  }
}

export function kubectl(
  cluster: { info?: ClusterInfo } | ClusterInfo,
  args: string[],
  input?: string,
): string {
  const info = 'info' in cluster && cluster.info ? cluster.info : (cluster as ClusterInfo);
  const run = spawnSync(join(info.binDir, 'kubectl'), ['--kubeconfig', info.kubeconfig, ...args], {
    input,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (run.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

/** The PrePulledImage `name` in `namespace` with `spec`, as a user writes it. */
export function prePulledImageManifest<Spec extends object>(namespace: string, name: string, spec: Spec) {
  return { apiVersion: 'prepull.dev/v1alpha1', kind: 'PrePulledImage', metadata: { name, namespace }, spec };
}

/** Creates or updates the PrePulledImage `name` in `namespace` with `spec`, as a user would (kubectl apply). */
export function applyPrePulledImage(
  cluster: { info?: ClusterInfo } | ClusterInfo,
  namespace: string,
  name: string,
  spec: object,
): void {
  kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(prePulledImageManifest(namespace, name, spec)));
}

/** The value at quantile `q` (0.5: p50) of `values`, nearest rank. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

/** The median of `values`; of an even count, the mean of the middle two. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Polls `check` every `intervalMs` (100 ms by default) until it holds; throws after `timeoutMs`. */
export async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The operator as the image runs it, in its own process: `prepull run` from
 * the bundle, dist/prepull.mjs (`await buildBundle()` first), with the
 * image's Node flags (and `nodeFlags` after them).
 */
export function startOperatorProcess(
  bundle: string,
  cluster: ClusterInfo,
  logFile: string,
  extra: string[] = [],
  nodeFlags: string[] = [],
): ChildProcess {
  const out = openSync(logFile, 'w');
  return spawn(
    process.execPath,
    [
      ...imageNodeFlags(),
      ...nodeFlags,
      bundle,
      'run',
      '--kubeconfig',
      cluster.kubeconfig,
      '--health-address',
      '127.0.0.1:24999',
      '--agent-image',
      releasedImage,
      ...extra,
    ],
    // As the image runs it: its Node flags above, its environment here.
    { stdio: ['ignore', out, out], env: { ...process.env, ...imageNodeEnv() } },
  );
}

/** Waits until the operator process logged that its controllers run. */
export async function untilControllersStarted(logFile: string): Promise<void> {
  await until(
    () => {
      try {
        return readFileSync(logFile, 'utf8').includes('controllers started');
      } catch {
        return false;
      }
    },
    60_000,
    'the operator to start its controllers',
  );
}

/** The operator process's /metrics (started by {@link startOperatorProcess}). */
export async function operatorMetric(name: string, labels?: string): Promise<number> {
  const text = await (await fetch('http://127.0.0.1:24999/metrics')).text();
  // With `labels` (for instance `controller="prepulledimage"`), the sum of the series that carry them.
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .filter((l) => labels === undefined || l.slice(0, l.lastIndexOf(' ')).includes(labels));
  // A counter with no series of those labels yet has counted nothing; a name it does not serve is NaN.
  if (lines.length === 0) return text.includes(`# TYPE ${name} counter`) ? 0 : Number.NaN;
  return lines.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** CPU time (user and system) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th, in clock ticks (100 a second).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/** CPU time every core of the machine has spent busy so far (not idle or waiting on I/O), in seconds. */
export function machineBusySeconds(): number {
  const { user, nice, system, irq, softirq, steal } = machineTicks();
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * CPU seconds the hypervisor gave to others while this machine wanted them
 * (steal, summed over its CPUs): a round that grew with it was slowed by the
 * host, not by what ran in it.
 */
export function machineStealSeconds(): number {
  return machineTicks().steal / 100;
}

function machineTicks() {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks.map(Number);
  return { user, nice, system, irq, softirq, steal };
}

/**
 * RSS sampled once a second for a while: the median and the peak, in MiB. A
 * single reading lands anywhere in the garbage collector's cycle.
 */
export async function sampleRssMiB(pid: number, seconds: number): Promise<{ median: number; max: number }> {
  const samples: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    samples.push(rssMiB(pid));
  }
  samples.sort((a, b) => a - b);
  return { median: samples[Math.floor(samples.length / 2)] ?? 0, max: samples.at(-1) ?? 0 };
}

export function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

/**
 * The inspector protocol of a process started with `--inspect=127.0.0.1:0`,
 * whose address is read from the process's log ("Debugger listening on
 * ws://…"): `send` a method and get its result; `on` a notification.
 */
async function connectInspector(logFile: string): Promise<{
  send(method: string, params?: object): Promise<unknown>;
  on(method: string, listener: (params: unknown) => void): void;
  close(): void;
}> {
  let url = '';
  await until(
    () => {
      url = /Debugger listening on (ws:\/\/\S+)/.exec(readFileSync(logFile, 'utf8'))?.[1] ?? '';
      return url !== '';
    },
    60_000,
    'the operator inspector',
  );
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', reject, { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, (result: unknown) => void>();
  const listeners = new Map<string, (params: unknown) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as {
      id?: number;
      result?: unknown;
      method?: string;
      params?: unknown;
    };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
    else if (message.method) listeners.get(message.method)?.(message.params);
  });
  return {
    send: (method, params = {}) =>
      new Promise<unknown>((resolve) => {
        const id = ++nextId;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    on: (method, listener) => {
      listeners.set(method, listener);
    },
    close: () => socket.close(),
  };
}

/**
 * The V8 CPU profiler of a process started with `--inspect=127.0.0.1:0`,
 * through the inspector protocol: start it before a phase and stop it after,
 * so the profile holds that phase only.
 */
export async function connectProfiler(logFile: string): Promise<{
  start(): Promise<void>;
  stop(): Promise<unknown>;
}> {
  const inspector = await connectInspector(logFile);
  await inspector.send('Profiler.enable');
  // A sample every 10 ms, not 1: the profiler's own cost stays out of the ratio.
  await inspector.send('Profiler.setSamplingInterval', { interval: 10_000 });
  return {
    start: async () => {
      await inspector.send('Profiler.start');
    },
    stop: async () => {
      const { profile } = (await inspector.send('Profiler.stop')) as { profile: unknown };
      inspector.close();
      return profile;
    },
  };
}

/**
 * Writes a heap snapshot of a process started with `--inspect=127.0.0.1:0`
 * to `path` (open it in Chrome DevTools' Memory tab), after a full garbage
 * collection, and returns the V8 heap in use by kind of object, largest
 * first: `MiB  count  type name`.
 */
export async function takeHeapSnapshot(logFile: string, path: string, count: number): Promise<string[]> {
  const inspector = await connectInspector(logFile);
  const chunks: string[] = [];
  inspector.on('HeapProfiler.addHeapSnapshotChunk', (params) => {
    chunks.push((params as { chunk: string }).chunk);
  });
  await inspector.send('HeapProfiler.enable');
  await inspector.send('HeapProfiler.collectGarbage');
  await inspector.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  inspector.close();
  const text = chunks.join('');
  writeFileSync(path, text);
  return heapByKind(JSON.parse(text), count);
}

/** Self size by node type and name (constructor, or the string's first characters), largest first. */
function heapByKind(snapshot: unknown, count: number): string[] {
  const {
    snapshot: meta,
    nodes,
    strings,
  } = snapshot as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = meta.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const types = meta.meta.node_types[0];
  const totals = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt] ?? 0] ?? '?';
    const name = strings[nodes[i + nameAt] ?? 0] ?? '';
    const key =
      type === 'string' || type === 'concatenated string' || type === 'sliced string'
        ? `${type}`
        : `${type} ${name.slice(0, 60)}`;
    const entry = totals.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += nodes[i + sizeAt] ?? 0;
    entry.count += 1;
    totals.set(key, entry);
  }
  return [...totals]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, count)
    .map(([key, t]) => `${fmt(t.bytes / 1048576, 2).padStart(7)} MiB ${String(t.count).padStart(8)}  ${key}`);
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * The functions a CPU profile spent most time in, by self time, with the
 * share of all samples: `percent% function (file:line)`.
 */
export function topSelfTime(profile: unknown, count: number): string[] {
  const { nodes, samples } = profile as { nodes: ProfileNode[]; samples: number[] };
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of samples) {
    const frame = byId.get(id)?.callFrame;
    const where = frame?.url ? ` (${frame.url.replace(/^.*\//, '')}:${frame.lineNumber + 1})` : '';
    const key = `${frame?.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, n]) => `${fmt((100 * n) / samples.length).padStart(5)}% ${key}`);
}
