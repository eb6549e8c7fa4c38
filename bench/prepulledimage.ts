/**
 * PrePulledImage benchmark, in one run on one cluster of 1000 kwok nodes:
 *   1. a bare DaemonSet of the same pods as a PrePulledImage's: time to ready;
 *   2. one PrePulledImage over the same nodes: time to Ready, as a ratio to 1;
 *   3. API requests and status writes during that rollout and at steady
 *      state, from the API server's audit log;
 *   4. the operator's RSS with 1000 nodes and 100 PrePulledImages.
 * Run: node bench/prepulledimage.ts   (prints figures; asserts nothing)
 */

import { buildBundle, imageNodeFlags } from '../scripts/build.ts';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import { renderPullDaemonSet } from '../src/controllers/prepulledimage/render.ts';
import type { DaemonSet, Node, Pod } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { USER_AGENT } from '../src/operator/manager.ts';
import { releasedImage } from '../src/version.ts';
import { auditedRequests } from '../test/support/audit.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../test/support/nodes.ts';
import {
  fmt,
  kubectl,
  operatorMetric,
  sampleRssMiB,
  say,
  startOperatorProcess,
  until,
  untilControllersStarted,
  withCluster,
} from './support.ts';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const OBJECTS = 100;
const NS = 'bench';

const spec = {
  images: [{ image: 'registry.example.com/bench/app:1.0' }, { image: 'registry.example.com/bench/model:7b' }],
  nodeSelector: { 'prepull-bench/pool': 'all' },
  tolerations: [KWOK_TOLERATION],
};

await withCluster('bench', 23990, { kwok: true }, async (cluster, client) => {
  kubectl(cluster, ['create', 'namespace', NS]);
  say(`creating ${NODES} kwok nodes`);
  for (let from = 0; from < NODES; from += 250) {
    createFakeNodes(cluster, 'bench', from, Math.min(NODES, from + 250), { 'prepull-bench/pool': 'all' });
  }
  // Each node also belongs to one of OBJECTS slices, for the memory part: node i to slice i % OBJECTS.
  const sliceBatches = new Map<number, string[]>();
  for (let i = 0; i < NODES; i++) {
    const slice = i % OBJECTS;
    sliceBatches.set(slice, [...(sliceBatches.get(slice) ?? []), `bench-${i}`]);
  }
  for (const [slice, names] of sliceBatches) {
    kubectl(cluster, ['label', 'nodes', '--overwrite', ...names, `prepull-bench/slice=${slice}`]);
  }
  await until(
    async () => {
      const nodes = await client.list<Node>(Resources.nodes, { labelSelector: 'prepull-bench/pool=all' });
      return (
        nodes.items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length === NODES
      );
    },
    600_000,
    `${NODES} nodes Ready`,
  );

  // 1. The floor: a bare DaemonSet of exactly the pods a PrePulledImage renders.
  const fake: PrePulledImage = {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name: 'bare', namespace: NS, uid: '00000000-0000-4000-8000-000000000000', generation: 1 },
    spec,
  };
  const bare = renderPullDaemonSet(fake, {
    agent: { image: releasedImage, pullPolicy: 'IfNotPresent', holdPath: '/hold' },
    extraPullSecrets: [],
  });
  delete bare.metadata.ownerReferences;
  delete bare.metadata.annotations;
  delete bare.spec.template.metadata.annotations?.['prepull.dev/owner'];
  // Twice: the first rollout on fresh nodes also pays for the cluster's warm-up.
  const bareRollout = async (round: number): Promise<number> => {
    say(`bare DaemonSet, round ${round}: rolling out`);
    const start = Date.now();
    await client.create(Resources.daemonSets, bare);
    await until(
      async () => {
        const ds = await client.get<DaemonSet>(Resources.daemonSets, bare.metadata.name ?? '', NS);
        return ds?.status?.desiredNumberScheduled === NODES && ds.status.numberReady === NODES;
      },
      900_000,
      'the bare DaemonSet to be ready',
    );
    const seconds = (Date.now() - start) / 1000;
    say(`bare DaemonSet ready in ${fmt(seconds)} s; deleting it`);
    await client.delete(Resources.daemonSets, bare.metadata.name ?? '', NS, {
      propagationPolicy: 'Background',
    });
    await until(
      async () => (await client.list<Pod>(Resources.pods, { namespace: NS, limit: 1 })).items.length === 0,
      600_000,
      'the bare pods to go',
    );
    return seconds;
  };
  const bareFirst = await bareRollout(1);
  const bareSeconds = await bareRollout(2);

  // 2. The operator, as its own process.
  const operatorLog = `${cluster.dir}/bench-operator.log`;
  const operator = startOperatorProcess(await buildBundle(), cluster, operatorLog);
  try {
    await untilControllersStarted(operatorLog);
    say('PrePulledImage: rolling out');
    const ppiStart = Date.now();
    kubectl(
      cluster,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name: 'one', namespace: NS },
        spec,
      }),
    );
    await until(
      async () => {
        const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, 'one', NS);
        return (
          ppi?.status?.ready === `${NODES}/${NODES}` &&
          ppi.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
        );
      },
      900_000,
      'the PrePulledImage to be Ready',
    );
    const ppiEnd = Date.now();
    const ppiSeconds = (ppiEnd - ppiStart) / 1000;

    const rollout = auditedRequests(cluster.auditLog, USER_AGENT, ppiStart).filter((r) => r.at <= ppiEnd);
    const byVerb = new Map<string, number>();
    for (const r of rollout) {
      const resource = r.uri
        .split('?')[0]!
        .replace(/\/namespaces\/[^/]+/, '')
        .replace(/\/api(s)?\/[^/]+(\/v1[a-z0-9]*)?/, '');
      const key = `${r.verb} ${resource.split('/').slice(0, 2).join('/')}${r.uri.includes('/status') ? '/status' : ''}`;
      byVerb.set(key, (byVerb.get(key) ?? 0) + 1);
    }
    const statusWrites = rollout
      .filter((r) => r.uri.includes('/prepulledimages/one/status'))
      .map((r) => r.at);
    let maxPer2s = 0;
    for (const at of statusWrites)
      maxPer2s = Math.max(maxPer2s, statusWrites.filter((t) => t >= at && t < at + 2000).length);

    say('steady state: 15 s quiet window');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const quietFrom = Date.now();
    const rssOne = await sampleRssMiB(operator.pid ?? 0, 15);
    const steady = auditedRequests(cluster.auditLog, USER_AGENT, quietFrom).filter((r) => r.verb !== 'watch');
    const heapOne = (await operatorMetric('prepull_nodejs_heap_size_used_bytes')) / 1048576;

    // 4. Memory with 100 PrePulledImages (one per slice of nodes).
    say(`memory: ${OBJECTS} PrePulledImages`);
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: OBJECTS - 1 }, (_, i) => ({
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name: `slice-${i + 1}`, namespace: NS },
        spec: { ...spec, nodeSelector: { 'prepull-bench/slice': String(i + 1) } },
      })),
    };
    kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(list));
    await until(
      async () => {
        const all = await client.list<PrePulledImage>(Resources.prePulledImages, { namespace: NS });
        return (
          all.items.length === OBJECTS &&
          all.items.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
        );
      },
      900_000,
      `${OBJECTS} PrePulledImages Ready`,
    );
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const rssMany = await sampleRssMiB(operator.pid ?? 0, 30);
    const heapMany = (await operatorMetric('prepull_nodejs_heap_size_used_bytes')) / 1048576;

    const lines = [
      `PrePulledImage benchmark on ${NODES} kwok nodes (Kubernetes ${cluster.kubernetesVersion})`,
      `  bare DaemonSet, time to ${NODES}/${NODES} ready:        ${fmt(bareSeconds)} s (first rollout on fresh nodes: ${fmt(bareFirst)} s)`,
      `  PrePulledImage, time to Ready ${NODES}/${NODES}:        ${fmt(ppiSeconds)} s`,
      `  ratio to the bare DaemonSet:                   ${fmt(ppiSeconds / bareSeconds, 2)}x (target <= 1.15x)`,
      `  operator API requests during the rollout:      ${rollout.length}`,
      ...[...byVerb.entries()].sort().map(([k, v]) => `    ${k.padEnd(40)} ${v}`),
      `  status writes during the rollout:              ${statusWrites.length} (at most ${maxPer2s} in any 2 s; target <= 1)`,
      `  operator API requests at steady state (15 s):  ${steady.length} (target 0)`,
      `  operator RSS, ${NODES} nodes, 1 PrePulledImage:    ${fmt(rssOne.median)} MiB median, ${fmt(rssOne.max)} MiB peak over 15 s (V8 heap in use ${fmt(heapOne)} MiB)`,
      `  operator RSS, ${NODES} nodes, ${OBJECTS} PrePulledImages: ${fmt(rssMany.median)} MiB median, ${fmt(rssMany.max)} MiB peak over 30 s (V8 heap in use ${fmt(heapMany)} MiB; target <= 150 MiB)`,
      `    (node flags as in the image: ${imageNodeFlags().join(' ')}; kwok renews every node's status about every 30 s, so the caches churn)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    operator.kill('SIGTERM');
  }
});
