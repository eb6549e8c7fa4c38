/**
 * The mirrors module's node side against the real node's containerd (2.x,
 * or 1.6 with PREPULL_TEST_RUNTIME=containerd16): it finds config_path by
 * reading containerd's own config (the harness's certs.d, not
 * /etc/containerd/certs.d), writes a hosts.toml that sends a host that does
 * not exist to the harness registry, and a pod pulling
 * `registry.example.invalid/<repo>:<tag>` runs, with no manifest rewritten
 * and no containerd restart. Removing it restores the node's files exactly
 * (the harness's own hosts.toml files among them) and the same pull fails
 * again.
 *
 * The module runs in the test process here, on the node's real files: the
 * agent pod that runs it in a cluster is proven by the agent's own tier.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMirrors, type SelectedMirror } from '../../src/agent/mirrors/apply.ts';
import { detectRuntime, type NodeRuntime } from '../../src/agent/mirrors/runtime.ts';
import { hostFiles } from '../../src/agent/node/files.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { mirroredImage, mirroredPods, snapshot, UPSTREAM } from './node.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const NAMESPACE = 'mirror-node-files';
const MIRRORED_IMAGE = mirroredImage(cluster);
const pods = mirroredPods(cluster, NAMESPACE);
/** containerd's config as the harness wrote it (test/harness/node.ts). */
const CONTAINERD_CONFIG = join(cluster.dir, 'node', 'containerd.toml');
const files = hostFiles('/');
const statePath = join(mkdtempSync(join(cluster.dir, 'mirror-state-')), 'mirrors.json');

const mirror: SelectedMirror = {
  name: 'example-invalid',
  uid: 'uid-example-invalid',
  generation: 1,
  creationTimestamp: '2026-01-01T00:00:00Z',
  spec: {
    host: UPSTREAM,
    upstream: 'Replaced',
    mirrors: [{ url: `https://${registry.host}`, caBundle: readFileSync(registry.caFile, 'utf8') }],
  },
};

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.skipIf(!cluster.node)(`the mirrors module on the real node (${cluster.node?.runtime})`, () => {
  let runtime: NodeRuntime;
  let before: Record<string, string>;

  beforeAll(async () => {
    pods.prepare();
    runtime = await detectRuntime(files, { configFile: CONTAINERD_CONFIG });
  });

  afterAll(async () => {
    await applyMirrors({ files, statePath, runtime, mirrors: [] });
    kubectl(cluster, ['delete', 'namespace', NAMESPACE, '--wait=false']);
  });

  it("finds config_path in containerd's own config: the harness's certs.d", () => {
    expect(runtime).toEqual({
      flavour: 'containerd',
      configFile: CONTAINERD_CONFIG,
      hosts: { ok: true, dir: join(cluster.dir, 'node', 'certs.d') },
    });
    before = snapshot(join(cluster.dir, 'node', 'certs.d'));
    // The harness's own hosts.toml for its registry: someone else's files, to survive.
    expect(Object.keys(before).some((p) => p.endsWith(`${registry.host}/hosts.toml`))).toBe(true);
  });

  it(`makes a pod pull ${UPSTREAM}/… from the mirror, with no containerd restart`, async () => {
    const report = await applyMirrors({ files, statePath, runtime, mirrors: [mirror] });
    expect(report.mirrors.map((m) => m.reason)).toEqual(['Applied']);
    pods.create('mirrored');
    await eventually(async () => expect((await pods.state('mirrored'))?.running).toBeDefined(), 120_000);
    const pod = await pods.get('mirrored');
    // The pod's image is the upstream name: nothing was rewritten.
    expect(pod?.spec?.containers?.[0]?.image).toBe(MIRRORED_IMAGE);
    expect(pod?.status?.containerStatuses?.[0]?.imageID).toContain(registry.images.hold.digest);
  });

  it("restores the node's files exactly, the harness's own among them, and the pull fails again", async () => {
    const report = await applyMirrors({ files, statePath, runtime, mirrors: [] });
    expect(report.mirrors).toEqual([]);
    expect(snapshot(join(cluster.dir, 'node', 'certs.d'))).toEqual(before);
    pods.create('unmirrored');
    await eventually(async () => {
      const reason = (await pods.state('unmirrored'))?.waiting?.reason;
      expect(['ErrImagePull', 'ImagePullBackOff']).toContain(reason);
    }, 120_000);
  });
});
