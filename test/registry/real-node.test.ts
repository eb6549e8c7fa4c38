/**
 * Registry checks on the real node (kubelet, containerd, the harness's
 * password-protected registry): a tag pre-pulled with refresh.interval moves,
 * a check (asked for at once with the refresh annotation) finds the new digest, the node's stale puller pod is replaced and
 * pulls the tag again, containerd keeps the tag's name on the new content,
 * and a workload naming the tag with imagePullPolicy Never starts on it.
 * The pods name the resolved digest, and a container beside it pulls the tag.
 * An arm64-only manifest and an index without amd64 are PlatformMismatch on
 * the amd64 node, and the kubelet is never asked to pull them there.
 * A registry of the tier's own (password-protected, TLS), stopped after its
 * image was pre-pulled with refresh.interval: the next check (asked for at
 * once) is RegistryUnavailable, with back-off, while the node's pod, its Ready and
 * its image stay; started again, the condition clears.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { CoreEvent, DaemonSet, Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { findCondition } from '../../src/runtime/conditions.ts';
import { buildOciImage, holdBinary, OCI_MANIFEST } from '../harness/images.ts';
import { trustRegistry } from '../harness/node.ts';
import { pushBlob, pushManifest, type Registry, startRegistry } from '../harness/registry.ts';
import { auditedRequests } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState, requestRefresh } from '../support/prepulledimage.ts';
import { createRegistryPullSecret } from '../support/pull-secret.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const node = cluster.node!;
const NS = 'ppi-registry-real';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };

/** The digest containerd's k8s.io namespace holds under `ref`, if any. */
function ctrDigestOf(ref: string): string | undefined {
  const listed = execFileSync(
    node.ctr,
    ['--address', node.containerdSocket, '--namespace', 'k8s.io', 'images', 'ls'],
    { encoding: 'utf8' },
  );
  const line = listed.split('\n').find((l) => l.split(/\s+/)[0] === ref);
  return line?.split(/\s+/).find((field) => field.startsWith('sha256:'));
}

async function livePullerPodUids(uid: string): Promise<string[]> {
  const listed = await client.list<Pod>(Resources.pods, {
    namespace: NS,
    labelSelector: `prepull.dev/owner-uid=${uid}`,
  });
  return listed.items.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.uid ?? '');
}

describe('PrePulledImage registry checks on the real node', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createRegistryPullSecret(cluster, NS, 'registry');
    operator = startTestOperator(cluster, 'ppi-registry-real', {
      registryChecks: { tls: { caBundle: readFileSync(registry.caFile, 'utf8') } },
    });
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('a moved tag: the check finds it, the node pulls it again, and a Never pod naming the tag starts on the new content', async () => {
    const run = randomBytes(3).toString('hex');
    const repo = 'prepull-test/movable';
    const tag = `checked-real-${run}`;
    const ref = `${registry.host}/${repo}:${tag}`;
    const generation = (n: string) => `${run} ${n}\n`;
    const push = async (n: string) => {
      const image = buildOciImage({
        workDir: join(cluster.dir, 'registry-real-images'),
        files: [
          { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
          { path: 'generation', content: generation(n), mode: 0o644 },
        ],
        entrypoint: ['/hold'],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
      return pushManifest(registry, repo, tag, OCI_MANIFEST, image.manifest);
    };
    const podImages = async () => {
      const ds = await client.get<DaemonSet>(Resources.daemonSets, 'ppi-moving', NS);
      return ds?.spec.template.spec.containers.map((c) => c.image);
    };
    const first = await push('one');
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'moving', namespace: NS },
      spec: {
        ...onRealNode,
        images: [{ image: ref }],
        imagePullSecrets: [{ name: 'registry' }],
        refresh: { interval: '1m' },
      },
    });
    await eventually(async () => {
      const ppi = await getPrePulledImage(client, NS, 'moving');
      expect(ppi.status?.images?.[0]?.resolvedDigest).toBe(first);
      expect(nodeImageState(ppi, node.name, ref)).toMatchObject({ state: 'Ready', digest: first });
    }, 120_000);
    expect(ctrDigestOf(ref)).toBe(first);
    expect(await podImages()).toEqual([`${ref}@${first}`, ref]);
    const uid = (await getPrePulledImage(client, NS, 'moving')).metadata.uid ?? '';
    const podsBefore = await livePullerPodUids(uid);
    expect(podsBefore).toHaveLength(1);

    const moved = await push('two');
    expect(moved).not.toBe(first);
    // Found at once by a refresh asked for (the kwok tier waits out the interval instead).
    requestRefresh(cluster, NS, 'moving');
    await eventually(
      async () => {
        const ppi = await getPrePulledImage(client, NS, 'moving');
        expect(ppi.status?.images?.[0]?.resolvedDigest).toBe(moved);
        expect(nodeImageState(ppi, node.name, ref)).toMatchObject({ state: 'Ready', digest: moved });
        expect(ppi.status?.images?.[0]?.digests).toEqual([moved]);
        expect(ppi.status?.staleNodes).toBe(0);
        // The node's one pod was replaced once its successor ran (surge).
        const podsAfter = await livePullerPodUids(uid);
        expect(podsAfter).toHaveLength(1);
        expect(podsAfter).not.toEqual(podsBefore);
      },
      180_000,
      1_000,
    );
    // The tag's name now points at the new content: the tag container pulled it.
    expect(ctrDigestOf(ref)).toBe(moved);
    expect(await podImages()).toEqual([`${ref}@${moved}`, ref]);

    // A workload naming the tag, pull policy Never, with the credentials that pulled it (1.35+ tracking).
    const workload = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `workload-${run}`, namespace: NS },
      spec: {
        ...onRealNode,
        containers: [{ name: 'app', image: ref, imagePullPolicy: 'Never' }],
        imagePullSecrets: [{ name: 'registry' }],
        terminationGracePeriodSeconds: 1,
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(workload)).status).toBe(0);
    await eventually(async () => {
      const pod = await client.get<Pod>(Resources.pods, `workload-${run}`, NS);
      const status = pod?.status?.containerStatuses?.[0];
      expect(status?.state?.running).toBeDefined();
      expect(status?.imageID).toContain(moved);
    }, 120_000);
    const events = kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/moving']);
    expect(events.stdout).toContain('TagMoved');
    expect(events.stdout).toContain(`${first} to ${moved}`);
    kubectl(cluster, ['delete', 'pod', `workload-${run}`, '-n', NS, '--wait=false']);
  });

  it('an arm64-only manifest and an index without amd64 are PlatformMismatch on the amd64 node, never pulled there; the other image is', async () => {
    const images = [registry.images.hold, registry.images.arm64only, registry.images.noamd64index];
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'platforms', namespace: NS },
      spec: {
        ...onRealNode,
        images: images.map((i) => ({ image: i.ref })),
        imagePullSecrets: [{ name: 'registry' }],
      },
    });
    await eventually(async () => {
      const ppi = await getPrePulledImage(client, NS, 'platforms');
      expect(nodeImageState(ppi, node.name, registry.images.hold.ref)).toMatchObject({ state: 'Ready' });
      expect(nodeImageState(ppi, node.name, registry.images.arm64only.ref)).toMatchObject({
        state: 'Failed',
        reason: 'PlatformMismatch',
        message: 'the image offers linux/arm64; the node is linux/amd64',
      });
      expect(nodeImageState(ppi, node.name, registry.images.noamd64index.ref)).toMatchObject({
        state: 'Failed',
        reason: 'PlatformMismatch',
        message: 'the image offers linux/arm64, linux/s390x; the node is linux/amd64',
      });
    }, 120_000);
    // The node's one puller pod holds only the image its platform has.
    const uid = (await getPrePulledImage(client, NS, 'platforms')).metadata.uid ?? '';
    const pods = (
      await client.list<Pod>(Resources.pods, { namespace: NS, labelSelector: `prepull.dev/owner-uid=${uid}` })
    ).items.filter((p) => !p.metadata.deletionTimestamp);
    expect(pods.map((p) => p.spec.containers.map((c) => c.image))).toEqual([[registry.images.hold.ref]]);
    // The kubelet never tried the other two: none of its events about pods (pulling, pulled, failed) names them.
    const events = await client.list<CoreEvent>(Resources.coreEvents, { namespace: NS });
    const notes = events.items.filter((e) => e.involvedObject.kind === 'Pod').map((e) => e.message ?? '');
    for (const image of [registry.images.arm64only, registry.images.noamd64index]) {
      expect(notes.filter((n) => n.includes(image.ref))).toEqual([]);
    }
    expect(notes.some((n) => n.includes(registry.images.hold.ref))).toBe(true);
  });

  it('a registry stopped mid-refresh: the next check is RegistryUnavailable and backs off; the pod, the Ready node and the image stay; started again, the condition clears', async () => {
    const ca = { cert: registry.caFile, key: registry.caFile.replace(/\.crt$/, '.key') };
    const dir = join(cluster.dir, 'registry-stopped-real');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const port = cluster.sparePorts[2]!;
    let own: Registry | undefined = await startRegistry({ dir, port, ca });
    const { password } = own;
    const trusted = trustRegistry(join(cluster.dir, 'node', 'certs.d'), own);
    const repo = 'prepull-test/stoppable';
    const ref = `${own.host}/${repo}:v1`;
    const name = 'stoppable';
    const get = () => getPrePulledImage(client, NS, name);
    try {
      const image = buildOciImage({
        workDir: join(dir, 'images'),
        files: [{ path: 'hold', content: holdBinary('amd64'), mode: 0o755 }],
        entrypoint: ['/hold'],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(own, repo, blob);
      const digest = await pushManifest(own, repo, 'v1', OCI_MANIFEST, image.manifest);
      createRegistryPullSecret(cluster, NS, name, undefined, own);
      serverSideApply(cluster, {
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name, namespace: NS },
        spec: {
          ...onRealNode,
          images: [{ image: ref }],
          imagePullSecrets: [{ name }],
          refresh: { interval: '1m' },
        },
      });
      await eventually(async () => {
        const ppi = await get();
        expect(ppi.status?.images?.[0]?.resolvedDigest).toBe(digest);
        expect(nodeImageState(ppi, node.name, ref)).toMatchObject({ state: 'Ready', digest });
        expect(findCondition(ppi.status?.conditions, 'Ready')).toMatchObject({ status: 'True' });
      }, 120_000);
      const uid = (await get()).metadata.uid ?? '';
      const podsBefore = await livePullerPodUids(uid);
      expect(podsBefore).toHaveLength(1);
      const generation = (await client.get<DaemonSet>(Resources.daemonSets, `ppi-${name}`, NS))?.metadata
        .generation;

      await own.stop();
      own = undefined;
      const stoppedAt = Date.now();
      // The next check cannot reach the registry. Asked for now (the refresh annotation), rather
      // than waited for at the interval, a minute after the last.
      requestRefresh(cluster, NS, name, new Date(stoppedAt).toISOString());
      await eventually(
        async () => {
          const ppi = await get();
          expect(ppi.status?.images?.[0]?.registryCheck).toMatchObject({ reason: 'RegistryUnavailable' });
          const degraded = findCondition(ppi.status?.conditions, 'Degraded');
          expect(degraded).toMatchObject({ status: 'True', reason: 'RegistryUnavailable' });
          expect(degraded?.message).toContain(`registry check of ${ref} failed: `);
          expect(degraded?.message).toContain('ECONNREFUSED');
        },
        150_000,
        500,
      );
      const failedAt = Date.now();
      const expectUntouched = async () => {
        const ppi = await get();
        // The node holds the digest resolved last, so it stays Ready and is not stale.
        expect(findCondition(ppi.status?.conditions, 'Ready')).toMatchObject({ status: 'True' });
        expect(nodeImageState(ppi, node.name, ref)).toMatchObject({ state: 'Ready', digest });
        expect(ppi.status?.images?.[0]?.resolvedDigest).toBe(digest);
        expect(ppi.status?.staleNodes).toBe(0);
        expect(await livePullerPodUids(uid)).toEqual(podsBefore);
        const ds = await client.get<DaemonSet>(Resources.daemonSets, `ppi-${name}`, NS);
        expect(ds?.metadata.generation).toBe(generation);
        expect(ctrDigestOf(ref)).toBe(digest);
      };
      await expectUntouched();

      // Down a while longer: the checks back off (1 s, doubling, jittered down by at most half),
      // so the status is written once per check made, never once per pass.
      // 20 s: the old fault, a write every 2 s, makes 10 writes where the bound below allows 7.
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      await expectUntouched();
      const outageMs = Date.now() - failedAt;
      const statusWrites = auditedRequests(cluster.auditLog, USER_AGENT, failedAt).filter(
        (r) => r.verb === 'patch' && r.uri.includes(`/namespaces/${NS}/prepulledimages/${name}/status`),
      );
      // Check k after the first comes at least (2^k - 1) / 2 s later; two writes of slack.
      expect(statusWrites.length).toBeLessThanOrEqual(Math.log2((2 * outageMs) / 1000 + 1) + 2);

      own = await startRegistry({ dir, port, ca, password });
      await eventually(
        async () => {
          const ppi = await get();
          expect(ppi.status?.images?.[0]).not.toHaveProperty('registryCheck');
          expect(findCondition(ppi.status?.conditions, 'Degraded')).toMatchObject({ status: 'False' });
        },
        150_000,
        1_000,
      );
      await expectUntouched();
      // Nothing of the object was deleted or rolled by the operator meanwhile.
      const writes = auditedRequests(cluster.auditLog, USER_AGENT, stoppedAt).filter(
        (r) =>
          (r.verb === 'delete' && r.uri.includes(`/namespaces/${NS}/pods/ppi-${name}-`)) ||
          (r.verb === 'patch' && r.uri.includes(`/namespaces/${NS}/daemonsets/ppi-${name}`)),
      );
      expect(writes).toEqual([]);
    } finally {
      kubectl(cluster, ['delete', 'ppi', name, '-n', NS, '--wait=false']);
      await own?.stop();
      for (const d of trusted) rmSync(d, { recursive: true, force: true });
    }
  }, 600_000);
});
