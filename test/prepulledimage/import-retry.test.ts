/**
 * Import retries on the real node, with an importer that ends as a broken one
 * would: exit 0 and no result. Such a step is a failure (status and the retry
 * planner read it the same way, protocol.ts), so it is retried; and the count
 * of retries lives in status, so a new leader goes on with the same back-off
 * instead of starting over.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { Resources } from '../../src/kube/resources.ts';
import { buildDockerArchive, holdBinary } from '../harness/images.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const node = cluster.node!;
const NS = 'import-retry';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const run = randomBytes(3).toString('hex');
/** An agent image whose "importer" is busybox's `true`: it exits 0 and writes nothing. */
const SILENT_AGENT = `prepull.local/silent-importer:${run}`;
const IMAGE = `import.test/never-imported-${run}:v1`;

function events(name: string): string[] {
  const out = kubectl(cluster, ['get', 'events.events.k8s.io', '-n', NS, '-o', 'json']);
  const list = JSON.parse(out.stdout) as {
    items: Array<{ regarding?: { name?: string }; reason?: string; note?: string }>;
  };
  return list.items
    .filter((e) => e.regarding?.name === name && e.reason === 'RetryingImport')
    .map((e) => e.note ?? '');
}

async function isLeader(operator: TestOperator): Promise<boolean> {
  const metric = await operator.metrics.registry.getSingleMetric('prepull_leader')?.get();
  return metric?.values[0]?.value === 1;
}

async function retriesOnNode(name: string): Promise<number | undefined> {
  const ppi = await getPrePulledImage(client, NS, name);
  return ppi.status?.importRetries?.find((r) => r.node === node.name)?.attempts;
}

describe(`import retries on the real node (${node.runtime})`, () => {
  const operators: TestOperator[] = [];
  const start = (name: string, leaderElection = false) => {
    const operator = startTestOperator(cluster, name, {
      agent: { image: SILENT_AGENT, pullPolicy: 'Never', holdPath: '/hold', importerPath: '/true' },
      // Fast enough to see several retries; the growth is what the failover must keep.
      importRetry: { baseMs: 2_000, maxMs: 8_000 },
      ...(leaderElection
        ? { leaderElection: { namespace: 'prepull-system', name: `import-retry-${run}` } }
        : {}),
    });
    operators.push(operator);
    return operator;
  };

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    const dir = join(cluster.dir, 'import-retry');
    mkdirSync(dir, { recursive: true });
    const archive = await buildDockerArchive({
      workDir: dir,
      ref: SILENT_AGENT,
      files: [
        { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
        // busybox picks its applet by the name it is called by.
        { path: 'true', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ],
    });
    execFileSync(
      node.ctr,
      ['--address', node.containerdSocket, '--namespace', 'k8s.io', 'images', 'import', archive],
      {
        stdio: 'pipe',
      },
    );
  });

  afterAll(async () => {
    for (const operator of operators) await operator.stop();
    kubectl(cluster, ['delete', 'namespace', NS, '--wait=false']);
  });

  const ppi = (name: string) => ({
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec: {
      images: [{ image: IMAGE, tarball: { hostPath: `/var/lib/prepull-test/${name}.tar` } }],
      nodeSelector: { 'prepull.dev/test-node': 'real' },
    },
  });

  it('reports an import step that exits 0 with no result as ImportFailed, and retries it', async () => {
    const operator = start('import-retry-silent');
    try {
      await silentImportIsRetried(operator);
    } finally {
      await operator.stop();
    }
    expect(kubectl(cluster, ['delete', 'ppi', 'silent', '-n', NS, '--wait=true']).status).toBe(0);
  });

  async function silentImportIsRetried(operator: TestOperator): Promise<void> {
    await eventually(() => expect(operator.ready()).toBe(true));
    serverSideApply(cluster, ppi('silent'));
    await eventually(async () => {
      const state = nodeImageState(await getPrePulledImage(client, NS, 'silent'), node.name, IMAGE);
      expect(state).toMatchObject({ state: 'Failed', reason: 'ImportFailed' });
      expect(state?.message).toContain('left no result');
    }, 120_000);
    const firstPod = (await client.list(Resources.pods, { namespace: NS })).items[0]?.metadata.uid;
    await eventually(async () => {
      expect(await retriesOnNode('silent')).toBeGreaterThanOrEqual(1);
      expect(events('silent').length).toBeGreaterThanOrEqual(1);
      const pods = (await client.list(Resources.pods, { namespace: NS })).items;
      expect(pods.map((p) => p.metadata.uid)).not.toContain(firstPod);
    }, 120_000);
  }

  it('keeps the retry count through a leader failover', async () => {
    const first = start('import-retry-leader-a', true);
    expect(kubectl(cluster, ['get', 'ppi', 'silent', '-n', NS]).status).not.toBe(0);
    await eventually(async () => expect(await isLeader(first)).toBe(true), 60_000);
    serverSideApply(cluster, ppi('failover'));
    await eventually(async () => expect(await retriesOnNode('failover')).toBeGreaterThanOrEqual(2), 180_000);
    const before = (await retriesOnNode('failover')) ?? 0;
    // The leader goes; a standby takes over with an empty memory.
    await first.stop();
    const second = start('import-retry-leader-b', true);
    await eventually(async () => expect(await isLeader(second)).toBe(true), 60_000);
    await eventually(async () => expect(await retriesOnNode('failover')).toBeGreaterThan(before), 180_000);
    // The new leader's first retry continued the count: never "retry 1" again.
    const notes = events('failover');
    const counts = notes.map((n) => Number(/retry (\d+)\)/.exec(n)?.[1]));
    expect(counts).toContain(before + 1);
    expect(counts.filter((c) => c === 1)).toHaveLength(1);
  });
});
