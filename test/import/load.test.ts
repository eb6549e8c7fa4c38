/**
 * The seed scenario, end to end, as a developer meets it: an image built
 * locally, a pod that fails with ErrImageNeverPull, `kubectl prepull load`,
 * and the same pod starts. Also the other ways in (standard input, --image
 * for an unnamed archive) and a failure that must exit non-zero.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { buildDockerArchive, buildOciArchive, buildOciImage, holdBinary } from '../harness/images.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const node = cluster.node!;
const NS = 'load-seed';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const dir = join(cluster.dir, 'load-archives');
const plugin = join(import.meta.dirname, '..', '..', 'bin', 'kubectl-prepull');
const run = randomBytes(3).toString('hex');

const pluginEnv = () => ({
  ...process.env,
  KUBECONFIG: cluster.kubeconfig,
  PATH: `${join(plugin, '..')}:${process.env.PATH}`,
});

/**
 * The plugin's arguments: ARGS, then the real node's socket (flags later win). No
 * --agent-image: the default, the release image, is what the harness's node holds.
 */
const loadArgs = (args: string[]) => [
  'prepull',
  'load',
  '--containerd-socket',
  node.containerdSocket,
  // Only the real node: other files leave hundreds of kwok nodes in the cluster.
  '--nodes',
  'prepull.dev/test-node=real',
  ...args,
];

/** `kubectl prepull load ARGS`, as kubectl runs the plugin: from PATH, with the user's KUBECONFIG. */
function load(args: string[], input?: Buffer) {
  const result = spawnSync(join(cluster.binDir, 'kubectl'), loadArgs(args), {
    input,
    encoding: 'utf8',
    env: pluginEnv(),
    timeout: 300_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function files(marker: string) {
  return [
    { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
    { path: 'etc/case', content: `${marker}\n`, mode: 0o644 },
  ];
}

function neverPod(name: string, image: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      nodeSelector: { 'prepull.dev/test-node': 'real' },
      containers: [{ name: 'app', image, imagePullPolicy: 'Never', command: ['/hold'] }],
      terminationGracePeriodSeconds: 1,
    },
  });
}

async function container(name: string) {
  return (await client.get<Pod>(Resources.pods, name, NS))?.status?.containerStatuses?.[0];
}

describe(`kubectl prepull load (${node.runtime})`, () => {
  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    kubectl(cluster, ['create', 'namespace', NS]);
  });

  it('turns ErrImageNeverPull into a running pod: docker save, then kubectl prepull load ./app.tar', async () => {
    const image = `myapp-${run}:dev`;
    // What `docker save myapp:dev -o app.tar` gives.
    const archive = await buildDockerArchive({ workDir: dir, ref: image, files: files(`seed ${run}`) });
    expect(kubectl(cluster, ['apply', '-f', '-'], neverPod('seed', image)).status).toBe(0);
    await eventually(
      async () => expect((await container('seed'))?.state?.waiting?.reason).toBe('ErrImageNeverPull'),
      120_000,
    );

    const loaded = load([archive]);
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(loaded.stdout).toMatch(
      new RegExp(`${node.name}\\s+docker.io/library/${image}\\s+Loaded\\s+sha256:`),
    );

    // The kubelet retries the same pod, and now finds the image.
    await eventually(async () => expect((await container('seed'))?.state?.running).toBeDefined(), 300_000);
  });

  it('reads the archive from standard input: docker save app:dev | kubectl prepull load -', async () => {
    const image = `registry.local/stdin-${run}:1`;
    const archive = await buildDockerArchive({ workDir: dir, ref: image, files: files(`stdin ${run}`) });
    const loaded = load(['-'], readFileSync(archive));
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(kubectl(cluster, ['apply', '-f', '-'], neverPod('stdin', image)).status).toBe(0);
    await eventually(async () => expect((await container('stdin'))?.state?.running).toBeDefined(), 120_000);
  });

  it('names an unnamed OCI archive with --image NAME --from FILE', async () => {
    const archive = buildOciArchive({
      workDir: dir,
      images: [buildOciImage({ workDir: dir, files: files(`from ${run}`), entrypoint: ['/hold'] })],
    });
    expect(load([archive]).status).toBe(2); // it names no image: the user is told to pass --image
    const loaded = load(['--image', `app-${run}:dev`, '--from', archive]);
    expect(loaded.status, loaded.stderr).toBe(0);
    expect(kubectl(cluster, ['apply', '-f', '-'], neverPod('from', `app-${run}:dev`)).status).toBe(0);
    await eventually(async () => expect((await container('from'))?.state?.running).toBeDefined(), 120_000);
  });

  it('exits non-zero with the node and the reason when a node fails, and leaves no loader behind', async () => {
    const corrupt = join(dir, `corrupt-${run}.tar`);
    writeFileSync(corrupt, randomBytes(32 * 1024));
    const loaded = load(['--image', `broken-${run}:1`, '--from', corrupt]);
    expect(loaded.status).toBe(1);
    expect(loaded.stdout).toMatch(
      new RegExp(`${node.name}\\s+docker.io/library/broken-${run}:1\\s+ImportFailed`),
    );
    await eventually(async () => {
      const left = await client.list(Resources.daemonSets, { namespace: 'prepull-load' });
      expect(left.items).toEqual([]);
    });
  });
});

describe(`kubectl prepull load, safely (${node.runtime})`, () => {
  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
  });

  it('refuses a namespace of its name that it did not create, and puts no pod there', async () => {
    const foreign = `load-foreign-${run}`;
    expect(kubectl(cluster, ['create', 'namespace', foreign]).status).toBe(0);
    const archive = await buildDockerArchive({
      workDir: dir,
      ref: `foreign-${run}:1`,
      files: files(`foreign ${run}`),
    });
    const loaded = load([archive, '--namespace', foreign]);
    expect(loaded.status).toBe(1);
    expect(loaded.stderr).toContain(`namespace ${foreign} exists and was not created by prepull load`);
    expect((await client.list(Resources.daemonSets, { namespace: foreign })).items).toEqual([]);
    expect((await client.list(Resources.pods, { namespace: foreign })).items).toEqual([]);
  });

  it('reports a NotReady node as skipped and loads the Ready one', async () => {
    // A Node object no kubelet (and no kwok) answers for: it never becomes Ready.
    const ghost = `ghost-${run}`;
    const created = kubectl(
      cluster,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: ghost, labels: { 'prepull.dev/test-node': 'real', 'kubernetes.io/os': 'linux' } },
      }),
    );
    expect(created.status, created.stderr).toBe(0);
    try {
      const image = `ghosted-${run}:1`;
      const archive = await buildDockerArchive({ workDir: dir, ref: image, files: files(`ghost ${run}`) });
      const loaded = load([archive]);
      expect(loaded.status, loaded.stderr).toBe(0);
      expect(loaded.stdout).toMatch(
        new RegExp(`${node.name}\\s+docker.io/library/${image}\\s+Loaded\\s+sha256:`),
      );
      expect(loaded.stdout).toMatch(
        new RegExp(`${ghost}\\s+docker.io/library/${image}\\s+Skipped \\(NodeNotReady\\)`),
      );
      expect(loaded.stderr).toContain(`node ${ghost} skipped: the node is not Ready`);
    } finally {
      kubectl(cluster, ['delete', 'node', ghost, '--ignore-not-found']);
    }
  });

  it('removes its loader pods on Ctrl-C', async () => {
    const archive = await buildDockerArchive({
      workDir: dir,
      ref: `interrupted-${run}:1`,
      files: files(`int ${run}`),
    });
    // An agent image no node has: the loaders never start, so the load waits for them.
    const child = spawn(
      join(cluster.binDir, 'kubectl'),
      loadArgs([archive, '--agent-image', `prepull.local/absent-${run}:never`]),
      { env: pluginEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const loaders = async () =>
      (
        await client.list<Pod>(Resources.pods, {
          namespace: 'prepull-load',
          labelSelector: 'app.kubernetes.io/name=prepull-load',
        })
      ).items.filter((p) => !p.metadata.deletionTimestamp);
    try {
      await eventually(async () => expect((await loaders()).length).toBeGreaterThan(0), 120_000);
      // Ctrl-C: SIGINT to the foreground process group.
      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toContain('interrupted; removing the loader pods');
      await eventually(async () => {
        expect((await client.list(Resources.daemonSets, { namespace: 'prepull-load' })).items).toEqual([]);
        expect(await loaders()).toEqual([]);
      });
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  });
});
