/**
 * PrePulledImage at scale on kwok nodes, against the real API server,
 * controller manager and scheduler: hundreds of nodes, nodes joining and
 * leaving, spec edits, and the maxConcurrentPulls throttle.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { apiSource, Informer } from '../../src/kube/informer.ts';
import type { DaemonSet, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { auditedRequests } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { createFakeNodes, deleteNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const NS = 'ppi-kwok';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));

function ppiManifest(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec,
  });
}

function apply(manifest: string): void {
  const applied = kubectl(cluster, ['apply', '--server-side', '--field-manager=test', '-f', '-'], manifest);
  expect(applied.status, applied.stderr).toBe(0);
}

async function getPpi(name: string): Promise<PrePulledImage> {
  const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, name, NS);
  if (!ppi) throw new Error(`PrePulledImage ${name} not found`);
  return ppi;
}

function condition(ppi: PrePulledImage, type: string) {
  return ppi.status?.conditions?.find((c) => c.type === type);
}

async function expectReady(name: string, nodes: number, images: number): Promise<PrePulledImage> {
  let last: PrePulledImage | undefined;
  await eventually(async () => {
    last = await getPpi(name);
    expect(last.status?.observedGeneration).toBe(last.metadata.generation);
    expect(last.status?.ready).toBe(`${nodes}/${nodes}`);
    expect(last.status?.images).toHaveLength(images);
    expect(condition(last, 'Ready')?.status).toBe('True');
  }, 180_000);
  return last!;
}

describe('PrePulledImage on kwok nodes', () => {
  let operator: TestOperator;
  const spec = {
    images: [{ image: 'registry.example.com/team/app:1.0' }, { image: 'nginx:1.27', name: 'web' }],
    nodeSelector: { 'prepull-test/pool': 'scale' },
    tolerations: [KWOK_TOLERATION],
  };

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createFakeNodes(cluster, 'scale', 0, 300, { 'prepull-test/pool': 'scale' });
    operator = startTestOperator(cluster, 'ppi-kwok');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('brings 300 fake nodes to Ready 300/300, visible in kubectl get ppi', async () => {
    apply(ppiManifest('scale', spec));
    const ppi = await expectReady('scale', 300, 2);
    expect(ppi.status?.desiredNodes).toBe(300);
    expect(ppi.status?.failedNodes).toBe(0);
    expect(ppi.status?.images?.map((i) => i.readyNodes)).toEqual([300, 300]);
    // 300 ready nodes are summarised, not listed.
    expect((ppi.status?.nodes ?? []).length).toBeLessThanOrEqual(50);
    expect(ppi.status?.nodesOmitted).toBeGreaterThan(0);
    const table = kubectl(cluster, ['get', 'ppi', 'scale', '-n', NS]);
    expect(table.stdout).toMatch(/NAME\s+READY\s+STATUS\s+AGE/);
    expect(table.stdout).toMatch(/scale\s+300\/300\s+AllNodesReady/);
    const events = kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/scale']);
    expect(events.stdout).toContain('AllNodesReady');
  });

  it('covers 30 nodes that join, then returns to Ready', async () => {
    createFakeNodes(cluster, 'scale', 300, 330, { 'prepull-test/pool': 'scale' });
    await eventually(async () => expect((await getPpi('scale')).status?.desiredNodes).toBe(330), 120_000);
    await expectReady('scale', 330, 2);
  });

  it('drops nodes that leave from status', async () => {
    const leaving = Array.from({ length: 30 }, (_, i) => `scale-${300 + i}`);
    deleteNodes(cluster, leaving);
    const ppi = await expectReady('scale', 300, 2);
    expect((ppi.status?.nodes ?? []).map((n) => n.name)).not.toEqual(expect.arrayContaining([leaving[0]]));
  });

  it('follows a spec edit: the DaemonSet gets the new image and status the new generation', async () => {
    const before = await getPpi('scale');
    apply(
      ppiManifest('scale', {
        ...spec,
        images: [...spec.images, { image: `quay.io/example/tool@sha256:${'a'.repeat(64)}` }],
      }),
    );
    const after = await expectReady('scale', 300, 3);
    expect(after.metadata.generation).toBeGreaterThan(before.metadata.generation ?? 0);
    const ds = await client.get<DaemonSet>(Resources.daemonSets, 'ppi-scale', NS);
    expect(ds?.spec.template.spec.containers.map((c) => c.image)).toEqual([
      'registry.example.com/team/app:1.0',
      'docker.io/library/nginx:1.27',
      `quay.io/example/tool@sha256:${'a'.repeat(64)}`,
    ]);
    expect(ds?.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'PrePulledImage',
      name: 'scale',
      controller: true,
    });
  });

  it('honours maxConcurrentPulls: 10% — never more than 10 of 100 nodes pulling at once', async () => {
    createFakeNodes(cluster, 'throttle', 0, 100, { 'prepull-test/pool': 'throttle' });
    // Watch the puller pods as they change and check the bound at every event.
    const pods = new Informer<Pod>({
      name: 'throttle-pods',
      source: apiSource<Pod>(client, {
        type: Resources.pods,
        namespace: NS,
        labelSelector: 'app.kubernetes.io/name=prepull-puller',
      }),
      clock: systemClock,
      log: pino({ level: 'silent' }),
    });
    let maxInFlight = 0;
    let sawGated = false;
    const check = () => {
      const mine = pods
        .list()
        .filter((p) => p.metadata.name?.startsWith('ppi-throttle-') && !p.metadata.deletionTimestamp);
      const gated = mine.filter((p) =>
        p.spec.schedulingGates?.some((g) => g.name === 'prepull.dev/pull-slot'),
      );
      const inFlight = mine.filter((p) => !gated.includes(p) && p.status?.phase !== 'Running');
      if (gated.length > 0) sawGated = true;
      maxInFlight = Math.max(maxInFlight, inFlight.length);
    };
    pods.addHandler({ add: check, update: check, delete: check });
    pods.start();
    await pods.waitForSync();
    try {
      apply(
        ppiManifest('throttle', {
          images: [{ image: 'registry.example.com/big/model:7b' }],
          nodeSelector: { 'prepull-test/pool': 'throttle' },
          tolerations: [KWOK_TOLERATION],
          maxConcurrentPulls: '10%',
        }),
      );
      await expectReady('throttle', 100, 1);
    } finally {
      await pods.stop();
    }
    expect(sawGated).toBe(true);
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(10);
  });

  it('removes its DaemonSet and pods when the PrePulledImage is deleted', async () => {
    expect(kubectl(cluster, ['delete', 'ppi', 'throttle', '-n', NS, '--wait=true']).status).toBe(0);
    await eventually(async () => {
      expect(await client.get(Resources.daemonSets, 'ppi-throttle', NS)).toBeUndefined();
      const left = await client.list<Pod>(Resources.pods, {
        namespace: NS,
        labelSelector: 'app.kubernetes.io/name=prepull-puller',
      });
      expect(left.items.filter((p) => p.metadata.name?.startsWith('ppi-throttle-'))).toEqual([]);
    }, 120_000);
  });

  it('issues no API requests at steady state, as the audit log of the API server shows', async () => {
    await expectReady('scale', 300, 3);
    // Let the last status writes land, then look at a quiet window.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, since).filter((r) => r.verb !== 'watch');
    expect(requests).toEqual([]);
    // The audit log does see the operator: its watches.
    expect(auditedRequests(cluster.auditLog, USER_AGENT).some((r) => r.verb === 'list')).toBe(true);
  });
});
