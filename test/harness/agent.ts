/**
 * The node agent's manifests for the harness's real node: deploy/agent.yaml as
 * a user applies it, with only what differs on this machine changed: the
 * image (the Prepull image the node imported, by digest), containerd's socket
 * (a harness path), the archive directories hostPath sources come from, and
 * the node's containerd config, certs.d and agent state, which live under the
 * harness's node directory rather than /etc/containerd and /var/lib/prepull.
 * Used by the cluster tiers (test/support/agent.ts) and by `npm start`'s
 * embedded cluster. Reads deploy/agent.yaml; otherwise pure.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ClusterInfo } from './types.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');

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
  /** A PEM CA the agent trusts for https downloads (a ConfigMap mounted for --download-ca-file). */
  downloadCa?: string;
}

/** The ConfigMap holding {@link NodeAgentOptions.downloadCa}, in Prepull's namespace. */
export const DOWNLOAD_CA_CONFIGMAP = 'prepull-test-download-ca';

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
  const extra: unknown[] = [];
  if (options.downloadCa !== undefined) {
    extra.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: DOWNLOAD_CA_CONFIGMAP, namespace: 'prepull-system' },
      data: { 'ca.pem': options.downloadCa },
    });
    container.volumeMounts.push({
      name: 'download-ca',
      mountPath: '/etc/prepull/download-ca',
      readOnly: true,
    });
    (pod.volumes as unknown[]).push({ name: 'download-ca', configMap: { name: DOWNLOAD_CA_CONFIGMAP } });
    container.args.push('--download-ca-file=/etc/prepull/download-ca/ca.pem');
  }
  return [...objects.filter((o) => o !== daemonSet), ...extra, daemonSet];
}
