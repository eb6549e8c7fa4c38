/**
 * spec.imagesFrom against the real API server, on kwok nodes: a
 * PrePulledImage takes the images of its namespace's Deployments,
 * StatefulSets, DaemonSets, Jobs, CronJobs and bare Pods (containers and init
 * containers), with their pull secrets and their ServiceAccount's, merged with
 * spec.images once normalised; a changed image reaches the puller DaemonSet,
 * and churn that changes no image costs no request. A hostile neighbour:
 * another namespace's workloads (and secrets) never leak in unless that
 * namespace grants it, and a bad selector is refused by the schema.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { DaemonSet } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { auditedRequests } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NS = 'images-from';
const NEIGHBOUR = 'images-from-neighbour';
const POOL = { 'prepull-test/pool': 'images-from' };
const REGISTRY = 'registry.example.com';

/** A pod template whose pods never run anywhere (no node tolerates them): only its spec matters. */
function template(images: string[], extra: Record<string, unknown> = {}) {
  return {
    metadata: { labels: { app: 'w' } },
    spec: {
      ...extra,
      nodeSelector: { 'prepull-test/none': 'none' },
      containers: images.slice(0, 1).map((image) => ({ name: 'main', image })),
      initContainers: images.slice(1).map((image, i) => ({ name: `init-${i}`, image })),
    },
  };
}

const deployment = (
  namespace: string,
  name: string,
  images: string[],
  extra: Record<string, unknown> = {},
) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { tier: 'ml' } },
  spec: { replicas: 1, selector: { matchLabels: { app: 'w' } }, template: template(images, extra) },
});

async function pullerDaemonSet(name: string): Promise<DaemonSet | undefined> {
  return client.get<DaemonSet>(Resources.daemonSets, `ppi-${name}`, NS);
}
const imagesOf = (ds: DaemonSet | undefined) =>
  ds?.spec.template.spec.containers.map((c) => c.image).sort() ?? [];
const secretsOf = (ds: DaemonSet | undefined) =>
  ((ds?.spec.template.spec.imagePullSecrets as Array<{ name: string }> | undefined) ?? [])
    .map((s) => s.name)
    .sort();

function warm(name: string, spec: Record<string, unknown>): PrePulledImage {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec: {
      nodeSelector: POOL,
      tolerations: [KWOK_TOLERATION],
      ...spec,
    } as unknown as PrePulledImage['spec'],
  };
}

describe('spec.imagesFrom on kwok nodes', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    for (const ns of [NS, NEIGHBOUR]) kubectl(cluster, ['create', 'namespace', ns]);
    // The neighbour shares the label a selector may reach for; it has not granted anything.
    expect(kubectl(cluster, ['label', 'namespace', NS, NEIGHBOUR, 'team=ml', '--overwrite']).status).toBe(0);
    createFakeNodes(cluster, 'images-from', 0, 2, POOL);
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'runner', namespace: NS },
      imagePullSecrets: [{ name: 'runner-pull' }],
    });
    const workloads = [
      deployment(NS, 'trainer', [`${REGISTRY}/ml/trainer:1`, `${REGISTRY}/ml/fetch-weights:1`], {
        imagePullSecrets: [{ name: 'trainer-pull' }],
        serviceAccountName: 'runner',
      }),
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'store', namespace: NS },
        spec: {
          serviceName: 'store',
          selector: { matchLabels: { app: 'w' } },
          template: template(['redis:7']),
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'agent', namespace: NS },
        spec: { selector: { matchLabels: { app: 'w' } }, template: template([`${REGISTRY}/ops/agent:2`]) },
      },
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'once', namespace: NS },
        spec: { template: template(['redis:7'], { restartPolicy: 'Never' }) },
      },
      {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: 'nightly', namespace: NS },
        spec: {
          schedule: '0 3 * * *',
          suspend: true,
          jobTemplate: {
            spec: { template: template([`${REGISTRY}/ml/eval:3`], { restartPolicy: 'Never' }) },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'notebook', namespace: NS },
        spec: template([`${REGISTRY}/ml/notebook:1`]).spec,
      },
      // The neighbour's private model and its pull secret must never reach the object.
      deployment(NEIGHBOUR, 'secret-model', [`${REGISTRY}/neighbour/secret-model:1`], {
        imagePullSecrets: [{ name: 'neighbour-pull' }],
      }),
    ];
    for (const w of workloads) serverSideApply(cluster, w);
    operator = startTestOperator(cluster, 'images-from');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
    kubectl(cluster, ['delete', 'namespace', NS, NEIGHBOUR, '--wait=false']);
    kubectl(cluster, ['delete', 'node', 'images-from-0', 'images-from-1', '--wait=false']);
  });

  it('pulls every kind of workload of its namespace, init containers too, merged with spec.images once normalised', async () => {
    serverSideApply(
      cluster,
      warm('all', { images: [{ image: `${REGISTRY}/ml/trainer:1` }, { image: 'busybox' }], imagesFrom: {} }),
    );
    const expected = [
      `${REGISTRY}/ml/eval:3`,
      `${REGISTRY}/ml/fetch-weights:1`,
      `${REGISTRY}/ml/notebook:1`,
      `${REGISTRY}/ml/trainer:1`,
      `${REGISTRY}/ops/agent:2`,
      'docker.io/library/busybox:latest',
      'docker.io/library/redis:7',
    ].sort();
    await eventually(async () => expect(imagesOf(await pullerDaemonSet('all'))).toEqual(expected));
    const ds = await pullerDaemonSet('all');
    expect(secretsOf(ds)).toEqual(['runner-pull', 'trainer-pull']);
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'all');
      expect(status?.ready).toBe('2/2');
      expect(status?.imagesFrom).toMatchObject({
        namespaces: [NS],
        namespaceCount: 1,
        workloads: 6,
        images: 6,
      });
      const redis = status?.images?.find((i) => i.image === 'docker.io/library/redis:7');
      expect(redis?.sources).toEqual([`Job ${NS}/once`, `StatefulSet ${NS}/store`]);
      const trainer = status?.images?.find((i) => i.image === `${REGISTRY}/ml/trainer:1`);
      expect(trainer?.sources).toEqual([`Deployment ${NS}/trainer`]);
    });
    // Nothing of the neighbour, and no puller of Prepull's own was read as a DaemonSet workload.
    expect(JSON.stringify(ds)).not.toContain('neighbour');
  });

  it('follows a changed image within seconds, and churn that changes no image makes no request', async () => {
    serverSideApply(
      cluster,
      warm('follow', { imagesFrom: { kinds: ['Deployment'], selector: { matchLabels: { tier: 'ml' } } } }),
    );
    await eventually(async () =>
      expect(imagesOf(await pullerDaemonSet('follow'))).toEqual([
        `${REGISTRY}/ml/fetch-weights:1`,
        `${REGISTRY}/ml/trainer:1`,
      ]),
    );
    await eventually(async () =>
      expect((await getPrePulledImage(client, NS, 'follow')).status?.ready).toBe('2/2'),
    );

    const rolled = deployment(NS, 'trainer', [`${REGISTRY}/ml/trainer:2`, `${REGISTRY}/ml/fetch-weights:1`], {
      imagePullSecrets: [{ name: 'trainer-pull' }],
      serviceAccountName: 'runner',
    });
    serverSideApply(cluster, rolled);
    await eventually(async () =>
      expect(imagesOf(await pullerDaemonSet('follow'))).toEqual([
        `${REGISTRY}/ml/fetch-weights:1`,
        `${REGISTRY}/ml/trainer:2`,
      ]),
    );
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'follow');
      expect(status?.ready).toBe('2/2');
      expect(status?.images?.map((i) => i.image)).toContain(`${REGISTRY}/ml/trainer:2`);
    });
    await eventually(async () =>
      expect((await getPrePulledImage(client, NS, 'all')).status?.ready).toBe('2/2'),
    );

    // Let the last writes land, then churn: scale, annotate, relabel the pods. No image changes.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const since = Date.now();
    for (let i = 0; i < 5; i++) {
      expect(
        kubectl(cluster, ['-n', NS, 'scale', 'deployment/trainer', `--replicas=${(i % 3) + 1}`]).status,
      ).toBe(0);
      expect(
        kubectl(cluster, ['-n', NS, 'annotate', 'statefulset/store', `churn=${i}`, '--overwrite']).status,
      ).toBe(0);
      expect(kubectl(cluster, ['-n', NS, 'label', 'pod/notebook', `churn=${i}`, '--overwrite']).status).toBe(
        0,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, since).filter((r) => r.verb !== 'watch');
    expect(requests).toEqual([]);
  });

  it("never reads a neighbour's workloads unless the neighbour grants it, and never its secrets", async () => {
    serverSideApply(
      cluster,
      warm('wide', {
        imagesFrom: { namespaceSelector: { matchLabels: { team: 'ml' } }, kinds: ['Deployment'] },
      }),
    );
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'wide');
      expect(status?.imagesFrom).toMatchObject({ namespaces: [NS], namespaceCount: 1, notGranted: 1 });
    });
    expect(imagesOf(await pullerDaemonSet('wide'))).not.toContain(`${REGISTRY}/neighbour/secret-model:1`);

    // A label the tenant could wish for does not help: only the grant annotation on the neighbour counts.
    expect(
      kubectl(cluster, ['annotate', 'namespace', NEIGHBOUR, `prepull.dev/images-readable-by=${NS}-x,other`])
        .status,
    ).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(imagesOf(await pullerDaemonSet('wide'))).not.toContain(`${REGISTRY}/neighbour/secret-model:1`);

    // The neighbour grants it: its image comes in, its pull secret does not (a pod names its own namespace's secrets only).
    expect(
      kubectl(cluster, [
        'annotate',
        'namespace',
        NEIGHBOUR,
        `prepull.dev/images-readable-by=other, ${NS}`,
        '--overwrite',
      ]).status,
    ).toBe(0);
    await eventually(async () =>
      expect(imagesOf(await pullerDaemonSet('wide'))).toContain(`${REGISTRY}/neighbour/secret-model:1`),
    );
    const granted = await pullerDaemonSet('wide');
    expect(secretsOf(granted)).not.toContain('neighbour-pull');
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'wide');
      expect(status?.imagesFrom?.namespaces).toEqual([NS, NEIGHBOUR]);
      expect(status?.imagesFrom?.notGranted).toBeUndefined();
    });

    // The grant withdrawn, the image leaves again.
    expect(
      kubectl(cluster, ['annotate', 'namespace', NEIGHBOUR, 'prepull.dev/images-readable-by-']).status,
    ).toBe(0);
    await eventually(async () =>
      expect(imagesOf(await pullerDaemonSet('wide'))).not.toContain(`${REGISTRY}/neighbour/secret-model:1`),
    );
    // An object in the neighbour's namespace reads only there: the first object's namespace granted nothing.
    expect(JSON.stringify(await getPrePulledImage(client, NS, 'all'))).not.toContain('secret-model');
  });

  it('refuses a bad selector or kind in the schema, and says so when there is nothing to pull', async () => {
    const bad = [
      { imagesFrom: { selector: { matchExpressions: [{ key: 'tier', operator: 'In' }] } } },
      {
        imagesFrom: {
          namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Matches', values: ['ml'] }] },
        },
      },
      { imagesFrom: { kinds: ['ReplicaSet'] } },
      { imagesFrom: { kinds: ['Pod', 'Pod'] } },
      {},
    ];
    for (const spec of bad) {
      const applied = kubectl(
        cluster,
        ['apply', '--server-side', '-f', '-'],
        JSON.stringify(warm('bad', spec)),
      );
      expect(applied.status, JSON.stringify(spec)).not.toBe(0);
    }
    const stderr = kubectl(
      cluster,
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify(warm('bad', bad[0]!)),
    ).stderr;
    expect(stderr).toContain('In and NotIn need values');

    serverSideApply(
      cluster,
      warm('nothing', { imagesFrom: { selector: { matchLabels: { tier: 'none' } } } }),
    );
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'nothing');
      expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
      expect(status?.conditions?.some((c) => c.reason === 'NoImages')).toBe(true);
    });
    expect(await pullerDaemonSet('nothing')).toBeUndefined();
  });
});
