/**
 * vitest global setup of the cluster tier: one real cluster for every test
 * file, torn down at the end. PREPULL_TEST_RUNTIME picks the real node's
 * runtime: containerd2 (default) or containerd16. PREPULL_TEST_CLUSTER_NAME,
 * PREPULL_TEST_BASE_PORT and PREPULL_TEST_REAL_NODE=0 give a second cluster
 * (no real node) for work beside a running suite.
 *
 * Test files run in other processes, so what they may do to the cluster itself
 * (restart the API server, register the real node anew with startup taints)
 * goes through a small HTTP control endpoint on
 * loopback, announced as `controlUrl`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildBundle } from '../../scripts/build.ts';
import { startCluster } from './cluster.ts';
import { releaseImage } from './images.ts';
import type { RealNodeInfo } from './types.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runtime = (process.env.PREPULL_TEST_RUNTIME ?? 'containerd2') as RealNodeInfo['runtime'];
  if (runtime !== 'containerd2' && runtime !== 'containerd16') {
    throw new Error(`PREPULL_TEST_RUNTIME must be containerd2 or containerd16, not ${runtime}`);
  }
  const started = Date.now();
  // A second cluster can run beside CI's (another name and ports), but only
  // one real node fits on a machine: PREPULL_TEST_REAL_NODE=0 leaves it out.
  const realNode = process.env.PREPULL_TEST_REAL_NODE !== '0';
  const cluster = await startCluster({
    name: process.env.PREPULL_TEST_CLUSTER_NAME ?? 'test',
    basePort: Number(process.env.PREPULL_TEST_BASE_PORT ?? 23790),
    kwok: true,
    registry: true,
    ...(realNode ? { realNode: runtime } : {}),
    progress: (line) => process.stderr.write(`[harness] ${line}\n`),
  });
  process.stderr.write(
    `[harness] cluster up in ${((Date.now() - started) / 1000).toFixed(1)}s: KUBECONFIG=${cluster.info.kubeconfig}\n`,
  );

  const control = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/restart/kube-apiserver') {
      cluster.restartApiServer().then(
        () => res.writeHead(204).end(),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    if (req.method === 'POST' && req.url === '/restart/kubelet') {
      cluster.restartKubelet().then(
        () => res.writeHead(204).end(),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
      return;
    }
    // Body: the taints to register with, one `key[=value]:Effect` per line (none: as at start).
    if (req.method === 'POST' && req.url === '/reregister/node') {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', () => {
        const taints = body.split('\n').filter((line) => line.trim() !== '');
        cluster.reregisterRealNode(taints).then(
          () => res.writeHead(204).end(),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const { port } = control.address() as AddressInfo;
  project.provide('cluster', { ...cluster.info, controlUrl: `http://127.0.0.1:${port}` });
  // The bundle the image runs, alone in a directory as in the image (no
  // node_modules anywhere above it): tests that start `prepull run` as a
  // process run this, so a dependency the bundle failed to take in would fail.
  project.provide('bundle', await buildBundle(join(cluster.info.dir, 'bundle', 'prepull.mjs')));
  // Built once (or taken from the cache) when the real node imported it.
  project.provide('image', releaseImage());

  return async () => {
    await new Promise<void>((resolve) => control.close(() => resolve()));
    await cluster.stop();
  };
}
