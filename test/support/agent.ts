/**
 * The node agent on the harness's real node for the cluster tiers: started
 * from test/harness/agent.ts's manifests and waited for, and the admin's
 * import policy.
 */
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type NodeAgentOptions, nodeAgentManifests } from '../harness/agent.ts';
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
