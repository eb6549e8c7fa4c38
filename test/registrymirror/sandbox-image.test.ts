/**
 * A RegistryMirror for the sandbox image's registry, on the real node
 * (containerd 2.x, or 1.6 with PREPULL_TEST_RUNTIME=containerd16): a new
 * pod's pause image comes from the mirror. The harness imported its pause
 * image (`sandbox_image` in containerd's config, a `registry.k8s.io` name)
 * before the kubelet started; here it is exported, pushed to a local
 * registry that serves anonymously over plain HTTP (as a site's own
 * `registry:2` often does, and as containerd asks for the sandbox image:
 * with no pod credentials), and removed from containerd's `k8s.io`
 * namespace. With a RegistryMirror for `registry.k8s.io` in place, a new
 * pod runs, and the local registry's log shows containerd fetched the pause
 * manifest from it for `registry.k8s.io` (`ns=registry.k8s.io`).
 *
 * The node is restored whatever happens: the exported archive is imported
 * again before the mirror goes (removing pause would break every later pod).
 * The module runs in the test process, as in node-files.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMirrors, type SelectedMirror } from '../../src/agent/mirrors/apply.ts';
import { detectRuntime, type NodeRuntime } from '../../src/agent/mirrors/runtime.ts';
import { hostFiles } from '../../src/agent/node/files.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { type Supervised, startProcess, stopProcess, waitUntilReady } from '../harness/process.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAMESPACE = 'mirror-sandbox';
const CONTAINERD_CONFIG = join(cluster.dir, 'node', 'containerd.toml');
const files = hostFiles('/');

/** The sandbox image containerd's CRI runs every pod's sandbox from, as its config names it. */
function sandboxImage(): string {
  const config = parseToml(readFileSync(CONTAINERD_CONFIG, 'utf8')) as {
    plugins: Record<string, { sandbox_image?: string }>;
  };
  const image = config.plugins['io.containerd.grpc.v1.cri']?.sandbox_image;
  if (!image) throw new Error(`${CONTAINERD_CONFIG} names no sandbox_image`);
  return image;
}

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.skipIf(!cluster.node)(`a mirror for the sandbox image's registry (${cluster.node?.runtime})`, () => {
  const node = cluster.node!;
  const pause = sandboxImage();
  const upstream = pause.slice(0, pause.indexOf('/'));
  const repository = pause.slice(upstream.length + 1, pause.lastIndexOf(':'));
  const tag = pause.slice(pause.lastIndexOf(':') + 1);
  const mirrorHost = `127.0.0.1:${cluster.sparePorts[2]}`;
  const work = mkdtempSync(join(cluster.dir, 'sandbox-mirror-'));
  const archive = join(work, 'pause.tar');
  const statePath = join(work, 'mirrors.json');
  // ctr 2.x's default transfer service is not what the harness imports with (test/harness/node.ts).
  const local = node.runtime === 'containerd2' ? ['--local'] : [];
  const ctr = (args: string[]) =>
    execFileSync(node.ctr, ['--address', node.containerdSocket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  const hasPause = () => ctr(['images', 'ls', '-q']).split('\n').includes(pause);
  /** The pause image's manifest digest as containerd has it now (`ctr images ls`: name, type, digest, …). */
  const pauseDigest = () =>
    ctr(['images', 'ls'])
      .split('\n')
      .map((line) => line.split(/\s+/))
      .find((fields) => fields[0] === pause)?.[2];
  let original: string | undefined;
  let registry: Supervised | undefined;
  let runtime: NodeRuntime;
  let removed = false;

  const mirror: SelectedMirror = {
    name: 'sandbox-registry',
    uid: 'uid-sandbox-registry',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
    spec: { host: upstream, upstream: 'Replaced', mirrors: [{ url: `http://${mirrorHost}` }] },
  };

  beforeAll(async () => {
    original = pauseDigest();
    expect(original).toMatch(/^sha256:/);
    ctr(['images', 'export', ...local, archive, pause]);
    writeFileSync(
      join(work, 'config.yml'),
      `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'storage')}\nhttp:\n  addr: ${mirrorHost}\n`,
    );
    registry = startProcess(
      'registry',
      '/usr/bin/docker-registry',
      ['serve', join(work, 'config.yml')],
      work,
    );
    await waitUntilReady(
      registry,
      'registry',
      async () => (await fetch(`http://${mirrorHost}/v2/`)).ok,
      30_000,
    );
    execFileSync(
      'skopeo',
      [
        'copy',
        '--dest-tls-verify=false',
        `docker-archive:${archive}`,
        `docker://${mirrorHost}/${repository}:${tag}`,
      ],
      { stdio: 'pipe' },
    );
    runtime = await detectRuntime(files, { configFile: CONTAINERD_CONFIG });
    kubectl(cluster, ['create', 'namespace', NAMESPACE]);
  });

  afterAll(async () => {
    try {
      // Restored exactly (the pulled copy may differ in manifest), before the mirror goes.
      if (removed) ctr(['images', 'import', ...local, archive]);
      expect(pauseDigest()).toBe(original);
    } finally {
      if (runtime) await applyMirrors({ files, statePath, runtime, mirrors: [] });
      if (registry) await stopProcess(registry);
      kubectl(cluster, ['delete', 'namespace', NAMESPACE, '--wait=false']);
    }
  });

  it(`a new pod's sandbox image ${pause} comes from the mirror`, async () => {
    const report = await applyMirrors({ files, statePath, runtime, mirrors: [mirror] });
    expect(report.mirrors.map((m) => m.reason)).toEqual(['Applied']);
    removed = true;
    ctr(['images', 'rm', pause]);
    expect(hasPause()).toBe(false);

    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'new-sandbox', namespace: NAMESPACE },
      spec: {
        nodeSelector: { 'prepull.dev/test-node': 'real' },
        // The Prepull image the node imported, so the only image to fetch is the sandbox's.
        containers: [
          { name: 'hold', image: node.agentImage, imagePullPolicy: 'IfNotPresent', command: ['/hold'] },
        ],
        terminationGracePeriodSeconds: 1,
      },
    });
    await eventually(async () => {
      const pod = await client.get<Pod>(Resources.pods, 'new-sandbox', NAMESPACE);
      expect(pod?.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    }, 120_000);
    // containerd pulled it again, by its upstream name, from the mirror: the registry's log says so.
    expect(hasPause()).toBe(true);
    const log = readFileSync(registry!.logFile, 'utf8');
    const fetched = log
      .split('\n')
      .filter((line) => line.includes('response completed') && line.includes('http.response.status=200'))
      .map((line) => /http\.request\.uri="?([^" ]+)/.exec(line)?.[1] ?? '');
    expect(fetched).toContainEqual(
      expect.stringMatching(
        new RegExp(`^/v2/${repository}/manifests/[^?]+\\?ns=${upstream.replaceAll('.', '\\.')}$`),
      ),
    );
    expect(existsSync(join(work, 'storage'))).toBe(true);
  });
});
