/**
 * `prepull load` (`kubectl prepull load` as a kubectl plugin): puts a local
 * image archive into containerd on every selected node of any cluster,
 * through the API server alone — no registry, no SSH to nodes. A short-lived
 * DaemonSet of loader pods (the Prepull image, with the node's root mounted
 * read-only for the containerd socket) receives the archive over `exec`
 * standard input and runs prepull-import, which imports it for the node's
 * platform, names it, checks it and pins it.
 *
 *   kubectl prepull load ./app.tar
 *   docker save app:dev | kubectl prepull load -
 *   kubectl prepull load --image app:dev --from docker-archive.tar
 *
 * It works only in a namespace it created itself (labelled so), skips and
 * reports nodes that are not Ready, and removes its loader pods on Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { imageNamesInArchive } from '../image/archive.ts';
import { normalizeImageReference } from '../image/reference.ts';
import { KubeClient } from '../kube/client.ts';
import { findKubeconfig, loadKubeConfig } from '../kube/config.ts';
import { isAlreadyExists } from '../kube/errors.ts';
import { execWithStdin } from '../kube/exec.ts';
import type { DaemonSet, Namespace, Node, Pod } from '../kube/objects.ts';
import { Resources } from '../kube/resources.ts';
import { mapConcurrently } from '../runtime/parallel.ts';

export const loadUsage = `usage: prepull load [ARCHIVE | -] [flags]

Imports an image archive (docker save, skopeo docker-archive: or oci-archive:,
ctr export; single- or multi-platform) into containerd on every selected node.

  ARCHIVE | -               the archive, or - for standard input
  --image NAME              name the image NAME (needed for an archive that names none)
  --from ARCHIVE            the archive, when --image is given
  --nodes SELECTOR          only nodes with these labels, e.g. pool=gpu,zone=a
  --namespace NS            where the loader pods run (default prepull-load; created and
                            labelled prepull.dev/load-namespace=true, allowed privileged
                            pods: they mount the node's root read-only). A namespace of
                            that name without the label is refused.
  --agent-image IMAGE       the Prepull image (default ghcr.io/prepull/prepull:v<version>)
  --containerd-socket PATH  containerd's socket on the nodes (default: detected)
  --parallel N              nodes loaded at once (default 4)
  --kubeconfig PATH         cluster to use (default $KUBECONFIG, ~/.kube/config)
`;

interface NodeResult {
  node: string;
  image: string;
  ok: boolean;
  /** Not tried: the node was not Ready. */
  skipped?: boolean;
  digest?: string;
  reason?: string;
  message?: string;
}

export interface LoadIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  defaultAgentImage: string;
  /** Where Ctrl-C (SIGINT) and SIGTERM arrive; default the process. */
  signals?: Pick<NodeJS.Process, 'once' | 'off'>;
}

/** The label that says `prepull load` created a namespace, and so may use it. */
export const LOAD_NAMESPACE_LABEL = 'prepull.dev/load-namespace';

/** Exit status after Ctrl-C, as shells report SIGINT. */
const INTERRUPTED = 130;

class Interrupted extends Error {}

export async function runLoad(args: string[], io: LoadIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      image: { type: 'string' },
      from: { type: 'string' },
      nodes: { type: 'string' },
      namespace: { type: 'string', default: 'prepull-load' },
      'agent-image': { type: 'string' },
      'containerd-socket': { type: 'string' },
      parallel: { type: 'string', default: '4' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(loadUsage);
    return 0;
  }
  const source = values.from ?? positionals[0];
  if (!source || positionals.length > 1 || (values.from && positionals.length > 0)) {
    io.stderr.write(`prepull load: give one archive (a path, or - for standard input)\n\n${loadUsage}`);
    return 2;
  }
  const say = (line: string) => io.stderr.write(`${line}\n`);
  const scratch = mkdtempSync(join(tmpdir(), 'prepull-load-'));
  try {
    let archive = source;
    if (source === '-') {
      archive = join(scratch, 'stdin.tar');
      say('reading the archive from standard input');
      await pipeline(io.stdin, createWriteStream(archive));
    }
    const names = values.image
      ? [normalizeImageReference(values.image)]
      : (await imageNamesInArchive(archive)).map(normalizeImageReference);
    if (names.length === 0) {
      say('prepull load: the archive names no image; give it one with --image NAME');
      return 2;
    }
    const found = findKubeconfig(values.kubeconfig, io.env);
    if (!found) {
      say('prepull load: no cluster: set KUBECONFIG or pass --kubeconfig');
      return 2;
    }
    const kc = loadKubeConfig(found.path);
    const client = new KubeClient(kc, { userAgent: 'kubectl-prepull' });
    // From here on Ctrl-C removes what was made instead of leaving loader pods behind.
    const interrupt = new AbortController();
    const signals = io.signals ?? process;
    const onSignal = () => interrupt.abort();
    signals.once('SIGINT', onSignal);
    signals.once('SIGTERM', onSignal);
    const interrupted = new Promise<never>((_, reject) =>
      interrupt.signal.addEventListener('abort', () => reject(new Interrupted()), { once: true }),
    );
    interrupted.catch(() => {});
    let loaderName: string | undefined;
    try {
      const loader = await Promise.race([
        startLoaders(client, {
          namespace: values.namespace,
          agentImage: values['agent-image'] ?? io.defaultAgentImage,
          nodeSelector: parseSelector(values.nodes),
          say,
          signal: interrupt.signal,
          onCreated: (name) => {
            loaderName = name;
          },
        }),
        interrupted,
      ]);
      const size = statSync(archive).size;
      const total = size * loader.pods.length * names.length;
      const progress = progressBar(io.stderr, total, loader.pods.length * names.length);
      const socketArgs = values['containerd-socket']
        ? ['--address', `/host${values['containerd-socket']}`]
        : ['--host-root', '/host'];
      const jobs = names.flatMap((image) => loader.pods.map((pod) => ({ image, pod })));
      const results: NodeResult[] = names.flatMap((image) =>
        loader.skipped.map((s) => ({
          node: s.node,
          image,
          ok: false,
          skipped: true,
          reason: s.reason,
          message: s.message,
        })),
      );
      await Promise.race([
        mapConcurrently(jobs, Number(values.parallel) || 4, async ({ image, pod }) => {
          const node = pod.spec.nodeName ?? '?';
          const result = await loadOne(kc, pod, image, archive, socketArgs, progress.add).catch(
            (err: unknown): NodeResult => ({
              node,
              image,
              ok: false,
              reason: 'ExecFailed',
              message: err instanceof Error ? err.message : String(err),
            }),
          );
          results.push({ ...result, node });
          progress.done();
        }),
        interrupted,
      ]);
      progress.finish();
      printResults(io.stdout, results);
      for (const s of loader.skipped) say(`prepull load: node ${s.node} skipped: ${s.message}`);
      // A skipped node is reported, not failed: the exit status is about the nodes that were tried (and 1 if none was).
      return results.every((r) => r.ok || r.skipped) && results.some((r) => r.ok) ? 0 : 1;
    } catch (err) {
      if (!(err instanceof Interrupted)) throw err;
      say('prepull load: interrupted; removing the loader pods');
      return INTERRUPTED;
    } finally {
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
      if (loaderName) await removeLoaders(client, values.namespace, loaderName);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function loadOne(
  kc: ReturnType<typeof loadKubeConfig>,
  pod: Pod,
  image: string,
  archive: string,
  socketArgs: string[],
  onBytes: (n: number) => void,
): Promise<NodeResult> {
  const node = pod.spec.nodeName ?? '?';
  const exec = await execWithStdin(
    kc,
    { namespace: pod.metadata.namespace ?? '', pod: pod.metadata.name ?? '', container: 'loader' },
    ['/prepull-import', '--image', image, '--archive', '-', ...socketArgs],
    createReadStream(archive),
    onBytes,
  );
  const line = exec.stdout.trim().split('\n').at(-1) ?? '';
  try {
    const r = JSON.parse(line) as { ok: boolean; digest?: string; reason?: string; message?: string };
    return {
      node,
      image,
      ok: r.ok,
      ...(r.digest ? { digest: r.digest } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
      ...(r.message ? { message: r.message } : {}),
    };
  } catch {
    return {
      node,
      image,
      ok: false,
      reason: 'ImportFailed',
      message: (exec.stderr || exec.message || line).trim().slice(0, 300),
    };
  }
}

/** A node left out, and why. */
interface SkippedNode {
  node: string;
  reason: string;
  message: string;
}

/** Whether the node's Ready condition is True: a loader pod can run there. */
function isNodeReady(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Deletes the loader DaemonSet and its pods now, rather than when the garbage collector gets to them. */
async function removeLoaders(client: KubeClient, namespace: string, name: string): Promise<void> {
  await client.delete(Resources.daemonSets, name, namespace, { propagationPolicy: 'Background' });
  const pods = await client.list<Pod>(Resources.pods, {
    namespace,
    labelSelector: `prepull.dev/load=${name}`,
  });
  await Promise.all(pods.items.map((p) => client.delete(Resources.pods, p.metadata.name ?? '', namespace)));
}

/**
 * The loader namespace: made here, or already made by an earlier load (it
 * carries {@link LOAD_NAMESPACE_LABEL}). Any other namespace of that name
 * is someone else's, and privileged pods do not go there.
 */
async function ensureLoadNamespace(client: KubeClient, namespace: string): Promise<void> {
  try {
    await client.create(Resources.namespaces, {
      metadata: {
        name: namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'prepull',
          [LOAD_NAMESPACE_LABEL]: 'true',
          'pod-security.kubernetes.io/enforce': 'privileged',
        },
      },
    });
    return;
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  const existing = await client.get<Namespace>(Resources.namespaces, namespace);
  if (existing?.metadata.labels?.[LOAD_NAMESPACE_LABEL] !== 'true') {
    throw new Error(
      `namespace ${namespace} exists and was not created by prepull load (no ${LOAD_NAMESPACE_LABEL}=true label); ` +
        'its loader pods are privileged, so they go only into a namespace of its own: pass --namespace NAME for a new one',
    );
  }
}

/**
 * Creates the loader DaemonSet on the selected nodes that are Ready and waits
 * until a loader runs on each. Nodes that are not Ready, or whose loader does
 * not start in time, are skipped and reported.
 */
async function startLoaders(
  client: KubeClient,
  o: {
    namespace: string;
    agentImage: string;
    nodeSelector: Record<string, string>;
    say: (l: string) => void;
    signal: AbortSignal;
    onCreated: (name: string) => void;
  },
): Promise<{ name: string; pods: Pod[]; skipped: SkippedNode[] }> {
  const selector = { 'kubernetes.io/os': 'linux', ...o.nodeSelector };
  const nodes = await client.list<Node>(Resources.nodes, {
    labelSelector: Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  });
  if (nodes.items.length === 0) throw new Error('no node matches');
  const skipped: SkippedNode[] = nodes.items
    .filter((n) => !isNodeReady(n))
    .map((n) => ({ node: n.metadata.name ?? '?', reason: 'NodeNotReady', message: 'the node is not Ready' }));
  if (skipped.length === nodes.items.length) {
    return { name: '', pods: [], skipped };
  }
  await ensureLoadNamespace(client, o.namespace);
  const name = `prepull-load-${randomBytes(3).toString('hex')}`;
  const labels = { 'app.kubernetes.io/name': 'prepull-load', 'prepull.dev/load': name };
  const notReady = skipped.map((s) => s.node);
  const ds: DaemonSet = {
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      selector: { matchLabels: { 'prepull.dev/load': name } },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'loader',
              image: o.agentImage,
              imagePullPolicy: 'IfNotPresent',
              command: ['/hold'],
              volumeMounts: [{ name: 'host-root', mountPath: '/host', readOnly: true }],
              securityContext: {
                runAsUser: 0,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
          volumes: [{ name: 'host-root', hostPath: { path: '/', type: 'Directory' } }],
          nodeSelector: selector,
          ...(notReady.length > 0
            ? {
                affinity: {
                  nodeAffinity: {
                    requiredDuringSchedulingIgnoredDuringExecution: {
                      nodeSelectorTerms: [
                        { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: notReady }] },
                      ],
                    },
                  },
                },
              }
            : {}),
          // Every selected node, tainted ones included: loading is what the user asked for.
          tolerations: [{ operator: 'Exists' }],
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 1,
        },
      },
    },
  };
  await client.create(Resources.daemonSets, ds);
  o.onCreated(name);
  // Ctrl-C while the create was in flight: the caller has already cleaned up what it knew of.
  if (o.signal.aborted) {
    await removeLoaders(client, o.namespace, name);
    throw new Interrupted();
  }
  o.say(`starting loader pods (DaemonSet ${o.namespace}/${name})`);
  const readyNodes = nodes.items.filter(isNodeReady).map((n) => n.metadata.name ?? '');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const pods = await client.list<Pod>(Resources.pods, {
      namespace: o.namespace,
      labelSelector: `prepull.dev/load=${name}`,
    });
    const running = pods.items.filter(
      (p) =>
        p.status?.phase === 'Running' &&
        !p.metadata.deletionTimestamp &&
        p.status.containerStatuses?.every((c) => c.ready),
    );
    const waiting = readyNodes.filter((n) => !running.some((p) => p.spec.nodeName === n));
    if (waiting.length === 0) return { name, pods: running, skipped };
    if (Date.now() > deadline) {
      // The nodes whose loader did run are loaded; the rest are reported.
      for (const n of waiting)
        skipped.push({
          node: n,
          reason: 'LoaderNotStarted',
          message: 'its loader pod did not start within 5 minutes',
        });
      return { name, pods: running, skipped };
    }
    if (o.signal.aborted) throw new Interrupted();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function parseSelector(text: string | undefined): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const part of (text ?? '').split(',').filter(Boolean)) {
    const [key, value] = part.split('=');
    if (!key || value === undefined)
      throw new Error(`--nodes wants key=value[,key=value], not ${JSON.stringify(text)}`);
    selector[key.trim()] = value.trim();
  }
  return selector;
}

/** A progress bar on a terminal; a line per finished node otherwise. */
function progressBar(out: NodeJS.WritableStream & { isTTY?: boolean }, totalBytes: number, jobs: number) {
  let sent = 0;
  let finished = 0;
  let last = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const fraction = totalBytes === 0 ? 1 : Math.min(1, sent / totalBytes);
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
    const line = `${bar} ${(sent / 1048576).toFixed(1)}/${(totalBytes / 1048576).toFixed(1)} MiB, ${finished}/${jobs} done`;
    if (out.isTTY) out.write(`\r${line}`);
    else if (force) out.write(`${line}\n`);
  };
  return {
    add: (n: number) => {
      sent += n;
      draw();
    },
    done: () => {
      finished++;
      draw(!out.isTTY);
    },
    finish: () => {
      if (out.isTTY) {
        draw(true);
        out.write('\n');
      }
    },
  };
}

function printResults(out: NodeJS.WritableStream, results: NodeResult[]): void {
  const rows = [
    ['NODE', 'IMAGE', 'RESULT', 'DETAIL'],
    ...results
      .sort((a, b) => a.node.localeCompare(b.node) || a.image.localeCompare(b.image))
      .map((r) => [
        r.node,
        r.image,
        r.ok ? 'Loaded' : r.skipped ? `Skipped (${r.reason})` : (r.reason ?? 'Failed'),
        r.ok ? (r.digest ?? '') : (r.message ?? ''),
      ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows)
    out.write(`${row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('   ')}\n`);
}
