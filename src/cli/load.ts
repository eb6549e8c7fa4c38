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
import type { DaemonSet, Pod } from '../kube/objects.ts';
import { Resources } from '../kube/resources.ts';
import { mapConcurrently } from '../runtime/parallel.ts';

export const loadUsage = `usage: prepull load [ARCHIVE | -] [flags]

Imports an image archive (docker save, skopeo docker-archive: or oci-archive:,
ctr export; single- or multi-platform) into containerd on every selected node.

  ARCHIVE | -               the archive, or - for standard input
  --image NAME              name the image NAME (needed for an archive that names none)
  --from ARCHIVE            the archive, when --image is given
  --nodes SELECTOR          only nodes with these labels, e.g. pool=gpu,zone=a
  --namespace NS            where the loader pods run (default prepull-load; created,
                            allowed privileged pods: they mount the node's root read-only)
  --agent-image IMAGE       the Prepull image (default ghcr.io/prepull/prepull:v<version>)
  --containerd-socket PATH  containerd's socket on the nodes (default: detected)
  --parallel N              nodes loaded at once (default 4)
  --kubeconfig PATH         cluster to use (default $KUBECONFIG, ~/.kube/config)
`;

interface NodeResult {
  node: string;
  image: string;
  ok: boolean;
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
}

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
    const loader = await startLoaders(client, {
      namespace: values.namespace,
      agentImage: values['agent-image'] ?? io.defaultAgentImage,
      nodeSelector: parseSelector(values.nodes),
      say,
    });
    try {
      const size = statSync(archive).size;
      const total = size * loader.pods.length * names.length;
      const progress = progressBar(io.stderr, total, loader.pods.length * names.length);
      const socketArgs = values['containerd-socket']
        ? ['--address', `/host${values['containerd-socket']}`]
        : ['--host-root', '/host'];
      const jobs = names.flatMap((image) => loader.pods.map((pod) => ({ image, pod })));
      const results: NodeResult[] = [];
      await mapConcurrently(jobs, Number(values.parallel) || 4, async ({ image, pod }) => {
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
      });
      progress.finish();
      printResults(io.stdout, results);
      return results.every((r) => r.ok) ? 0 : 1;
    } finally {
      await client.delete(Resources.daemonSets, loader.name, values.namespace, {
        propagationPolicy: 'Background',
      });
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

/** Creates the loader DaemonSet and waits until a loader runs on every selected node. */
async function startLoaders(
  client: KubeClient,
  o: {
    namespace: string;
    agentImage: string;
    nodeSelector: Record<string, string>;
    say: (l: string) => void;
  },
): Promise<{ name: string; pods: Pod[] }> {
  try {
    await client.create(Resources.namespaces, {
      metadata: {
        name: o.namespace,
        labels: {
          'app.kubernetes.io/managed-by': 'prepull',
          'pod-security.kubernetes.io/enforce': 'privileged',
        },
      },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  const name = `prepull-load-${randomBytes(3).toString('hex')}`;
  const labels = { 'app.kubernetes.io/name': 'prepull-load', 'prepull.dev/load': name };
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
          nodeSelector: { 'kubernetes.io/os': 'linux', ...o.nodeSelector },
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
  o.say(`starting loader pods (DaemonSet ${o.namespace}/${name})`);
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const current = await client.get<DaemonSet>(Resources.daemonSets, name, o.namespace);
    const desired = current?.status?.desiredNumberScheduled ?? 0;
    if (current?.status && current.status.observedGeneration !== undefined && desired === 0) {
      await client.delete(Resources.daemonSets, name, o.namespace);
      throw new Error('no node matches');
    }
    if (desired > 0 && current?.status?.numberReady === desired) {
      const pods = await client.list<Pod>(Resources.pods, {
        namespace: o.namespace,
        labelSelector: `prepull.dev/load=${name}`,
      });
      const running = pods.items.filter(
        (p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp,
      );
      if (running.length === desired) return { name, pods: running };
    }
    if (Date.now() > deadline) {
      await client.delete(Resources.daemonSets, name, o.namespace);
      throw new Error(
        `loader pods did not start on every node within 5 minutes (${current?.status?.numberReady ?? 0}/${desired})`,
      );
    }
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
        r.ok ? 'Loaded' : (r.reason ?? 'Failed'),
        r.ok ? (r.digest ?? '') : (r.message ?? ''),
      ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const row of rows)
    out.write(`${row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('   ')}\n`);
}
