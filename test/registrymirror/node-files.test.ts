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
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMirrors, type SelectedMirror } from '../../src/agent/mirrors/apply.ts';
import { hostFiles } from '../../src/agent/mirrors/files.ts';
import { detectRuntime, type NodeRuntime } from '../../src/agent/mirrors/runtime.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAMESPACE = 'mirror-node-files';
const UPSTREAM = 'registry.example.invalid';
/** The harness's hold image, by the name of a registry that does not exist. */
const MIRRORED_IMAGE = `${UPSTREAM}/${registry.images.hold.ref.slice(registry.host.length + 1)}`;
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

/** Every file under `dir` with its content and mode: what "restored as it was" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        out[`${path}/`] = statSync(path).mode.toString(8);
        walk(path);
      } else out[path] = `${statSync(path).mode.toString(8)} ${readFileSync(path, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

function createPod(name: string): void {
  serverSideApply(cluster, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      nodeSelector: { 'prepull.dev/test-node': 'real' },
      imagePullSecrets: [{ name: 'upstream-pull' }],
      containers: [{ name: 'app', image: MIRRORED_IMAGE, imagePullPolicy: 'Always' }],
      terminationGracePeriodSeconds: 1,
    },
  });
}

async function containerState(name: string) {
  const pod = await client.get<Pod>(Resources.pods, name, NAMESPACE);
  return pod?.status?.containerStatuses?.[0]?.state;
}

describe.skipIf(!cluster.node)(`the mirrors module on the real node (${cluster.node?.runtime})`, () => {
  let runtime: NodeRuntime;
  let before: Record<string, string>;

  beforeAll(async () => {
    kubectl(cluster, ['create', 'namespace', NAMESPACE]);
    // The registry wants a password; the kubelet sends the image's own host's credentials, also to its mirrors.
    const secret = kubectl(cluster, [
      'create',
      'secret',
      'docker-registry',
      'upstream-pull',
      '-n',
      NAMESPACE,
      `--docker-server=${UPSTREAM}`,
      `--docker-username=${registry.username}`,
      `--docker-password=${registry.password}`,
    ]);
    expect(secret.status, secret.stderr).toBe(0);
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
    createPod('mirrored');
    await eventually(async () => expect((await containerState('mirrored'))?.running).toBeDefined(), 120_000);
    const pod = await client.get<Pod>(Resources.pods, 'mirrored', NAMESPACE);
    // The pod's image is the upstream name: nothing was rewritten.
    expect(pod?.spec?.containers?.[0]?.image).toBe(MIRRORED_IMAGE);
    expect(pod?.status?.containerStatuses?.[0]?.imageID).toContain(registry.images.hold.digest);
  });

  it("restores the node's files exactly, the harness's own among them, and the pull fails again", async () => {
    const report = await applyMirrors({ files, statePath, runtime, mirrors: [] });
    expect(report.mirrors).toEqual([]);
    expect(snapshot(join(cluster.dir, 'node', 'certs.d'))).toEqual(before);
    createPod('unmirrored');
    await eventually(async () => {
      const reason = (await containerState('unmirrored'))?.waiting?.reason;
      expect(['ErrImagePull', 'ImagePullBackOff']).toContain(reason);
    }, 120_000);
  });
});
