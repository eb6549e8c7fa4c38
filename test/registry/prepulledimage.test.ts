/**
 * PrePulledImage registry checks (--registry-checks) against the harness's
 * password-protected registry: each image's tag resolved to the digest the
 * registry serves, with the credentials of the object's pull secrets, its
 * platforms, the registry's refusals as condition reasons, and refresh by
 * HEAD: puller pods (on kwok nodes) roll when a tag moves, and only then.
 * The other objects select no node, so what their status shows comes from
 * the registry alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { findCondition } from '../../src/runtime/conditions.ts';
import { buildOciImage, OCI_MANIFEST } from '../harness/images.ts';
import { pushBlob, pushManifest } from '../harness/registry.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, deleteNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const NS = 'ppi-registry';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const wrongPassword = `${registry.password}-wrong`;
const nowhere = { nodeSelector: { 'prepull.dev/test-node': 'none' } };

function pullSecret(name: string, password: string): void {
  kubectl(cluster, ['delete', 'secret', name, '-n', NS, '--ignore-not-found']);
  const created = kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    name,
    '-n',
    NS,
    `--docker-server=${registry.host}`,
    `--docker-username=${registry.username}`,
    `--docker-password=${password}`,
  ]);
  expect(created.status, created.stderr).toBe(0);
}

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

/** UIDs of the puller pods of `name`, sorted. */
async function pullerPods(name: string): Promise<string[]> {
  const uid = (await get(name))?.metadata.uid ?? '';
  const listed = kubectl(cluster, [
    'get',
    'pods',
    '-n',
    NS,
    '-l',
    `prepull.dev/owner-uid=${uid}`,
    '-o',
    'json',
  ]);
  const pods = JSON.parse(listed.stdout) as {
    items: { metadata: { uid: string; deletionTimestamp?: string } }[];
  };
  return pods.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.uid)
    .sort();
}

describe('PrePulledImage registry checks', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    pullSecret('registry', registry.password);
    pullSecret('wrong-password', wrongPassword);
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
        { image: `${registry.host}/prepull-test/imported:v1`, tarball: { hostPath: '/nonexistent.tar' } },
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

  it('with refresh.interval, a check that finds nothing moved replaces no pod; a moved tag rolls them, by HEAD', async () => {
    const repo = 'prepull-test/movable';
    const tag = `checked-${randomBytes(3).toString('hex')}`;
    const push = async (generation: string) => {
      const image = buildOciImage({
        workDir: join(cluster.dir, 'registry-check-images'),
        files: [{ path: 'generation', content: `${tag} ${generation}\n`, mode: 0o644 }],
      });
      for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
      return pushManifest(registry, repo, tag, OCI_MANIFEST, image.manifest);
    };
    const nodes = createFakeNodes(cluster, 'registry-check', 0, 3, { 'prepull-test/pool': 'registry-check' });
    try {
      const first = await push('1');
      apply('refreshed', {
        imagePullSecrets: [{ name: 'registry' }],
        images: [{ image: `${registry.host}/${repo}:${tag}` }],
        refresh: { interval: '1m' },
        nodeSelector: { 'prepull-test/pool': 'registry-check' },
        tolerations: [KWOK_TOLERATION],
      });
      let firstCheck = '';
      await eventually(async () => {
        const ppi = await get('refreshed');
        expect(ppi?.status?.images?.[0]?.resolvedDigest).toBe(first);
        expect(ppi?.status?.ready).toBe('3/3');
        firstCheck = ppi?.status?.images?.[0]?.resolvedAt ?? '';
      });
      const podsBefore = await pullerPods('refreshed');
      expect(podsBefore).toHaveLength(3);

      // The next check, a minute on, finds the same digest: not one pod is replaced.
      await eventually(
        async () => expect((await get('refreshed'))?.status?.images?.[0]?.resolvedAt).not.toBe(firstCheck),
        120_000,
        1_000,
      );
      expect(await pullerPods('refreshed')).toEqual(podsBefore);

      const moved = await push('2');
      await eventually(
        async () => {
          const ppi = await get('refreshed');
          expect(ppi?.status?.images?.[0]?.resolvedDigest).toBe(moved);
          expect(ppi?.status?.ready).toBe('3/3');
          const now = await pullerPods('refreshed');
          expect(now).toHaveLength(3);
          for (const uid of now) expect(podsBefore).not.toContain(uid);
        },
        120_000,
        1_000,
      );
      const events = kubectl(cluster, [
        'get',
        'events',
        '-n',
        NS,
        '--field-selector',
        'reason=TagMoved',
        '-o',
        'json',
      ]);
      const notes = (JSON.parse(events.stdout) as { items: { message?: string; note?: string }[] }).items.map(
        (e) => e.note ?? e.message ?? '',
      );
      expect(notes.some((n) => n.includes(`${first} to ${moved}`))).toBe(true);
    } finally {
      deleteNodes(cluster, nodes);
    }
    // The registry's own log: the tag was only ever asked for by HEAD (the pushes are PUTs).
    const lines = readFileSync(join(cluster.dir, 'logs', 'registry.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes(`/v2/${repo}/manifests/${tag}`) && l.includes('http.request.method='));
    const methods = new Set(lines.map((l) => /http\.request\.method=(\w+)/.exec(l)?.[1]));
    expect(methods).toEqual(new Set(['HEAD', 'PUT']));
  });
});
