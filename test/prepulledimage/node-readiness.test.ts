/**
 * The node readiness gate on kwok nodes, against the real API server,
 * scheduler and controller manager: nodes that register with the
 * prepull.dev/images-not-ready startup taint lose it only once their puller
 * pod holds the images; a workload waits for that; a node whose images never
 * come is released by the timeout, keeping a taint someone else added; and a
 * node that ran before the PrePulledImage is never tainted.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Node, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, fakeNodeManifest, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';
import { applyQuota } from '../support/quota.ts';
import { watchObjects } from '../support/watch.ts';

const cluster = inject('cluster');
const NS = 'node-readiness';
const TAINT = 'prepull.dev/images-not-ready';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));

/** Nodes that register with the startup taint; `managed: false` leaves them without kwok (never Ready, no pod runs). */
function registerTainted(
  prefix: string,
  count: number,
  labels: Record<string, string>,
  managed = true,
): string[] {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const items = names.map((name) => {
    const manifest = fakeNodeManifest(name, labels) as Node;
    if (!managed) delete manifest.metadata.annotations;
    manifest.spec = { taints: [...(manifest.spec?.taints ?? []), { key: TAINT, effect: 'NoSchedule' }] };
    return manifest;
  });
  const applied = kubectl(
    cluster,
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  );
  expect(applied.status, applied.stderr).toBe(0);
  return names;
}

const hasTaint = (node: Node | undefined, key = TAINT) =>
  node?.spec?.taints?.some((t) => t.key === key) ?? false;

/**
 * Nodes that register tainted while the gate is on: enough for releases to
 * overlap (every node event is checked), not a scale test.
 */
const JOINING = 30;

describe('node readiness gate on kwok nodes', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createFakeNodes(cluster, 'gate-old', 0, 3, { 'prepull-test/pool': 'gate' });
    operator = startTestOperator(cluster, 'node-readiness', {
      allowedPriorityClasses: ['prepull-low'],
    });
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
    kubectl(cluster, ['delete', 'namespace', NS, '--wait=false']);
    // Fake nodes heartbeat until the cluster stops: the files after this one need none of these.
    kubectl(cluster, ['delete', 'node', '-l', 'prepull-test/pool in (gate,held)', '--wait=false']);
  });

  it(`releases ${JOINING} joining nodes only once their puller pod is Ready`, async () => {
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'gate', namespace: NS },
      spec: {
        images: [{ image: 'registry.example.com/ml/model:7b' }],
        nodeSelector: { 'prepull-test/pool': 'gate' },
        tolerations: [KWOK_TOLERATION],
        nodeReadiness: { taint: true, timeout: '10m' },
      },
    });
    await eventually(async () =>
      expect((await getPrePulledImage(client, NS, 'gate')).status?.ready).toBe('3/3'),
    );

    // Watch nodes and puller pods; at every node event, a node without the taint must have a Ready pod.
    const nodes = watchObjects<Node>(client, 'gate-nodes', {
      type: Resources.nodes,
      labelSelector: 'prepull-test/pool=gate',
    });
    const pods = watchObjects<Pod>(client, 'gate-pods', { type: Resources.pods, namespace: NS });
    const releasedEarly: string[] = [];
    const readyPodOn = (node: string) =>
      pods
        .list()
        .some(
          (p) =>
            p.metadata.name?.startsWith('ppi-gate-') &&
            p.spec.nodeName === node &&
            p.status?.containerStatuses?.every((c) => c.ready || c.state?.running),
        );
    const seen = new Set<string>();
    nodes.addHandler({
      add: (n) => {
        if (hasTaint(n)) seen.add(n.metadata.name ?? '');
      },
      update: (before, after) => {
        const name = after.metadata.name ?? '';
        if (hasTaint(before) && !hasTaint(after) && !readyPodOn(name)) releasedEarly.push(name);
      },
    });
    pods.start();
    nodes.start();
    await Promise.all([pods.waitForSync(), nodes.waitForSync()]);
    try {
      const fresh = registerTainted('gate-new', JOINING, { 'prepull-test/pool': 'gate' });
      await eventually(async () => {
        const all = await client.list<Node>(Resources.nodes, { labelSelector: 'prepull-test/pool=gate' });
        expect(all.items.filter((n) => hasTaint(n)).map((n) => n.metadata.name)).toEqual([]);
        expect(all.items).toHaveLength(JOINING + 3);
      }, 180_000);
      expect(seen.size).toBe(JOINING);
      expect(releasedEarly).toEqual([]);
      await eventually(async () => {
        const ppi = await getPrePulledImage(client, NS, 'gate');
        expect(ppi.status?.nodeReadiness).toEqual({ heldBack: 0 });
      });
      const events = kubectl(cluster, [
        'get',
        'events',
        '-n',
        'default',
        '--field-selector',
        `involvedObject.name=${fresh[0]}`,
      ]);
      expect(events.stdout).toContain('ImagesReady');
      // The nodes that ran before the PrePulledImage were never tainted.
      for (const name of ['gate-old-0', 'gate-old-1', 'gate-old-2'])
        expect(hasTaint(nodes.get(name))).toBe(false);
    } finally {
      await Promise.all([pods.stop(), nodes.stop()]);
    }
  });

  it('keeps a workload Pending on a held node, and it schedules once the images are there', async () => {
    // The pods cannot be created while this quota stands: the node stays held, for as long as the test needs.
    kubectl(cluster, ['create', 'namespace', 'node-readiness-held']);
    await applyQuota(cluster, 'node-readiness-held', 'no-pods', { pods: '0' });
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'held', namespace: 'node-readiness-held' },
      spec: {
        images: [{ image: 'registry.example.com/ml/model:8b' }],
        nodeSelector: { 'prepull-test/pool': 'held' },
        tolerations: [KWOK_TOLERATION],
        nodeReadiness: { taint: true, timeout: '10m' },
      },
    });
    const [name] = registerTainted('gate-held', 1, { 'prepull-test/pool': 'held' });
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'workload', namespace: NS },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': name },
        tolerations: [KWOK_TOLERATION],
        containers: [{ name: 'app', image: 'registry.example.com/ml/model:8b' }],
      },
    });
    // The scheduler says why it waits: the startup taint.
    await eventually(async () => {
      const workload = await client.get<Pod>(Resources.pods, 'workload', NS);
      expect(workload?.spec.nodeName).toBeUndefined();
      const scheduled = (
        workload?.status as { conditions?: Array<{ type: string; status: string; message?: string }> }
      )?.conditions?.find((c) => c.type === 'PodScheduled');
      expect(scheduled?.status).toBe('False');
      // e.g. "0/104 nodes are available: 1 node(s) had untolerated taint(s), 103 node(s) didn't match …"
      expect(scheduled?.message).toMatch(/untolerated taint/);
    });
    expect(hasTaint(await client.get<Node>(Resources.nodes, name ?? ''))).toBe(true);
    // Status follows within its write interval.
    await eventually(async () => {
      const held = await getPrePulledImage(client, 'node-readiness-held', 'held');
      expect(held.status?.nodeReadiness?.heldBack).toBe(1);
    });
    kubectl(cluster, ['delete', 'resourcequota', 'no-pods', '-n', 'node-readiness-held']);
    await eventually(async () => {
      expect(hasTaint(await client.get<Node>(Resources.nodes, name ?? ''))).toBe(false);
      expect((await client.get<Pod>(Resources.pods, 'workload', NS))?.spec.nodeName).toBe(name);
    }, 120_000);
    kubectl(cluster, ['delete', 'namespace', 'node-readiness-held', '--wait=false']);
  });

  it('fails open after the timeout, keeping a taint someone else added meanwhile', async () => {
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'slow', namespace: NS },
      spec: {
        images: [{ image: 'registry.example.com/ml/huge:1' }],
        nodeSelector: { 'prepull-test/pool': 'slow' },
        // It tolerates the taint added meanwhile, so the node stays one it gates.
        tolerations: [
          KWOK_TOLERATION,
          { key: 'example.com/other', operator: 'Exists', effect: 'NoSchedule' },
        ],
        nodeReadiness: { taint: true, timeout: '20s' },
      },
    });
    // Not managed by kwok: the node never gets Ready, so its puller pod never runs.
    const [name] = registerTainted('gate-slow', 1, { 'prepull-test/pool': 'slow' }, false);
    try {
      await eventually(async () => {
        const ppi = await getPrePulledImage(client, NS, 'slow');
        expect(ppi.status?.nodeReadiness?.heldBack).toBe(1);
      });
      // Someone else adds a taint while the node is held back.
      const node = await client.get<Node>(Resources.nodes, name ?? '');
      await client.patch(
        Resources.nodes,
        name ?? '',
        undefined,
        {
          spec: {
            taints: [
              ...(node?.spec?.taints ?? []),
              { key: 'example.com/other', value: 'x', effect: 'NoSchedule' },
            ],
          },
        },
        'merge',
      );
      await eventually(async () => {
        const now = await client.get<Node>(Resources.nodes, name ?? '');
        expect(hasTaint(now)).toBe(false);
        expect(hasTaint(now, 'example.com/other')).toBe(true);
        expect(now?.metadata.annotations?.['prepull.dev/released-unready']).toBe('Timeout');
      }, 120_000);
      await eventually(async () => {
        const ppi = await getPrePulledImage(client, NS, 'slow');
        expect(ppi.status?.nodeReadiness).toEqual({ heldBack: 0, releasedUnready: [name] });
      });
      // The Event follows the status write: it may not be there yet.
      await eventually(() =>
        expect(kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/slow']).stdout).toContain(
          'ReleasedUnready',
        ),
      );
    } finally {
      kubectl(cluster, ['delete', 'node', name ?? '', '--wait=false']);
    }
  });
});
