/**
 * RegistryMirror status across 300 kwok nodes, and nodes that join later:
 * the operator reads each node's mirrors report from the agent pod on it
 * (src/controllers/agent-reports.ts). kwok runs no agent, so the test plays
 * the agents: it creates pods labelled as agent pods on the fake nodes, with
 * the report annotation the real agent writes (the real agent is the
 * real-node tier's). Needs no real node.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AGENT_POD_SELECTOR, reportAnnotation } from '../../src/agent/node/report.ts';
import {
  MAX_MIRROR_STATUS_FAILURES,
  MIRRORS_AGENT_MODULE,
  type MirrorNodeReport,
  type RegistryMirror,
} from '../../src/api/registrymirror.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAMESPACE = 'prepull-system';
const POOL = { 'prepull-test/pool': 'mirrors' };
const NODES = 300;
const agentLabels = Object.fromEntries(AGENT_POD_SELECTOR.split(',').map((kv) => kv.split('=')));

/** A fake agent pod on `node` carrying `report` (undefined: an agent that has not reported yet). */
function agentPod(node: string, report: MirrorNodeReport | undefined): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `mirror-agent-${node}`,
      namespace: NAMESPACE,
      labels: agentLabels,
      ...(report
        ? { annotations: { [reportAnnotation(MIRRORS_AGENT_MODULE)]: JSON.stringify(report) } }
        : {}),
    },
    spec: {
      nodeName: node,
      tolerations: [KWOK_TOLERATION],
      containers: [{ name: 'agent', image: 'prepull.invalid/agent:fake' }],
    },
  };
}

/** Objects per kubectl call: a busy machine must not run into kubectl's time limit. */
const BATCH = 50;

function applyAll(objects: object[]): void {
  for (let from = 0; from < objects.length; from += BATCH) {
    const applied = kubectl(
      cluster,
      ['apply', '--server-side', '--force-conflicts', '--field-manager=test', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects.slice(from, from + BATCH) }),
    );
    if (applied.status !== 0) throw new Error(`kubectl apply: ${applied.status} ${applied.stderr}`);
  }
}

function createNodes(from: number, to: number): string[] {
  const names: string[] = [];
  for (let start = from; start < to; start += BATCH) {
    names.push(...createFakeNodes(cluster, 'mirror', start, Math.min(to, start + BATCH), POOL));
  }
  return names;
}

/** The RegistryMirror `scale` over the pool, with one mirror. */
function applyMirror(url: string): void {
  serverSideApply(cluster, {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryMirror',
    metadata: { name: 'scale' },
    spec: { host: 'docker.io', mirrors: [{ url }], nodeSelector: { matchLabels: POOL } },
  });
}

async function mirror(): Promise<RegistryMirror> {
  const rm = await client.get<RegistryMirror>(Resources.registryMirrors, 'scale');
  if (!rm) throw new Error('no RegistryMirror scale');
  return rm;
}

function reportFor(rm: RegistryMirror, reason: string, message = ''): MirrorNodeReport {
  return {
    runtime: {
      flavour: 'containerd',
      configFile: '/etc/containerd/config.toml',
      hostsDir: '/etc/containerd/certs.d',
    },
    mirrors: [
      {
        name: rm.metadata.name ?? '',
        uid: rm.metadata.uid ?? '',
        generation: rm.metadata.generation ?? 0,
        reason,
        message,
      },
    ],
  };
}

describe('RegistryMirror status over kwok nodes', () => {
  let operator: TestOperator;
  let nodes: string[] = [];

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'deploy/namespace.yaml']).status).toBe(0);
    nodes = createNodes(0, NODES);
    operator = startTestOperator(cluster, 'registrymirror-kwok');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    kubectl(cluster, ['delete', 'pods', '-n', NAMESPACE, '-l', AGENT_POD_SELECTOR, '--wait=false']);
    kubectl(cluster, ['delete', 'regmirror', 'scale', '--ignore-not-found']);
    // By label, in one request: 310 names in one kubectl call ran past its time limit on a busy machine.
    kubectl(cluster, ['delete', 'nodes', '-l', 'prepull-test/pool=mirrors', '--wait=false']);
    await operator?.stop();
  });

  it('counts every selected node as pending until its agent reports this generation', async () => {
    applyMirror('https://10.1.2.3:32000');
    applyAll(nodes.map((n) => agentPod(n, undefined)));
    await eventually(async () => {
      const { status } = await mirror();
      expect(status).toMatchObject({ applied: `0/${NODES}`, desiredNodes: NODES, pendingNodes: NODES });
      expect(status?.conditions?.find((c) => c.type === 'Reconciling')).toMatchObject({
        status: 'True',
        reason: 'AgentPending',
      });
    });
  });

  it(`is Ready at ${NODES}/${NODES} once every agent reports Applied`, async () => {
    const rm = await mirror();
    applyAll(nodes.map((n) => agentPod(n, reportFor(rm, 'Applied'))));
    await eventually(async () => {
      const { status } = await mirror();
      expect(status).toMatchObject({ applied: `${NODES}/${NODES}`, appliedNodes: NODES, pendingNodes: 0 });
      expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'AllNodesApplied',
      });
    });
  });

  it('covers nodes that join: pending until their agent reports, then applied', async () => {
    const joined = createNodes(NODES, NODES + 10);
    nodes = [...nodes, ...joined];
    await eventually(async () => {
      expect((await mirror()).status).toMatchObject({ applied: `${NODES}/${NODES + 10}`, pendingNodes: 10 });
    });
    const rm = await mirror();
    applyAll(joined.map((n) => agentPod(n, reportFor(rm, 'Applied'))));
    await eventually(async () => {
      expect((await mirror()).status?.applied).toBe(`${NODES + 10}/${NODES + 10}`);
    });
  });

  it('lists failing nodes, bounded, with their reason and message, and is Stalled', async () => {
    const rm = await mirror();
    const failing = nodes.slice(0, 40);
    applyAll(failing.map((n) => agentPod(n, reportFor(rm, 'ConfigPathNotSet', 'add config_path'))));
    await eventually(async () => {
      const { status } = await mirror();
      expect(status?.failedNodes).toBe(40);
      expect(status?.failures).toHaveLength(MAX_MIRROR_STATUS_FAILURES);
      expect(status?.failures?.[0]).toEqual({
        node: 'mirror-0',
        reason: 'ConfigPathNotSet',
        message: 'add config_path',
      });
      expect(status?.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({
        status: 'True',
        reason: 'ConfigPathNotSet',
      });
    });
    // A spec change makes every node pending again until agents report the new generation.
    applyMirror('https://10.1.2.4:32000');
    await eventually(async () => {
      const { status, metadata } = await mirror();
      expect(status?.observedGeneration).toBe(metadata.generation);
      expect(status?.pendingNodes).toBe(NODES + 10);
    });
  });
});
