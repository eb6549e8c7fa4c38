/**
 * The node agent on the harness's real node for the cluster tiers: started
 * from test/harness/agent.ts's manifests and waited for, and the admin's
 * import policy.
 */
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AGENT_SERVICE, ARCHIVE_PORT } from '../../src/agent/node/imports/archive-protocol.ts';
import { DOWNLOAD_CA_CONFIGMAP, type NodeAgentOptions, nodeAgentManifests } from '../harness/agent.ts';
import type { ClusterInfo } from '../harness/types.ts';
import { eventually } from './eventually.ts';
import { kubectl } from './kubectl.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const NAMESPACE = 'prepull-system';

export type { NodeAgentOptions };
export { nodeAgentManifests };

export interface NodeAgent {
  /** Removes the DaemonSet and waits for its pod to go. */
  stop(): Promise<void>;
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
    const pods = agentPods(cluster, [
      '-o',
      'jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.containerStatuses[0].ready}{"\\n"}{end}',
    ]);
    const lines = pods.stdout.split('\n').filter(Boolean);
    if (!lines.includes('|true'))
      throw new Error(`the agent pod does not run yet: ${pods.stdout}${pods.stderr}`);
  });
  return {
    async stop() {
      if (options.downloadCa !== undefined) {
        kubectl(cluster, [
          'delete',
          'configmap',
          DOWNLOAD_CA_CONFIGMAP,
          '-n',
          NAMESPACE,
          '--ignore-not-found',
        ]);
      }
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

/**
 * The agent Service by its ClusterIP, for the operator's archive URL: the
 * harness has kube-proxy but no cluster DNS.
 */
export function agentArchiveUrl(cluster: ClusterInfo): string {
  const ip = kubectl(cluster, [
    'get',
    'service',
    AGENT_SERVICE,
    '-n',
    NAMESPACE,
    '-o',
    'jsonpath={.spec.clusterIP}',
  ]);
  if (ip.status !== 0 || !ip.stdout.trim()) throw new Error(`reading the agent Service: ${ip.stderr}`);
  return `http://${ip.stdout.trim()}:${ARCHIVE_PORT}`;
}

/** The agent pod's own address on the real node, where a test can send to it directly. */
export function agentPodUrl(cluster: ClusterInfo): string {
  const ip = agentPods(cluster, [
    '--field-selector=status.phase=Running',
    '-o',
    'jsonpath={.items[0].status.podIP}',
  ]);
  if (ip.status !== 0 || !ip.stdout.trim()) throw new Error(`reading the agent pod: ${ip.stderr}`);
  return `http://${ip.stdout.trim()}:${ARCHIVE_PORT}`;
}

function agentPods(cluster: ClusterInfo, args: string[]) {
  return kubectl(cluster, [
    'get',
    'pods',
    '-n',
    NAMESPACE,
    '-l',
    'app.kubernetes.io/component=agent',
    ...args,
  ]);
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
