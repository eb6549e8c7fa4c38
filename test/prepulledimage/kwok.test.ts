/**
 * PrePulledImage on kwok nodes, against the real API server, controller
 * manager and scheduler: the shared pool of more nodes than a status lists,
 * nodes joining and leaving, spec edits, and the maxConcurrentPulls throttle.
 * How it scales to thousands of nodes is bench/prepulledimage.ts's to show.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MAX_STATUS_NODES, type PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { DaemonSet, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { auditedRequests, inNamespaceGoing, liveNamespaces } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import {
  createFakeNodes,
  deleteNodes,
  KWOK_TOLERATION,
  SHARED_POOL_LABEL,
  SHARED_POOL_SIZE,
  sharedKwokPool,
} from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { requestRefresh } from '../support/prepulledimage.ts';
import { watchObjects } from '../support/watch.ts';

const cluster = inject('cluster');
const NS = 'ppi-kwok';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const POOL = SHARED_POOL_SIZE;
/** 20% of the pool. */
const THROTTLE_BOUND = Math.floor((POOL * 20) / 100);
/** Nodes that join the pool for a while, then leave it. */
const JOINING = Array.from({ length: 10 }, (_, i) => `ppi-kwok-join-${i}`);

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
    nodeSelector: { [SHARED_POOL_LABEL]: 'shared' },
    tolerations: [KWOK_TOLERATION],
  };

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    sharedKwokPool(cluster);
    operator = startTestOperator(cluster, 'ppi-kwok');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
    // The pool as it was: without the nodes that joined, and without this file's pods.
    kubectl(cluster, ['delete', 'node', '--ignore-not-found', '--wait=false', ...JOINING]);
    kubectl(cluster, ['delete', 'namespace', NS, '--wait=false']);
  });

  it(`brings ${POOL} fake nodes to Ready ${POOL}/${POOL}, visible in kubectl get ppi`, async () => {
    apply(ppiManifest('scale', spec));
    const ppi = await expectReady('scale', POOL, 2);
    expect(ppi.status?.desiredNodes).toBe(POOL);
    expect(ppi.status?.failedNodes).toBe(0);
    expect(ppi.status?.images?.map((i) => i.readyNodes)).toEqual([POOL, POOL]);
    // More ready nodes than a status lists (MAX_STATUS_NODES) are summarised, not listed.
    expect((ppi.status?.nodes ?? []).length).toBeLessThanOrEqual(MAX_STATUS_NODES);
    expect(ppi.status?.nodesOmitted).toBe(POOL - (ppi.status?.nodes ?? []).length);
    const table = kubectl(cluster, ['get', 'ppi', 'scale', '-n', NS]);
    expect(table.stdout).toMatch(/NAME\s+READY\s+STATUS\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`scale\\s+${POOL}/${POOL}\\s+AllNodesReady`));
    // The Event follows the status write that made the transition: it may not be there yet.
    await eventually(() =>
      expect(kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/scale']).stdout).toContain(
        'AllNodesReady',
      ),
    );
  });

  it(`covers ${JOINING.length} nodes that join, then returns to Ready`, async () => {
    createFakeNodes(cluster, 'ppi-kwok-join', 0, JOINING.length, { [SHARED_POOL_LABEL]: 'shared' });
    const grown = POOL + JOINING.length;
    await eventually(async () => expect((await getPpi('scale')).status?.desiredNodes).toBe(grown), 120_000);
    await expectReady('scale', grown, 2);
  });

  it('drops nodes that leave from status', async () => {
    deleteNodes(cluster, JOINING);
    const ppi = await expectReady('scale', POOL, 2);
    expect((ppi.status?.nodes ?? []).map((n) => n.name)).not.toEqual(expect.arrayContaining([JOINING[0]]));
    // Their pods stay until PodGC removes them, about a minute on; meanwhile the
    // DaemonSet controller fails every sync ("couldn't get node"), which would
    // hold up the next test's rollout. Remove them as PodGC would.
    const pods = await client.list<Pod>(Resources.pods, { namespace: NS });
    const orphans = pods.items
      .filter((p) => JOINING.includes(p.spec.nodeName ?? ''))
      .map((p) => p.metadata.name ?? '');
    if (orphans.length > 0) {
      const deleted = kubectl(cluster, [
        'delete',
        'pod',
        '-n',
        NS,
        '--grace-period=0',
        '--force',
        '--wait=false',
        ...orphans,
      ]);
      expect(deleted.status, deleted.stderr).toBe(0);
    }
  });

  it('follows a spec edit: the DaemonSet gets the new image and status the new generation', async () => {
    const before = await getPpi('scale');
    apply(
      ppiManifest('scale', {
        ...spec,
        images: [...spec.images, { image: `quay.io/example/tool@sha256:${'a'.repeat(64)}` }],
      }),
    );
    const after = await expectReady('scale', POOL, 3);
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

  it(`honours maxConcurrentPulls: 20% — never more than ${THROTTLE_BOUND} of ${POOL} nodes pulling at once`, async () => {
    // Watch the puller pods as they change and check the bound at every event.
    const pods = watchObjects<Pod>(client, 'throttle-pods', {
      type: Resources.pods,
      namespace: NS,
      labelSelector: 'app.kubernetes.io/name=prepull-puller',
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
          nodeSelector: { [SHARED_POOL_LABEL]: 'shared' },
          tolerations: [KWOK_TOLERATION],
          maxConcurrentPulls: '20%',
        }),
      );
      await expectReady('throttle', POOL, 1);
    } finally {
      await pods.stop();
    }
    expect(sawGated).toBe(true);
    expect(maxInFlight).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(THROTTLE_BOUND);
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

  it('a refresh asked for by annotation replaces the puller pods once per value, with no registry checks', async () => {
    apply(
      ppiManifest('asked', {
        images: [{ image: 'registry.example.com/team/app:latest' }],
        nodeSelector: { 'prepull.dev/test-node': 'none' },
        refresh: { interval: '1h' },
      }),
    );
    const round = async () =>
      (await client.get<DaemonSet>(Resources.daemonSets, 'ppi-asked', NS))?.spec.template.metadata
        ?.annotations?.['prepull.dev/refresh-round'];
    await eventually(async () => expect(await round()).toBe('0'));
    const annotate = (value: string) => requestRefresh(cluster, NS, 'asked', value);
    annotate('one');
    let asked = '';
    await eventually(async () => {
      asked = (await round()) ?? '';
      expect(asked).toMatch(/^0-[0-9a-f]{10}$/);
      expect((await getPpi('asked')).status?.lastHandledRefreshAt).toBe('one');
    });
    const generation = (await client.get<DaemonSet>(Resources.daemonSets, 'ppi-asked', NS))?.metadata
      .generation;
    // The value stays: nothing more changes (the DaemonSet's generation counts template changes).
    expect(kubectl(cluster, ['label', 'ppi', 'asked', '-n', NS, 'touched=yes']).status).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await client.get<DaemonSet>(Resources.daemonSets, 'ppi-asked', NS))?.metadata.generation).toBe(
      generation,
    );
    annotate('two');
    await eventually(async () => {
      expect(await round()).toMatch(/^0-[0-9a-f]{10}$/);
      expect(await round()).not.toBe(asked);
      expect((await getPpi('asked')).status?.lastHandledRefreshAt).toBe('two');
    });
    const events = kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/asked']).stdout;
    expect(events).toContain('refresh asked for: the puller pods are replaced and pull their tags again');
    expect(kubectl(cluster, ['delete', 'ppi', 'asked', '-n', NS, '--wait=true']).status).toBe(0);
  });

  it('issues no API requests at steady state, as the audit log of the API server shows', async () => {
    await expectReady('scale', POOL, 3);
    // Let the last status writes land, then look at a quiet window.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    // Requests about another file's namespace, still going away, do not count.
    const live = await liveNamespaces(client);
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, since).filter(
      (r) => r.verb !== 'watch' && !inNamespaceGoing(r, live),
    );
    expect(requests).toEqual([]);
    // The audit log does see the operator: its watches.
    expect(auditedRequests(cluster.auditLog, USER_AGENT).some((r) => r.verb === 'list')).toBe(true);
  });
});
