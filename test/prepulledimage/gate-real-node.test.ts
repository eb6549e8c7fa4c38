import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IMAGES_NOT_READY_TAINT, RELEASED_UNREADY_ANNOTATION } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Node, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { pushFreshImage } from '../support/fresh-image.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';
import { createRegistryPullSecret } from '../support/pull-secret.ts';
import { watchObjects } from '../support/watch.ts';

const cluster = inject('cluster');
const NS = 'gate-real';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const onRealNode = { 'prepull.dev/test-node': 'real' };

/** Registers the real node anew with these startup taints (none: as the harness started it). */
async function reregisterNode(taints: string[]): Promise<void> {
  const done = await fetch(`${cluster.controlUrl}/reregister/node`, {
    method: 'POST',
    body: taints.join('\n'),
  });
  expect(done.status, await done.text()).toBe(204);
}

const getNode = () => client.get<Node>(Resources.nodes, cluster.node?.name ?? 'localhost');
const tainted = (node: Node | undefined) =>
  node?.spec?.taints?.some((t) => t.key === IMAGES_NOT_READY_TAINT) ?? false;
const condition = (pod: Pod | undefined, type: string) =>
  pod?.status?.conditions?.find((c) => c.type === type) as
    | { status: string; message?: string; lastTransitionTime?: string }
    | undefined;

/** A private image of its own for this run: nothing on the node holds it yet. */
const pushGateImage = () => pushFreshImage(cluster, 'prepull-test/gate-model');

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.runIf(cluster.node !== undefined)('the node readiness gate on the real node', () => {
  let operator: TestOperator | undefined;

  beforeAll(() => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createRegistryPullSecret(cluster, NS, 'registry');
  });

  afterAll(async () => {
    await operator?.stop();
    kubectl(cluster, ['delete', 'namespace', NS, '--wait=false']);
    // The node as the harness made it: no startup taint, no release annotation, a kubelet without the flag.
    await reregisterNode([]);
    await eventually(async () => expect(tainted(await getNode())).toBe(false), 120_000);
  }, 300_000);

  it('holds the joining node until the Deployment’s private image is there; its Never pod then starts without ErrImageNeverPull', async () => {
    const image = await pushGateImage();
    await reregisterNode([`${IMAGES_NOT_READY_TAINT}:NoSchedule`]);
    expect(tainted(await getNode())).toBe(true);

    // Created while the node is held back: the scheduler keeps it off the node.
    serverSideApply(cluster, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'model', namespace: NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'model' } },
        template: {
          metadata: { labels: { app: 'model' } },
          spec: {
            nodeSelector: onRealNode,
            imagePullSecrets: [{ name: 'registry' }],
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'model', image, imagePullPolicy: 'Never' }],
          },
        },
      },
    });
    const pods = watchObjects<Pod>(client, 'gate-real-pods', { type: Resources.pods, namespace: NS });
    const neverPulled: string[] = [];
    const record = (pod: Pod) => {
      for (const s of pod.status?.containerStatuses ?? []) {
        const reason = s.state?.waiting?.reason;
        if (reason === 'ErrImageNeverPull')
          neverPulled.push(`${pod.metadata.name}: ${s.state?.waiting?.message}`);
      }
    };
    pods.addHandler({ add: record, update: (_, pod) => record(pod) });
    pods.start();
    const modelPod = () => pods.list().find((p) => p.metadata.labels?.app === 'model');
    // Once the node is Ready, the startup taint is the one thing that keeps the pod off it.
    await eventually(async () => {
      const node = await getNode();
      expect(node?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(node?.spec?.taints?.map((t) => t.key)).toEqual([IMAGES_NOT_READY_TAINT]);
      expect(condition(modelPod(), 'PodScheduled')).toMatchObject({ status: 'False' });
      expect(condition(modelPod(), 'PodScheduled')?.message).toContain('untolerated taint');
    }, 120_000);

    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'gate', namespace: NS },
      spec: {
        nodeSelector: onRealNode,
        imagesFrom: { kinds: ['Deployment'] },
        nodeReadiness: { taint: true, timeout: '10m' },
      },
    });
    // Started only now: with no gating object in place, the gate would release the node at once.
    operator = startTestOperator(cluster, 'gate-real');

    try {
      await eventually(() => {
        const pod = modelPod();
        expect(pod?.spec.nodeName).toBe(cluster.node?.name);
        expect(pod?.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
      }, 180_000);
      const node = await getNode();
      expect(tainted(node)).toBe(false);
      expect(node?.metadata.annotations?.[RELEASED_UNREADY_ANNOTATION]).toBeUndefined();
      // The puller held the image before the workload was let onto the node.
      const puller = pods
        .list()
        .find((p) => p.metadata.name?.startsWith('ppi-gate-') && p.spec.nodeName === node?.metadata.name);
      const pullerReady = condition(puller, 'Ready');
      expect(pullerReady?.status).toBe('True');
      const scheduled = condition(modelPod(), 'PodScheduled');
      expect(Date.parse(pullerReady?.lastTransitionTime as string)).toBeLessThanOrEqual(
        Date.parse(scheduled?.lastTransitionTime as string),
      );
      expect(neverPulled).toEqual([]);
      // Status follows the node's taint within a throttled write, not at the same instant.
      await eventually(async () => {
        const { status } = await getPrePulledImage(client, NS, 'gate');
        expect(status?.nodeReadiness?.heldBack).toBe(0);
        expect(status?.images?.[0]).toMatchObject({ image, sources: [`Deployment ${NS}/model`] });
      });
    } finally {
      await pods.stop();
    }
  }, 300_000);

  it("has a rolled Deployment's new image on the node before the Deployment's new pod starts", async () => {
    await eventually(async () =>
      expect(
        (await getPrePulledImage(client, NS, 'gate')).status?.conditions?.find((c) => c.type === 'Ready')
          ?.status,
      ).toBe('True'),
    );
    const next = await pushGateImage();
    const patched = kubectl(cluster, ['-n', NS, 'set', 'image', 'deployment/model', `model=${next}`]);
    expect(patched.status, patched.stderr).toBe(0);
    const listPods = async () => (await client.list<Pod>(Resources.pods, { namespace: NS })).items;
    let started: { puller: string; workload: string } | undefined;
    await eventually(async () => {
      const all = await listPods();
      const workload = all.find(
        (p) => p.metadata.labels?.app === 'model' && p.spec.containers[0]?.image === next,
      );
      const holder = all
        .filter((p) => p.metadata.name?.startsWith('ppi-gate-'))
        .flatMap((p) => p.status?.containerStatuses ?? [])
        .find((c) => c.image === next && c.state?.running?.startedAt);
      const workloadStarted = workload?.status?.containerStatuses?.[0]?.state?.running?.startedAt;
      expect(holder).toBeDefined();
      expect(workloadStarted).toBeDefined();
      started = { puller: holder?.state?.running?.startedAt ?? '', workload: workloadStarted ?? '' };
    }, 180_000);
    // The puller's container runs from the image: it was on the node by then.
    expect(Date.parse(started!.puller)).toBeLessThanOrEqual(Date.parse(started!.workload));
  }, 300_000);

  it('fails open on the real node: an image that cannot be pulled releases it, with a Warning Event', async () => {
    kubectl(cluster, ['-n', NS, 'delete', 'prepulledimage', 'gate', '--wait=true']);
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'broken', namespace: NS },
      spec: {
        nodeSelector: onRealNode,
        images: [{ image: `${cluster.registry!.host}/prepull-test/gate-model:no-such-tag` }],
        imagePullSecrets: [{ name: 'registry' }],
        nodeReadiness: { taint: true, timeout: '10m' },
      },
    });
    // In place before the node joins, so the gate holds it for this object.
    await eventually(async () =>
      expect((await getPrePulledImage(client, NS, 'broken')).status).toBeDefined(),
    );
    await reregisterNode([`${IMAGES_NOT_READY_TAINT}:NoSchedule`]);
    await eventually(async () => {
      const node = await getNode();
      expect(tainted(node)).toBe(false);
      expect(node?.metadata.annotations?.[RELEASED_UNREADY_ANNOTATION]).toBeDefined();
    }, 180_000);
    await eventually(async () => {
      const { status } = await getPrePulledImage(client, NS, 'broken');
      expect(status?.nodeReadiness?.releasedUnready).toContain(cluster.node?.name);
    });
    // The Event follows the status write: it may not be there yet.
    await eventually(() =>
      expect(kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/broken']).stdout).toContain(
        'ReleasedUnready',
      ),
    );
    expect(
      kubectl(cluster, ['events', '-n', 'default', '--for', `Node/${cluster.node?.name}`]).stdout,
    ).toContain('ReleasedUnready');
  }, 300_000);
});
