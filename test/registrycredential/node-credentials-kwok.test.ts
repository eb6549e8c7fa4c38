/**
 * RegistryCredential spec.nodes over the shared kwok pool: the controller
 * keeps the node copy in Prepull's namespace, and reads each selected node's
 * nodecreds report from the agent pod on it (src/controllers/agent-reports.ts)
 * into per-node status; nodes that join later are counted (and pending) until
 * their agent reports; a rotation makes every node pending until its agent
 * has the new copy; dropping spec.nodes deletes the copy. kwok runs no agent,
 * so the test plays the agents: pods labelled as agent pods on the fake nodes,
 * with the report annotation the real agent writes (the real agent is the
 * real-node tier's, node-credentials.test.ts). Needs no real node.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AGENT_POD_SELECTOR, reportAnnotation } from '../../src/agent/node/report.ts';
import {
  NODE_COPIES_SELECTOR,
  NODECREDS_AGENT_MODULE,
  type NodeCredentialsReport,
  nodeCopyName,
} from '../../src/agent/nodecreds/protocol.ts';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Secret } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import {
  createFakeNodes,
  KWOK_TOLERATION,
  SHARED_POOL_LABEL,
  SHARED_POOL_SIZE,
  sharedKwokPool,
} from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAMESPACE = 'prepull-system';
const SOURCE_NS = 'nodecreds-kwok-source';
const TARGET_NS = 'nodecreds-kwok-copies';
const NAME = 'nodes-kwok';
/** Nodes this file adds, with its own pool label (the shared pool stays as it was). */
const JOINED_POOL = 'nodecreds';
const JOINED = 3;
const agentLabels = Object.fromEntries(AGENT_POD_SELECTOR.split(',').map((kv) => kv.split('=')));
const PASSWORDS = ['first-Zq81-password', 'second-Yx72-password'];
const auth = (password: string) => Buffer.from(`puller:${password}`).toString('base64');

function applySource(password: string): void {
  const config = { auths: { 'registry.kwok.invalid': { auth: auth(password) } } };
  serverSideApply(cluster, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'source', namespace: SOURCE_NS },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(config)).toString('base64') },
  });
}

function applyCredential(nodes: boolean): void {
  serverSideApply(cluster, {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryCredential',
    metadata: { name: NAME },
    spec: {
      source: { secretRef: { name: 'source', namespace: SOURCE_NS } },
      target: { secretName: 'pull', namespaces: [TARGET_NS] },
      ...(nodes
        ? {
            nodes: {
              nodeSelector: {
                matchExpressions: [
                  { key: SHARED_POOL_LABEL, operator: 'In', values: ['shared', JOINED_POOL] },
                ],
              },
            },
          }
        : {}),
    },
  });
}

const objects = {
  credential: async () => {
    const rc = await client.get<RegistryCredential>(Resources.registryCredentials, NAME);
    if (!rc) throw new Error(`no RegistryCredential ${NAME}`);
    return rc;
  },
  copy: () => client.get<Secret>(Resources.secrets, nodeCopyName(NAME), NAMESPACE),
};

/** A fake agent pod on `node` carrying `report` for the node copy (undefined: an agent that has not reported). */
function agentPod(node: string, report: NodeCredentialsReport | undefined): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `nodecreds-agent-${node}`,
      namespace: NAMESPACE,
      labels: agentLabels,
      annotations: report ? { [reportAnnotation(NODECREDS_AGENT_MODULE)]: JSON.stringify(report) } : {},
    },
    spec: {
      nodeName: node,
      tolerations: [KWOK_TOLERATION],
      containers: [{ name: 'agent', image: 'prepull.invalid/agent:fake' }],
    },
  };
}

function reportFor(
  rc: RegistryCredential,
  resourceVersion: string,
  reason = 'Applied',
  message = '',
): NodeCredentialsReport {
  return {
    configFile: '/var/lib/kubelet/config.json',
    credentials: [{ name: NAME, uid: rc.metadata.uid ?? '', resourceVersion, reason, message }],
  };
}

function applyAll(items: object[]): void {
  for (let from = 0; from < items.length; from += 30) {
    const applied = kubectl(
      cluster,
      ['apply', '--server-side', '--force-conflicts', '--field-manager=test', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: items.slice(from, from + 30) }),
    );
    if (applied.status !== 0) throw new Error(`kubectl apply: ${applied.status} ${applied.stderr}`);
  }
}

describe('RegistryCredential spec.nodes over kwok nodes', () => {
  let operator: TestOperator;
  let pool: readonly string[] = [];
  let joined: string[] = [];

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'deploy/namespace.yaml']).status).toBe(0);
    for (const ns of [SOURCE_NS, TARGET_NS]) {
      serverSideApply(cluster, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
    applySource(PASSWORDS[0]!);
    pool = sharedKwokPool(cluster);
    operator = startTestOperator(cluster, 'nodecreds-kwok');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    kubectl(cluster, ['delete', 'pods', '-n', NAMESPACE, '-l', AGENT_POD_SELECTOR, '--wait=false']);
    kubectl(cluster, ['delete', 'regcred', NAME, '--ignore-not-found']);
    kubectl(cluster, ['delete', 'nodes', '-l', `${SHARED_POOL_LABEL}=${JOINED_POOL}`, '--wait=false']);
    kubectl(cluster, ['delete', 'namespace', SOURCE_NS, TARGET_NS, '--wait=false']);
    await operator?.stop();
  });

  it("keeps the node copy in Prepull's namespace and counts every selected node pending until its agent reports", async () => {
    applyCredential(true);
    applyAll(pool.map((n) => agentPod(n, undefined)));
    await eventually(async () => {
      const copy = await objects.copy();
      expect(copy?.metadata.labels?.['prepull.dev/node-credential']).toBe(NAME);
      expect(copy?.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'RegistryCredential', name: NAME });
      const { status } = await objects.credential();
      expect(status?.nodes).toMatchObject({
        applied: `0/${SHARED_POOL_SIZE}`,
        selectedNodes: SHARED_POOL_SIZE,
        pendingNodes: SHARED_POOL_SIZE,
      });
      expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'False',
        reason: 'AgentPending',
      });
    });
    // Only node copies carry the label the agents select on.
    const listed = await client.list<Secret>(Resources.secrets, {
      namespace: NAMESPACE,
      labelSelector: NODE_COPIES_SELECTOR,
    });
    expect(listed.items.map((s) => s.metadata.name)).toContain(nodeCopyName(NAME));
  });

  it(`is Ready with ${SHARED_POOL_SIZE}/${SHARED_POOL_SIZE} once every agent reports the copy applied, and lists a failing node`, async () => {
    const rc = await objects.credential();
    const version = (await objects.copy())?.metadata.resourceVersion ?? '';
    applyAll(pool.map((n) => agentPod(n, reportFor(rc, version))));
    await eventually(async () => {
      const { status } = await objects.credential();
      expect(status?.nodes).toMatchObject({
        applied: `${SHARED_POOL_SIZE}/${SHARED_POOL_SIZE}`,
        pendingNodes: 0,
      });
      expect(status?.conditions?.find((c) => c.type === 'NodeCredentials')).toMatchObject({
        status: 'True',
        reason: 'AllNodesCredentialed',
      });
      expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    });
    const message =
      "/var/lib/kubelet/config.json already has an entry for registry.kwok.invalid that is not Prepull's";
    applyAll([agentPod(pool[0]!, reportFor(rc, version, 'Conflict', message))]);
    await eventually(async () => {
      const { status } = await objects.credential();
      expect(status?.nodes?.failures).toEqual([{ node: pool[0], reason: 'Conflict', message }]);
      expect(status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'Conflict',
      });
    });
    applyAll([agentPod(pool[0]!, reportFor(rc, version))]);
  });

  it('covers nodes as they join: counted at once, pending until their agent reports', async () => {
    joined = createFakeNodes(cluster, 'nodecreds', 0, JOINED, { [SHARED_POOL_LABEL]: JOINED_POOL });
    const total = SHARED_POOL_SIZE + JOINED;
    await eventually(async () => {
      const { status } = await objects.credential();
      expect(status?.nodes).toMatchObject({ applied: `${SHARED_POOL_SIZE}/${total}`, pendingNodes: JOINED });
    });
    const rc = await objects.credential();
    const version = (await objects.copy())?.metadata.resourceVersion ?? '';
    applyAll(joined.map((n) => agentPod(n, reportFor(rc, version))));
    await eventually(async () => {
      expect((await objects.credential()).status?.nodes?.applied).toBe(`${total}/${total}`);
    });
  });

  it('rotates: the copy follows the source, and every node is pending until its agent has the new copy', async () => {
    const before = (await objects.copy())?.metadata.resourceVersion;
    applySource(PASSWORDS[1]!);
    const total = SHARED_POOL_SIZE + JOINED;
    let version = '';
    await eventually(async () => {
      const copy = await objects.copy();
      const config = JSON.parse(
        Buffer.from(copy?.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8'),
      );
      expect(config.auths['registry.kwok.invalid'].auth).toBe(auth(PASSWORDS[1]!));
      version = copy?.metadata.resourceVersion ?? '';
      expect(version).not.toBe(before);
      expect((await objects.credential()).status?.nodes).toMatchObject({
        applied: `0/${total}`,
        pendingNodes: total,
      });
    });
    const rc = await objects.credential();
    applyAll([...pool, ...joined].map((n) => agentPod(n, reportFor(rc, version))));
    await eventually(async () => {
      expect((await objects.credential()).status?.nodes?.applied).toBe(`${total}/${total}`);
    });
  });

  it('deletes the node copy when spec.nodes goes, and never shows the secret in status, Events or logs', async () => {
    applyCredential(false);
    await eventually(async () => {
      expect(await objects.copy()).toBeUndefined();
      const { status } = await objects.credential();
      expect(status?.nodes).toBeUndefined();
      expect(status?.conditions?.find((c) => c.type === 'NodeCredentials')).toBeUndefined();
      expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    });
    const everywhere = [
      ...operator.logLines(),
      kubectl(cluster, ['get', 'regcred', NAME, '-o', 'yaml']).stdout,
      kubectl(cluster, ['get', 'events', '-A', '-o', 'yaml']).stdout,
      kubectl(cluster, ['get', 'pods', '-n', NAMESPACE, '-o', 'yaml']).stdout,
    ].join('\n');
    for (const password of PASSWORDS) {
      expect(everywhere).not.toContain(password);
      expect(everywhere).not.toContain(auth(password));
    }
  });
});
