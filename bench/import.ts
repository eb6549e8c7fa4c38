/**
 * Import benchmark on a real node (kubelet + containerd 2.x): one 200 MB
 * docker archive imported three ways, each after the image and its content
 * were removed from containerd:
 *   1. a bare `ctr -n k8s.io images import --local` on the node (the floor);
 *   2. through a PrePulledImage with a hostPath tarball, imported by the node
 *      agent (until status Ready);
 *   3. through `kubectl prepull load` (until it exits).
 * Prints the times and the ratios to the bare import.
 * Run: node bench/import.ts   (prints figures; asserts nothing)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import { loadKubeConfig } from '../src/kube/config.ts';
import { Resources } from '../src/kube/resources.ts';
import { startOperator } from '../src/operator/manager.ts';
import { createOperatorMetrics } from '../src/operator/metrics.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { buildDockerArchive, holdBinary } from '../test/harness/images.ts';
import { applyImportPolicy, startNodeAgent } from '../test/support/agent.ts';
import { fmt, kubectl, root, say, until } from './support.ts';

const MB = Number(process.env.BENCH_IMAGE_MB ?? 200);

const { startCluster } = await import('../test/harness/cluster.ts');
const cluster = await startCluster({
  name: 'bench-import',
  basePort: 24390,
  realNode: 'containerd2',
  progress: say,
});
try {
  const info = cluster.info;
  const node = info.node!;
  const { KubeClient } = await import('../src/kube/client.ts');
  const client = new KubeClient(loadKubeConfig(info.kubeconfig));
  kubectl(info, ['apply', '--server-side', '-f', join(root, 'crds')]);
  kubectl(info, ['create', 'namespace', 'bench']);

  say(`building a ${MB} MB image archive`);
  const image = 'bench.local/big:1';
  const archive = await buildDockerArchive({
    workDir: join(info.dir, 'bench-images'),
    ref: image,
    files: [
      { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
      { path: 'data/blob', content: randomBytes(MB * 1024 * 1024), mode: 0o644 },
    ],
    entrypoint: ['/hold'],
  });
  const size = statSync(archive).size;
  const ctr = (args: string[]) =>
    execFileSync(node.ctr, ['--address', node.containerdSocket, '--namespace', 'k8s.io', ...args], {
      encoding: 'utf8',
    });
  const forget = (name: string) => {
    try {
      ctr(['images', 'rm', '--sync', name]);
    } catch {
      // Not there.
    }
  };

  // 1. The floor.
  forget(image);
  let started = performance.now();
  ctr(['images', 'import', '--local', archive]);
  const bare = (performance.now() - started) / 1000;
  forget(image);

  // 2. Through a PrePulledImage.
  const operator = startOperator({
    kc: loadKubeConfig(info.kubeconfig),
    log: pino({ level: 'silent' }),
    clock: systemClock,
    metrics: createOperatorMetrics(),
    identity: 'bench',
    agent: { image: node.agentImage, pullPolicy: 'IfNotPresent', holdPath: '/hold' },
  });
  // The node agent imports it, under a policy that lets the namespace import this image from there.
  const archives = dirname(archive);
  applyImportPolicy(info, [
    { namespaces: ['bench'], images: ['bench.local/**'], hostPaths: [`${archives}/`] },
  ]);
  const agent = await startNodeAgent(info, { archiveDirectories: [archives] });
  let viaCr = 0;
  try {
    await until(() => operator.ready(), 60_000, 'the operator');
    started = performance.now();
    kubectl(
      info,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name: 'big', namespace: 'bench' },
        spec: {
          images: [{ image, tarball: { hostPath: archive } }],
          nodeSelector: { 'prepull.dev/test-node': 'real' },
        },
      }),
    );
    await until(
      async () =>
        (await client.get<PrePulledImage>(Resources.prePulledImages, 'big', 'bench'))?.status?.ready ===
        '1/1',
      600_000,
      'the PrePulledImage to be Ready',
    );
    viaCr = (performance.now() - started) / 1000;
    kubectl(info, ['delete', 'ppi', 'big', '-n', 'bench', '--wait=false']);
  } finally {
    await operator.stop();
    await agent.stop();
  }
  await until(
    async () => (await client.list(Resources.pods, { namespace: 'bench' })).items.length === 0,
    120_000,
    'the puller pod to go',
  );
  forget(image);

  // 3. Through kubectl prepull load.
  started = performance.now();
  const loaded = spawnSync(
    join(root, 'bin', 'kubectl-prepull'),
    ['load', archive, '--agent-image', node.agentImage, '--containerd-socket', node.containerdSocket],
    { env: { ...process.env, KUBECONFIG: info.kubeconfig }, encoding: 'utf8' },
  );
  const viaLoad = (performance.now() - started) / 1000;
  if (loaded.status !== 0) throw new Error(`prepull load failed: ${loaded.stdout}${loaded.stderr}`);

  process.stdout.write(
    [
      `Import benchmark: a ${fmt(size / 1048576, 0)} MiB docker archive on one real node (${node.runtime})`,
      `  bare ctr import --local:            ${fmt(bare, 2)} s`,
      `  PrePulledImage (tarball hostPath):  ${fmt(viaCr, 2)} s  = ${fmt(viaCr / bare, 2)}x (includes scheduling, the pod, the status write)`,
      `  kubectl prepull load:               ${fmt(viaLoad, 2)} s  = ${fmt(viaLoad / bare, 2)}x (includes the loader pod and streaming over exec)`,
      '',
    ].join('\n'),
  );
} finally {
  await cluster.stop();
}
