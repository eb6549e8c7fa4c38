/**
 * PrePulledImage on the real node: a kubelet with containerd pulling from the
 * password-protected registry. What the status says is checked against
 * containerd itself.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { DaemonSet, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { buildOciImage, holdBinary, OCI_MANIFEST } from '../harness/images.ts';
import { pushBlob, pushManifest } from '../harness/registry.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState } from '../support/prepulledimage.ts';
import { createRegistryPullSecret } from '../support/pull-secret.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const node = cluster.node!;
const NS = 'ppi-real';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };
const missingTag = `${registry.host}/prepull-test/hold:no-such-tag`;

function applyPpi(name: string, spec: Record<string, unknown>): void {
  const manifest = {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec,
  };
  const applied = kubectl(
    cluster,
    ['apply', '--server-side', '--field-manager=test', '-f', '-'],
    JSON.stringify(manifest),
  );
  expect(applied.status, applied.stderr).toBe(0);
}

const getPpi = (name: string) => getPrePulledImage(client, NS, name);
const nodeImage = (ppi: PrePulledImage, image: string) => nodeImageState(ppi, node.name, image);

function ctrImages(): string {
  return execFileSync(
    node.ctr,
    ['--address', node.containerdSocket, '--namespace', 'k8s.io', 'images', 'ls'],
    {
      encoding: 'utf8',
    },
  );
}

describe('PrePulledImage on the real node', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createRegistryPullSecret(cluster, NS, 'registry');
    createRegistryPullSecret(cluster, NS, 'wrong-password', `${registry.password}-wrong`);
    operator = startTestOperator(cluster, 'ppi-real');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  // refresh.interval: the object is made first and its tag moved at once; the
  // next round begins a minute after creation, while the other tests run.
  const refresh = { ref: '', first: '', moved: '', readySince: '' as string | undefined, generation: 0 };

  it('with refresh.interval, pulls a tag with Always and reports its digest', async () => {
    const workDir = join(cluster.dir, 'refresh-images');
    const run = randomBytes(3).toString('hex');
    const repo = 'prepull-test/movable';
    const tag = `refresh-${run}`;
    refresh.ref = `${registry.host}/${repo}:${tag}`;
    // A tag of its own, so the tests sharing `movable:v1` never see it move.
    const pushGeneration = async (generation: string) => {
      const image = buildOciImage({
        workDir,
        files: [
          { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
          { path: 'generation', content: `${run} ${generation}\n`, mode: 0o644 },
        ],
        entrypoint: ['/hold'],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
      return pushManifest(registry, repo, tag, OCI_MANIFEST, image.manifest);
    };
    refresh.first = await pushGeneration('one');
    applyPpi('refresh', {
      ...onRealNode,
      images: [{ image: refresh.ref }],
      imagePullSecrets: [{ name: 'registry' }],
      refresh: { interval: '1m' },
    });
    await eventually(async () => {
      expect(nodeImage(await getPpi('refresh'), refresh.ref)).toMatchObject({
        state: 'Ready',
        digest: refresh.first,
      });
    }, 120_000);
    const ds = await client.get<DaemonSet>(Resources.daemonSets, 'ppi-refresh', NS);
    expect(ds?.spec.template.spec.containers[0]?.imagePullPolicy).toBe('Always');
    const before = await getPpi('refresh');
    refresh.readySince = before.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime;
    refresh.generation = before.metadata.generation ?? 0;
    refresh.moved = await pushGeneration('two');
    expect(refresh.moved).not.toBe(refresh.first);
  });

  it('puts a private, a FROM scratch, a multi-layer and a shell image on the node, with the registry digests', async () => {
    const images = [
      registry.images.hold,
      registry.images.scratch,
      registry.images.multilayer,
      registry.images.shell,
    ];
    applyPpi('private', {
      ...onRealNode,
      images: images.map((i) => ({ image: i.ref })),
      imagePullSecrets: [{ name: 'registry' }],
    });
    let ppi: PrePulledImage | undefined;
    await eventually(async () => {
      ppi = await getPpi('private');
      expect(ppi.status?.ready).toBe('1/1');
      expect(ppi.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }, 180_000);
    for (const [i, image] of images.entries()) {
      expect(ppi!.status?.images?.[i]).toMatchObject({
        image: image.ref,
        digests: [image.digest],
        readyNodes: 1,
      });
      expect(nodeImage(ppi!, image.ref)).toMatchObject({ state: 'Ready', digest: image.digest });
    }
    // containerd itself holds every one of them.
    const listed = ctrImages();
    for (const image of images) expect(listed).toContain(image.ref);
  });

  it('lets a workload start from the pre-pulled private image with pull policy Never when it presents the same credentials', async () => {
    const pod = (name: string, secret?: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: {
        ...onRealNode,
        containers: [{ name: 'app', image: registry.images.hold.ref, imagePullPolicy: 'Never' }],
        ...(secret ? { imagePullSecrets: [{ name: secret }] } : {}),
        terminationGracePeriodSeconds: 1,
      },
    });
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod('workload', 'registry'))).status).toBe(
      0,
    );
    // Kubernetes 1.35+ credential tracking: without the credentials that pulled it, the image counts as absent.
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod('no-credentials'))).status).toBe(0);
    await eventually(async () => {
      const running = await client.get<Pod>(Resources.pods, 'workload', NS);
      expect(running?.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
      const refused = await client.get<Pod>(Resources.pods, 'no-credentials', NS);
      expect(refused?.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('ErrImageNeverPull');
    }, 120_000);
  });

  it('reports a wrong password as Unauthorized', async () => {
    applyPpi('unauthorized', {
      ...onRealNode,
      images: [{ image: registry.images.movable.ref }],
      imagePullSecrets: [{ name: 'wrong-password' }],
      pullPolicy: 'Always',
    });
    await eventually(async () => {
      const ppi = await getPpi('unauthorized');
      expect(nodeImage(ppi, registry.images.movable.ref)).toMatchObject({
        state: 'Failed',
        reason: 'Unauthorized',
      });
      expect(ppi.status?.failedNodes).toBe(1);
      expect(ppi.status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
        status: 'True',
        reason: 'NodesFailing',
      });
    }, 120_000);
    // The message the user sees never carries the password.
    const yaml = kubectl(cluster, ['get', 'ppi', 'unauthorized', '-n', NS, '-o', 'yaml']).stdout;
    expect(yaml).not.toContain(registry.password);
  });

  it('reports a missing tag as NotFound and an index without amd64 as PlatformMismatch, while the good image is Ready', async () => {
    applyPpi('mixed', {
      ...onRealNode,
      images: [
        { image: registry.images.hold.ref },
        { image: missingTag },
        { image: registry.images.noamd64index.ref },
      ],
      imagePullSecrets: [{ name: 'registry' }],
    });
    await eventually(async () => {
      const ppi = await getPpi('mixed');
      expect(nodeImage(ppi, registry.images.hold.ref)).toMatchObject({
        state: 'Ready',
        digest: registry.images.hold.digest,
      });
      expect(nodeImage(ppi, missingTag)).toMatchObject({ state: 'Failed', reason: 'NotFound' });
      expect(nodeImage(ppi, registry.images.noamd64index.ref)).toMatchObject({
        state: 'Failed',
        reason: 'PlatformMismatch',
      });
      expect(ppi.status?.images?.[0]?.readyNodes).toBe(1);
    }, 180_000);
    // The Event follows the status write that made the transition: it may land a moment later.
    await eventually(() => {
      const events = kubectl(cluster, [
        'events',
        '-n',
        NS,
        '--for',
        'PrePulledImage/mixed',
        '--types',
        'Warning',
      ]);
      expect(events.stdout).toContain('NodesFailing');
    }, 30_000);
  });

  it('reports a single-platform image of another architecture with the digest the registry serves, never another', async () => {
    // The kubelet pulls a lone arm64 manifest onto this amd64 node without complaint, and the
    // hold binary (not the image's own) runs, so the node holds exactly that manifest. Telling
    // that it cannot run here needs the registry's image config: documented, not guessed.
    applyPpi('other-arch', {
      ...onRealNode,
      images: [{ image: registry.images.arm64only.ref }],
      imagePullSecrets: [{ name: 'registry' }],
    });
    await eventually(async () => {
      const ppi = await getPpi('other-arch');
      expect(nodeImage(ppi, registry.images.arm64only.ref)).toMatchObject({
        state: 'Ready',
        digest: registry.images.arm64only.digest,
      });
      expect(ppi.status?.images?.[0]?.digests).toEqual([registry.images.arm64only.digest]);
    }, 120_000);
    expect(ctrImages()).toContain(registry.images.arm64only.digest);
  });

  it('does not hot-loop on failures, and other objects keep converging', async () => {
    const before = await operator.reconcileCounts();
    applyPpi('converges', {
      ...onRealNode,
      images: [{ image: registry.images.scratch.ref }],
      imagePullSecrets: [{ name: 'registry' }],
    });
    await eventually(async () => expect((await getPpi('converges')).status?.ready).toBe('1/1'), 120_000);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const after = await operator.reconcileCounts();
    // Failing pulls are the kubelet's to retry; the controller only follows pod updates.
    expect(after.errors - before.errors).toBe(0);
    expect(after.total - before.total).toBeLessThan(60);
  });

  it('with refresh.interval, pulls the moved tag again at the next round and reports the new digest, with no spec change', async () => {
    const { ref, moved } = refresh;
    await eventually(async () => {
      const ppi = await getPpi('refresh');
      expect(nodeImage(ppi, ref)).toMatchObject({ state: 'Ready', digest: moved });
      expect(ppi.status?.images?.[0]?.digests).toEqual([moved]);
    }, 180_000);
    const after = await getPpi('refresh');
    expect(after.metadata.generation).toBe(refresh.generation);
    // The replacement pod started beside the old one (surge), which held the image meanwhile:
    // Ready never dropped.
    expect(after.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      lastTransitionTime: refresh.readySince,
    });
    expect(ctrImages()).toContain(moved);
    const events = kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/refresh']);
    expect(events.stdout).toContain('Refreshing');
  });
});
