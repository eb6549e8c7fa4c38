/**
 * The node agent on the harness's real node, from deploy/agent.yaml as a user
 * applies it, with only what differs on this machine changed: the image (the
 * Prepull image the node imported, by digest), containerd's socket (a harness
 * path), the archive directories a tier serves hostPath sources from, and
 * the node's containerd config, certs.d and agent state, which live under the
 * harness's node directory rather than /etc/containerd and /var/lib/prepull.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { ClusterInfo } from '../harness/types.ts';
import { eventually } from './eventually.ts';
import { kubectl } from './kubectl.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const NAMESPACE = 'prepull-system';

interface AgentDaemonSet {
  kind: 'DaemonSet';
  spec: {
    template: {
      spec: {
        containers: Array<{
          image: string;
          imagePullPolicy?: string;
          args: string[];
          volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
        }>;
        volumes: Array<{ name: string; hostPath?: { path: string; type?: string } }>;
      };
    };
  };
}

export interface NodeAgentOptions {
  /** Node directories hostPath tarball sources come from (replace deploy/'s). */
  archiveDirectories?: string[];
  /** More flags for `prepull agent`. */
  args?: string[];
}

export interface NodeAgent {
  /** Removes the DaemonSet and waits for its pod to go. */
  stop(): Promise<void>;
}

/** deploy/agent.yaml's objects, adapted to the real node; the DaemonSet is the last. */
export function nodeAgentManifests(cluster: ClusterInfo, options: NodeAgentOptions = {}): unknown[] {
  const node = cluster.node;
  if (!node) throw new Error('the node agent needs the real node');
  const objects = parseAllDocuments(readFileSync(join(DEPLOY, 'agent.yaml'), 'utf8'))
    .map((doc) => doc.toJS() as { kind: string } | null)
    .filter((o): o is { kind: string } => o !== null);
  const daemonSet = objects.find((o): o is AgentDaemonSet => o.kind === 'DaemonSet');
  if (!daemonSet) throw new Error('deploy/agent.yaml has no DaemonSet');
  const pod = daemonSet.spec.template.spec;
  const container = pod.containers[0]!;
  container.image = node.agentImage;
  container.imagePullPolicy = 'IfNotPresent';
  const socketDir = dirname(node.containerdSocket);
  container.args = [
    ...container.args.filter((a) => !a.startsWith('--containerd-socket=')),
    `--containerd-socket=/host${node.containerdSocket}`,
    ...(options.args ?? []),
  ];
  const archives = options.archiveDirectories ?? [];
  // The harness's containerd reads its own config and certs.d (test/harness/node.ts).
  const nodeDir = join(cluster.dir, 'node');
  const config = join(nodeDir, 'containerd.toml');
  const hostsDir = join(nodeDir, 'certs.d');
  const stateDir = join(nodeDir, 'prepull-agent');
  // The harness's kubelet runs with --root-dir under the node directory (nodecreds module).
  const kubeletRoot = join(nodeDir, 'kubelet');
  container.args.push(
    `--containerd-config=${config}`,
    `--state-dir=${stateDir}`,
    `--kubelet-root-dir=${kubeletRoot}`,
  );
  const mirrorsMounts = [
    { name: 'containerd-config', mountPath: `/host${config}`, readOnly: true },
    { name: 'containerd-hosts', mountPath: `/host${hostsDir}` },
    { name: 'state', mountPath: `/host${stateDir}` },
    { name: 'kubelet', mountPath: `/host${kubeletRoot}` },
  ];
  const mirrorsVolumes = [
    { name: 'containerd-config', hostPath: { path: config, type: 'File' } },
    { name: 'containerd-hosts', hostPath: { path: hostsDir, type: 'Directory' } },
    { name: 'state', hostPath: { path: stateDir, type: 'DirectoryOrCreate' } },
    { name: 'kubelet', hostPath: { path: kubeletRoot, type: 'Directory' } },
  ];
  const replaced = (name: string) =>
    name === 'runtime' || name.startsWith('archives-') || mirrorsMounts.some((m) => m.name === name);
  container.volumeMounts = [
    { name: 'runtime', mountPath: `/host${socketDir}` },
    ...archives.map((path, i) => ({ name: `archives-${i}`, mountPath: `/host${path}`, readOnly: true })),
    ...mirrorsMounts,
    ...container.volumeMounts.filter((m) => !replaced(m.name)),
  ];
  pod.volumes = [
    { name: 'runtime', hostPath: { path: socketDir, type: 'Directory' } },
    ...archives.map((path, i) => ({ name: `archives-${i}`, hostPath: { path, type: 'Directory' } })),
    ...mirrorsVolumes,
    ...pod.volumes.filter((v) => !replaced(v.name)),
  ];
  return [...objects.filter((o) => o !== daemonSet), daemonSet];
}

/** Applies deploy/'s namespace and the agent, and waits until its pod runs on the real node. */
export async function startNodeAgent(
  cluster: ClusterInfo,
  options: NodeAgentOptions = {},
): Promise<NodeAgent> {
  const namespace = kubectl(cluster, ['apply', '--server-side', '-f', join(DEPLOY, 'namespace.yaml')]);
  if (namespace.status !== 0) throw new Error(`applying deploy/namespace.yaml: ${namespace.stderr}`);
  const list = { apiVersion: 'v1', kind: 'List', items: nodeAgentManifests(cluster, options) };
  const applied = kubectl(
    cluster,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=test', '-f', '-'],
    JSON.stringify(list),
  );
  if (applied.status !== 0) throw new Error(`applying the node agent: ${applied.stderr}`);
  await eventually(() => {
    const pods = kubectl(cluster, [
      'get',
      'pods',
      '-n',
      NAMESPACE,
      '-l',
      'app.kubernetes.io/component=agent',
      '-o',
      'jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.containerStatuses[0].ready}{"\\n"}{end}',
    ]);
    const lines = pods.stdout.split('\n').filter(Boolean);
    if (!lines.includes('|true'))
      throw new Error(`the agent pod does not run yet: ${pods.stdout}${pods.stderr}`);
  });
  return {
    async stop() {
      kubectl(cluster, [
        'delete',
        'daemonset',
        'prepull-agent',
        '-n',
        NAMESPACE,
        '--wait=true',
        '--ignore-not-found',
      ]);
      kubectl(cluster, [
        'wait',
        '--for=delete',
        'pod',
        '-n',
        NAMESPACE,
        '-l',
        'app.kubernetes.io/component=agent',
        '--timeout=60s',
      ]);
    },
  };
}

/** Puts the admin's import policy (ConfigMap prepull-import-policy) in place; returns its removal. */
export function applyImportPolicy(cluster: ClusterInfo, rules: unknown[]): () => void {
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'prepull-import-policy', namespace: NAMESPACE },
    data: { 'policy.yaml': stringify({ rules }) },
  };
  const applied = kubectl(
    cluster,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=test', '-f', '-'],
    JSON.stringify(configMap),
  );
  if (applied.status !== 0) throw new Error(`applying the import policy: ${applied.stderr}`);
  return () => {
    kubectl(cluster, ['delete', 'configmap', 'prepull-import-policy', '-n', NAMESPACE, '--ignore-not-found']);
  };
}
