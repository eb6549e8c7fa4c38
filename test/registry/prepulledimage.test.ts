/**
 * PrePulledImage registry checks (--registry-checks) against the harness's
 * password-protected registry: each image's tag resolved to the digest the
 * registry serves, with the credentials of the object's pull secrets, its
 * platforms, the registry's refusals as condition reasons, and refresh by
 * HEAD: on the shared pool of kwok nodes, the pods name the resolved digest, a check that
 * finds nothing moved replaces no puller pod, and a moved tag rolls every pod
 * once, maxConcurrentPulls at a time, without a node ever losing its pod or
 * the object its Ready (kwok reports no image ID, so the test writes it as a
 * kubelet would). Another tenant without credentials gets nothing of the
 * first one's answers.
 * The other objects select no node, so what their status shows comes from
 * the registry alone.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type PrePulledImage, REFRESH_REQUESTED_ANNOTATION } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { DaemonSet, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { findCondition } from '../../src/runtime/conditions.ts';
import { buildOciImage, OCI_MANIFEST } from '../harness/images.ts';
import { pushBlob, pushManifest } from '../harness/registry.ts';
import { auditedRequests } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import {
  createFakeNodes,
  deleteNodes,
  KWOK_TOLERATION,
  SHARED_POOL_LABEL,
  SHARED_POOL_SIZE,
  sharedKwokPool,
} from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, requestRefresh } from '../support/prepulledimage.ts';
import { createRegistryPullSecret } from '../support/pull-secret.ts';
import { applyQuota } from '../support/quota.ts';
import { watchObjects } from '../support/watch.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const NS = 'ppi-registry';
const OTHER_NS = 'ppi-registry-other';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const wrongPassword = `${registry.password}-wrong`;
const nowhere = { nodeSelector: { 'prepull.dev/test-node': 'none' } };

function apply(name: string, spec: Record<string, unknown>): void {
  serverSideApply(cluster, {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec: { ...nowhere, ...spec },
  });
}

const get = (name: string) => getPrePulledImage(client, NS, name);
const degraded = (ppi: PrePulledImage | undefined) => findCondition(ppi?.status?.conditions, 'Degraded');

/** The live puller pods of `name`, sorted by UID. */
async function pullerPods(name: string): Promise<{ uid: string; name: string }[]> {
  const uid = (await get(name))?.metadata.uid ?? '';
  const listed = await client.list<Pod>(Resources.pods, {
    namespace: NS,
    labelSelector: `prepull.dev/owner-uid=${uid}`,
  });
  return listed.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({ uid: p.metadata.uid ?? '', name: p.metadata.name ?? '' }))
    .sort((a, b) => (a.uid < b.uid ? -1 : 1));
}

/**
 * Writes `imageID` into the puller pods' status, as a kubelet reports the
 * digest it pulled; kwok reports none and leaves a running pod's status alone.
 */
async function reportHeldDigest(pods: { name: string }[], imageID: string): Promise<void> {
  const patch = [{ op: 'add', path: '/status/containerStatuses/0/imageID', value: imageID }];
  for (let i = 0; i < pods.length; i += 20) {
    await Promise.all(
      pods
        .slice(i, i + 20)
        .map((p) => client.patch(Resources.pods, p.name, NS, patch, 'json', { subresource: 'status' })),
    );
  }
}

/** kwok nodes the refresh test runs on (the shared pool), and the object's maxConcurrentPulls. */
const NODES = SHARED_POOL_SIZE;
const WAVE = 6;

describe('PrePulledImage registry checks', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createRegistryPullSecret(cluster, NS, 'registry');
    createRegistryPullSecret(cluster, NS, 'wrong-password', wrongPassword);
    operator = startTestOperator(cluster, 'ppi-registry', {
      registryChecks: { tls: { caBundle: readFileSync(registry.caFile, 'utf8') } },
    });
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('shows the digest the registry serves for each tag, and the platforms behind it', async () => {
    apply('resolved', {
      imagePullSecrets: [{ name: 'registry' }],
      images: [
        { image: registry.images.hold.ref },
        { image: registry.images.noamd64index.ref, name: 'index' },
        { image: registry.images.arm64only.ref },
        // What the default import policy allows this namespace (src/image/import-policy.ts).
        {
          image: `prepull.local/${NS}/imported:v1`,
          tarball: { hostPath: `/var/lib/prepull/archives/${NS}/imported.tar` },
        },
      ],
    });
    await eventually(async () => {
      const images = (await get('resolved'))?.status?.images ?? [];
      expect(images[0]).toMatchObject({
        resolvedDigest: registry.images.hold.digest,
        platforms: ['linux/amd64'],
      });
      expect(images[1]).toMatchObject({
        resolvedDigest: registry.images.noamd64index.digest,
        platforms: ['linux/arm64', 'linux/s390x'],
      });
      expect(images[2]).toMatchObject({
        resolvedDigest: registry.images.arm64only.digest,
        platforms: ['linux/arm64'],
      });
      // A tarball is imported, never pulled: the registry is not asked about it.
      expect(images[3]).not.toHaveProperty('resolvedAt');
    });
    expect(degraded(await get('resolved'))).toMatchObject({ status: 'False' });
  });

  it('a missing tag is NotFound, with the registry message, as the Degraded reason', async () => {
    apply('missing', {
      imagePullSecrets: [{ name: 'registry' }],
      images: [{ image: `${registry.host}/prepull-test/hold:no-such-tag` }],
    });
    await eventually(async () => {
      const ppi = await get('missing');
      expect(ppi?.status?.images?.[0]?.registryCheck).toMatchObject({ reason: 'NotFound' });
      expect(degraded(ppi)).toMatchObject({ status: 'True', reason: 'NotFound' });
      expect(degraded(ppi)?.message).toContain('MANIFEST_UNKNOWN');
    });
  });

  it('a wrong password is Unauthorized, and the password is nowhere in status or the log', async () => {
    apply('wrong-password', {
      imagePullSecrets: [{ name: 'wrong-password' }],
      images: [{ image: registry.images.hold.ref }],
    });
    await eventually(async () => {
      const ppi = await get('wrong-password');
      expect(ppi?.status?.images?.[0]?.registryCheck).toMatchObject({ reason: 'Unauthorized' });
      expect(degraded(ppi)).toMatchObject({ status: 'True', reason: 'Unauthorized' });
    });
    const ppi = await get('wrong-password');
    expect(JSON.stringify(ppi?.status)).not.toContain(wrongPassword);
    expect(operator.logLines().join('\n')).not.toContain(wrongPassword);
  });

  it("another tenant naming the same private image without credentials is Unauthorized: no answer made with the first tenant's credentials reaches it, and its pods are not pinned", async () => {
    // 'resolved' (above) resolved this image with the registry password, in NS.
    kubectl(cluster, ['create', 'namespace', OTHER_NS]);
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'no-credentials', namespace: OTHER_NS },
      spec: { ...nowhere, images: [{ image: registry.images.hold.ref }], refresh: { interval: '1m' } },
    });
    await eventually(async () => {
      const ppi = await getPrePulledImage(client, OTHER_NS, 'no-credentials');
      expect(ppi?.status?.images?.[0]?.registryCheck).toMatchObject({ reason: 'Unauthorized' });
      expect(ppi?.status?.images?.[0]).not.toHaveProperty('resolvedDigest');
    });
    const ds = await client.get<DaemonSet>(Resources.daemonSets, 'ppi-no-credentials', OTHER_NS);
    expect(ds?.spec.template.spec.containers.map((c) => [c.name, c.image])).toEqual([
      ['image-0', registry.images.hold.ref],
    ]);
    kubectl(cluster, ['delete', 'namespace', OTHER_NS, '--wait=false']);
  });

  it('a refresh asked for by annotation checks every tag at once, the interval notwithstanding; each value once', async () => {
    const repo = 'prepull-test/asked';
    const tag = `asked-${randomBytes(3).toString('hex')}`;
    const ref = `${registry.host}/${repo}:${tag}`;
    const push = async (generation: string) => {
      const image = buildOciImage({
        workDir: join(cluster.dir, 'registry-asked-images'),
        files: [{ path: 'generation', content: `${tag} ${generation}\n`, mode: 0o644 }],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
      return pushManifest(registry, repo, tag, OCI_MANIFEST, image.manifest);
    };
    const heads = () =>
      readFileSync(join(cluster.dir, 'logs', 'registry.log'), 'utf8')
        .split('\n')
        .filter(
          (l) =>
            l.includes(`/v2/${repo}/manifests/${tag}`) &&
            l.includes('http.request.method=HEAD') &&
            l.includes('msg="response completed"'),
        ).length;
    const annotate = (value: string) => requestRefresh(cluster, NS, 'asked', value);
    const first = await push('1');
    // Checked hourly at most: nothing but a request brings another check within this test.
    apply('asked', {
      imagePullSecrets: [{ name: 'registry' }],
      images: [{ image: ref }],
      refresh: { interval: '1h' },
    });
    try {
      await eventually(async () =>
        expect((await get('asked'))?.status?.images?.[0]?.resolvedDigest).toBe(first),
      );
      const moved = await push('2');
      annotate('2026-12-02T08:00:00Z');
      await eventually(async () => {
        const ppi = await get('asked');
        expect(ppi?.status?.images?.[0]?.resolvedDigest).toBe(moved);
        expect(ppi?.status?.lastHandledRefreshAt).toBe('2026-12-02T08:00:00Z');
      });
      const events = kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/asked']).stdout;
      expect(events).toContain('TagMoved');
      expect(events).toContain('refresh asked for: every tag was asked about at its registry');
      // The same value again, and an unrelated edit: handled already, no request.
      const asked = heads();
      annotate('2026-12-02T08:00:00Z');
      expect(kubectl(cluster, ['label', 'ppi', 'asked', '-n', NS, 'touched=yes']).status).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(heads()).toBe(asked);
      // A new value, by the kubectl plugin, which waits until it is handled: one more HEAD.
      const plugin = join(import.meta.dirname, '..', '..', 'bin', 'kubectl-prepull');
      // Not spawnSync: the test operator runs in this process, and must go on while the plugin waits.
      const refreshed = await promisify(execFile)(
        join(cluster.binDir, 'kubectl'),
        ['prepull', 'refresh', 'asked', '-n', NS, '--wait', '--timeout', '60'],
        {
          encoding: 'utf8',
          env: {
            ...process.env,
            KUBECONFIG: cluster.kubeconfig,
            PATH: `${join(plugin, '..')}:${process.env.PATH}`,
          },
          timeout: 120_000,
        },
      );
      expect(refreshed.stderr).toBe('');
      expect(refreshed.stdout).toContain('prepulledimage.prepull.dev/asked refreshed');
      const value = (await get('asked'))?.metadata.annotations?.[REFRESH_REQUESTED_ANNOTATION];
      expect(value).not.toBe('2026-12-02T08:00:00Z');
      expect((await get('asked'))?.status?.lastHandledRefreshAt).toBe(value);
      expect(heads()).toBe(asked + 1);
    } finally {
      kubectl(cluster, ['delete', 'ppi', 'asked', '-n', NS, '--wait=false']);
    }
  });

  it("pods of an architecture DaemonSet that a ResourceQuota refuses are PodsRefused, in the API server's words", async () => {
    // On arm64 nodes the amd64-only image is PlatformMismatch: their pods come from an
    // architecture DaemonSet (ppa-*) with the index alone, and the object's own has no node.
    const ns = 'ppi-registry-refused';
    kubectl(cluster, ['create', 'namespace', ns]);
    createRegistryPullSecret(cluster, ns, 'registry');
    await applyQuota(cluster, ns, 'no-pods', { pods: '0' });
    const arm = createFakeNodes(cluster, 'registry-arm', 0, 2, {
      'prepull-test/pool': 'registry-arm',
      'kubernetes.io/arch': 'arm64',
    });
    try {
      serverSideApply(cluster, {
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name: 'arm', namespace: ns },
        spec: {
          images: [{ image: registry.images.hold.ref }, { image: registry.images.noamd64index.ref }],
          imagePullSecrets: [{ name: 'registry' }],
          nodeSelector: { 'prepull-test/pool': 'registry-arm' },
          tolerations: [KWOK_TOLERATION],
        },
      });
      await eventually(async () => {
        const ppi = await getPrePulledImage(client, ns, 'arm');
        expect(degraded(ppi)).toMatchObject({ status: 'True', reason: 'PodsRefused' });
        expect(degraded(ppi)?.message).toContain('exceeded quota');
        expect(ppi.status?.ready).toBe('0/2');
      }, 120_000);
      const sets = await client.list<DaemonSet>(Resources.daemonSets, { namespace: ns });
      expect(sets.items.map((ds) => ds.metadata.name?.slice(0, 4)).sort()).toEqual(['ppa-', 'ppi-']);

      // Once pods may be created, the refusal is history: the nodes fail on the image they lack.
      expect(kubectl(cluster, ['delete', 'resourcequota', 'no-pods', '-n', ns]).status).toBe(0);
      await eventually(async () => {
        const ppi = await getPrePulledImage(client, ns, 'arm');
        expect(degraded(ppi)).toMatchObject({ status: 'True', reason: 'NodesFailing' });
        expect(degraded(ppi)?.message).toContain('PlatformMismatch');
        expect(ppi.status?.failedNodes).toBe(2);
      }, 120_000);
    } finally {
      deleteNodes(cluster, arm);
      kubectl(cluster, ['delete', 'namespace', ns, '--wait=false']);
    }
  });

  it('with refresh.interval, pods name the resolved digest; a check that finds nothing moved replaces no pod; a moved tag rolls every pod once, surging in waves of maxConcurrentPulls, no node without its pod and the object Ready throughout, by HEAD', async () => {
    const repo = 'prepull-test/movable';
    const tag = `checked-${randomBytes(3).toString('hex')}`;
    const ref = `${registry.host}/${repo}:${tag}`;
    const push = async (generation: string) => {
      const image = buildOciImage({
        workDir: join(cluster.dir, 'registry-check-images'),
        files: [{ path: 'generation', content: `${tag} ${generation}\n`, mode: 0o644 }],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
      return pushManifest(registry, repo, tag, OCI_MANIFEST, image.manifest);
    };
    sharedKwokPool(cluster);
    const pods = watchObjects<Pod>(client, 'registry-check-pods', {
      type: Resources.pods,
      namespace: NS,
      labelSelector: 'app.kubernetes.io/name=prepull-puller',
    });
    const objects = watchObjects<PrePulledImage>(client, 'registry-check-objects', {
      type: Resources.prePulledImages,
      namespace: NS,
    });
    try {
      const first = await push('1');
      apply('refreshed', {
        imagePullSecrets: [{ name: 'registry' }],
        images: [{ image: ref }],
        refresh: { interval: '1m' },
        maxConcurrentPulls: WAVE,
        nodeSelector: { [SHARED_POOL_LABEL]: 'shared' },
        tolerations: [KWOK_TOLERATION],
      });
      let lastCheck = '';
      await eventually(
        async () => {
          const ppi = await get('refreshed');
          expect(ppi?.status?.images?.[0]?.resolvedDigest).toBe(first);
          expect(ppi?.status?.ready).toBe(`${NODES}/${NODES}`);
          lastCheck = ppi?.status?.images?.[0]?.resolvedAt ?? '';
        },
        600_000,
        1_000,
      );
      const pinnedTo = async () =>
        (
          await client.get<DaemonSet>(Resources.daemonSets, 'ppi-refreshed', NS)
        )?.spec.template.spec.containers.map((c) => [c.name, c.image, c.imagePullPolicy]);
      expect(await pinnedTo()).toEqual([
        ['image-0', `${ref}@${first}`, 'IfNotPresent'],
        ['tag-0', ref, 'Always'],
      ]);
      const uid = (await get('refreshed'))?.metadata.uid ?? '';
      // kwok reports no image ID: say, as a kubelet would, that every node holds the first digest.
      await reportHeldDigest(await pullerPods('refreshed'), `${registry.host}/${repo}@${first}`);

      // Watch the pods from here on: nodes without a running pod, and new pods not yet running, at every event.
      let maxWithoutPod = 0;
      let maxNotRunning = 0;
      let deletions = 0;
      const created = new Set<string>();
      // From the synced list on: while the first list arrives, pods seem to be missing.
      let synced = false;
      const check = () => {
        if (!synced) return;
        const mine = pods
          .list()
          .filter(
            (p) => p.metadata.labels?.['prepull.dev/owner-uid'] === uid && !p.metadata.deletionTimestamp,
          );
        const holding = new Set(
          mine.filter((p) => p.status?.phase === 'Running').map((p) => p.spec.nodeName),
        );
        maxWithoutPod = Math.max(maxWithoutPod, NODES - holding.size);
        maxNotRunning = Math.max(maxNotRunning, mine.filter((p) => p.status?.phase !== 'Running').length);
      };
      pods.addHandler({
        add: (p) => {
          if (synced) created.add(p.metadata.uid ?? '');
          check();
        },
        update: check,
        delete: () => {
          if (synced) deletions++;
          check();
        },
      });
      // The object's Ready condition, at every status write from here on.
      const readyFalse: string[] = [];
      objects.addHandler({
        update: (o) => {
          const ready = findCondition(o.status?.conditions, 'Ready');
          if (o.metadata.name === 'refreshed' && ready?.status !== 'True')
            readyFalse.push(`${ready?.reason}: ${ready?.message}`);
        },
      });
      pods.start();
      objects.start();
      await Promise.all([pods.waitForSync(), objects.waitForSync()]);
      synced = true;
      check();
      const podsBefore = (await pullerPods('refreshed')).map((p) => p.uid);

      // The next check, a minute on, finds the same digest: not one pod is replaced.
      await eventually(
        async () => {
          const ppi = await get('refreshed');
          expect(ppi?.status?.images?.[0]?.resolvedAt).not.toBe(lastCheck);
          expect(ppi?.status?.staleNodes).toBe(0);
        },
        120_000,
        1_000,
      );
      expect((await pullerPods('refreshed')).map((p) => p.uid)).toEqual(podsBefore);
      expect(deletions).toBe(0);
      expect(created.size).toBe(0);
      expect(maxWithoutPod).toBe(0);

      const movedAt = Date.now();
      const moved = await push('2');
      await eventually(
        async () => {
          const ppi = await get('refreshed');
          expect(ppi?.status?.images?.[0]?.resolvedDigest).toBe(moved);
          expect(ppi?.status?.ready).toBe(`${NODES}/${NODES}`);
          const now = (await pullerPods('refreshed')).map((p) => p.uid);
          expect(now).toHaveLength(NODES);
          expect(now.filter((u) => podsBefore.includes(u))).toEqual([]);
        },
        420_000,
        1_000,
      );
      expect(await pinnedTo()).toEqual([
        ['image-0', `${ref}@${moved}`, 'IfNotPresent'],
        ['tag-0', ref, 'Always'],
      ]);
      // Once: each old pod deleted once, one new pod per node, and none by the operator: the
      // DaemonSet's surge replaces them, the old pod going once the new one runs.
      expect(deletions).toBe(NODES);
      expect(created.size).toBe(NODES);
      const operatorDeletes = auditedRequests(cluster.auditLog, USER_AGENT, movedAt).filter(
        (r) => r.verb === 'delete' && r.uri.includes(`/namespaces/${NS}/pods/`),
      );
      expect(operatorDeletes).toEqual([]);
      expect(maxNotRunning).toBeGreaterThan(0);
      expect(maxNotRunning).toBeLessThanOrEqual(WAVE);
      // The DaemonSet controller drops an old pod it finds unavailable without waiting for its
      // successor (a kwok node late with its heartbeat on a loaded machine has its pods marked
      // unready). Short of that, no node is ever without its running pod, and the object never
      // leaves Ready.
      expect(maxWithoutPod).toBeLessThanOrEqual(WAVE);
      if (maxWithoutPod === 0) expect(readyFalse).toEqual([]);
      const events = kubectl(cluster, ['get', 'events', '-n', NS, '-o', 'json']);
      const notes = (
        JSON.parse(events.stdout) as { items: { reason?: string; message?: string; note?: string }[] }
      ).items.map((e) => `${e.reason} ${e.note ?? e.message ?? ''}`);
      expect(notes.some((n) => n.includes(`TagMoved`) && n.includes(`${first} to ${moved}`))).toBe(true);
    } finally {
      await pods.stop();
      await objects.stop();
      kubectl(cluster, ['delete', 'ppi', 'refreshed', '-n', NS, '--wait=false']);
    }
    // The registry's own log: the tag was only ever asked for by HEAD (the pushes are PUTs).
    const lines = readFileSync(join(cluster.dir, 'logs', 'registry.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(`/v2/${repo}/manifests/${tag}`) && l.includes('http.request.method='));
    const methods = new Set(lines.map((l) => /http\.request\.method=(\w+)/.exec(l)?.[1]));
    expect(methods).toEqual(new Set(['HEAD', 'PUT']));
  }, 1_500_000);
});
