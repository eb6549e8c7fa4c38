/**
 * Node readiness gate benchmark, in one run on one cluster of kwok nodes,
 * with WORKLOADS Deployments in NAMESPACES namespaces whose images one
 * PrePulledImage takes through spec.imagesFrom (the namespaces grant it).
 * At each size (BENCH_GATE_SIZES, default 100,1000 nodes):
 *   1. the floor: nodes join untainted beside a bare DaemonSet of exactly the
 *      PrePulledImage's pods; per node, the time from its join to that pod Ready;
 *   2. the gate: as many nodes join with the startup taint, at the same time
 *      (alternating in the same lists, so both meet the same load, and the
 *      DaemonSet controller, which creates pods at its client's rate of 20
 *      per second, favours neither); per node, the time from its
 *      join, from its Ready, and from its puller pod's Ready (the gate's own
 *      latency) to the taint's removal; p50 and p99, and p50 as a ratio to
 *      the floor's;
 *   3. the operator's API requests during that, from the audit log.
 * Times come from the API server (creation and condition times, the audit
 * log), not from this process's watches, which lag by seconds under load.
 * Then: requests at steady state, requests while every workload is
 * annotated (no image changes: target 0), and the operator's RSS with the
 * workloads, and again with WORKLOADS_MANY of them.
 * Run: node bench/gate.ts   (prints figures; asserts nothing)
 */

import { buildBundle } from '../scripts/build.ts';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { DaemonSet, Node, Pod } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { USER_AGENT } from '../src/operator/manager.ts';
import { auditedRequests } from '../test/support/audit.ts';
import { fakeNodeManifest, KWOK_TOLERATION } from '../test/support/nodes.ts';
import { watchObjects } from '../test/support/watch.ts';
import {
  applyPrePulledImage,
  fmt,
  kubectl,
  quantile,
  sampleRssMiB,
  say,
  startOperatorProcess,
  until,
  untilControllersStarted,
  withCluster,
} from './support.ts';

const SIZES = (process.env.BENCH_GATE_SIZES ?? '100,1000').split(',').map(Number);
const NAMESPACES = Number(process.env.BENCH_GATE_NAMESPACES ?? 20);
const WORKLOADS = Number(process.env.BENCH_GATE_WORKLOADS ?? 200);
const WORKLOADS_MANY = Number(process.env.BENCH_GATE_WORKLOADS_MANY ?? 2000);
/** Distinct images across the workloads: each puller pod holds them all. */
const IMAGES = 20;
const NS = 'gate-bench';
const TAINT = 'prepull.dev/images-not-ready';
/** Nodes of each kind per kubectl apply: a larger list can outlast kubectl's minute on a busy machine. */
const CHUNK = 25;

const deployments = (from: number, to: number) => ({
  apiVersion: 'v1',
  kind: 'List',
  items: Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `app-${i}`, namespace: `${NS}-team-${i % NAMESPACES}`, labels: { bench: 'gate' } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: `app-${i}` } },
        template: {
          metadata: { labels: { app: `app-${i}` } },
          spec: {
            containers: [{ name: 'app', image: `registry.example.com/bench/app-${i % IMAGES}:1` }],
            initContainers: [{ name: 'weights', image: `registry.example.com/bench/weights-${i % 4}:1` }],
          },
        },
      },
    };
  }),
});

/**
 * Per node, as the API server recorded it: creation, the Ready condition's
 * transition, its pod's Ready transition (pods of NS), and the gate's
 * taint-removing patch (from the audit log), in ms.
 */
async function serverTimes(client: KubeClient, auditLog: string) {
  const joined = new Map<string, number>();
  const ready = new Map<string, number>();
  const podReady = new Map<string, number>();
  const untainted = new Map<string, number>();
  const transition = (conditions: Array<{ type: string; status: string }> | undefined) => {
    const c = conditions?.find((x) => x.type === 'Ready' && x.status === 'True') as
      | { lastTransitionTime?: string }
      | undefined;
    return c?.lastTransitionTime ? Date.parse(c.lastTransitionTime) : undefined;
  };
  for (const n of (await client.list<Node>(Resources.nodes, { labelSelector: 'prepull-bench/role' })).items) {
    const name = n.metadata.name ?? '';
    joined.set(name, Date.parse(n.metadata.creationTimestamp ?? ''));
    const at = transition(n.status?.conditions);
    if (at !== undefined) ready.set(name, at);
  }
  for (const p of (await client.list<Pod>(Resources.pods, { namespace: NS })).items) {
    const at = transition(p.status?.conditions);
    if (p.spec.nodeName && at !== undefined) podReady.set(p.spec.nodeName, at);
  }
  for (const r of auditedRequests(auditLog, USER_AGENT)) {
    const name = /^\/api\/v1\/nodes\/([^/?]+)\?fieldManager=prepull%2Fnodegate/.exec(r.uri)?.[1];
    if (name && r.verb === 'patch' && r.code === 200 && !untainted.has(name)) untainted.set(name, r.at);
  }
  return { joined, ready, podReady, untainted };
}

const READY = (n: Node) =>
  n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const tainted = (n: Node) => n.spec?.taints?.some((t) => t.key === TAINT) ?? false;

await withCluster(
  'bench-gate',
  Number(process.env.BENCH_BASE_PORT ?? 24090),
  { kwok: true },
  async (cluster, client) => {
    kubectl(cluster, ['create', 'namespace', NS]);
    for (let i = 0; i < NAMESPACES; i++) {
      const name = `${NS}-team-${i}`;
      kubectl(cluster, ['create', 'namespace', name]);
      kubectl(cluster, ['label', 'namespace', name, 'bench=gate']);
      kubectl(cluster, ['annotate', 'namespace', name, `prepull.dev/images-readable-by=${NS}`]);
    }
    say(`${WORKLOADS} Deployments in ${NAMESPACES} namespaces`);
    kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(deployments(0, WORKLOADS)));

    // Per node: when the bench saw it join, turn Ready, lose the taint; and when its pod was Ready.
    const seen = new Map<string, { joined: number; ready?: number; untainted?: number; podReady?: number }>();
    const nodes = watchObjects<Node>(client, 'bench-nodes', {
      type: Resources.nodes,
      labelSelector: 'type=kwok',
    });
    const onNode = (n: Node) => {
      const name = n.metadata.name ?? '';
      const entry = seen.get(name) ?? { joined: Date.now() };
      if (entry.ready === undefined && READY(n)) entry.ready = Date.now();
      if (entry.untainted === undefined && !tainted(n)) entry.untainted = Date.now();
      seen.set(name, entry);
    };
    nodes.addHandler({ add: onNode, update: (_, n) => onNode(n) });
    const pods = watchObjects<Pod>(client, 'bench-pods', { type: Resources.pods, namespace: NS });
    const onPod = (p: Pod) => {
      const entry = seen.get(p.spec.nodeName ?? '');
      const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (entry && ready && entry.podReady === undefined) entry.podReady = Date.now();
    };
    pods.addHandler({ add: onPod, update: (_, p) => onPod(p) });
    nodes.start();
    pods.start();
    await Promise.all([nodes.waitForSync(), pods.waitForSync()]);

    const operatorLog = `${cluster.dir}/bench-operator.log`;
    const operator = startOperatorProcess(await buildBundle(), cluster, operatorLog);
    const rows: string[] = [];
    try {
      await untilControllersStarted(operatorLog);
      applyPrePulledImage(cluster, NS, 'warm', {
        imagesFrom: { namespaceSelector: { matchLabels: { bench: 'gate' } }, kinds: ['Deployment'] },
        nodeSelector: { 'prepull-bench/role': 'gate' },
        tolerations: [KWOK_TOLERATION],
        nodeReadiness: { taint: true, timeout: '30m' },
      });
      let puller: DaemonSet | undefined;
      await until(
        async () => {
          puller = await client.get<DaemonSet>(Resources.daemonSets, 'ppi-warm', NS);
          return (puller?.spec.template.spec.containers.length ?? 0) === IMAGES + 4;
        },
        120_000,
        'the puller DaemonSet with every workload image',
      );
      // The floor: the very same pods, from a DaemonSet of no PrePulledImage, on untainted nodes.
      const template = structuredClone(puller!.spec.template);
      template.metadata = { labels: { bench: 'floor' } };
      template.spec.nodeSelector = { 'prepull-bench/role': 'floor' };
      delete template.spec.schedulingGates;
      await client.create(Resources.daemonSets, {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'floor', namespace: NS },
        spec: { selector: { matchLabels: { bench: 'floor' } }, template },
      } as DaemonSet);

      let made = 0;
      for (const size of SIZES) {
        const batch = size - made;
        if (batch <= 0) continue;
        // Both kinds join together, in chunks, so that they meet the same load (kwok, scheduler, operator).
        say(
          `${batch} nodes join untainted beside the bare DaemonSet (floor), ${batch} with the startup taint (gate)`,
        );
        const gateStart = Date.now();
        const floorNames: string[] = [];
        const names: string[] = [];
        for (let from = made; from < size; from += CHUNK) {
          const to = Math.min(size, from + CHUNK);
          // One list, floor and gated nodes alternating: the DaemonSet controller, which
          // creates pods at its client's rate, then serves neither kind first.
          const items = Array.from({ length: to - from }, (_, i) => {
            const floorNode = fakeNodeManifest(`floor-${from + i}`, {
              'prepull-bench/role': 'floor',
            }) as Node;
            const gateNode = fakeNodeManifest(`gate-${from + i}`, { 'prepull-bench/role': 'gate' }) as Node;
            gateNode.spec = {
              taints: [...(gateNode.spec?.taints ?? []), { key: TAINT, effect: 'NoSchedule' }],
            };
            floorNames.push(floorNode.metadata.name ?? '');
            names.push(gateNode.metadata.name ?? '');
            return [floorNode, gateNode];
          }).flat();
          kubectl(cluster, ['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
        }
        await until(
          () => floorNames.every((n) => seen.get(n)?.podReady !== undefined),
          1_800_000,
          'floor pods Ready',
        );
        await until(
          () => names.every((n) => seen.get(n)?.untainted !== undefined),
          1_800_000,
          'every taint removed',
        );
        const gateEnd = Date.now();
        // Timed by the API server, not by this process's watches (which lag by seconds under load):
        // creation and condition times (to the second), and the gate's patch in the audit log.
        const { joined, ready, podReady, untainted } = await serverTimes(client, cluster.auditLog);
        const floor = floorNames.map((n) => (podReady.get(n) ?? Number.NaN) - (joined.get(n) ?? Number.NaN));
        const joinToUntaint = names.map(
          (n) => (untainted.get(n) ?? Number.NaN) - (joined.get(n) ?? Number.NaN),
        );
        const readyToUntaint = names.map(
          (n) => (untainted.get(n) ?? Number.NaN) - (ready.get(n) ?? Number.NaN),
        );
        // The gate's own latency: from the puller pod's Ready to the taint's removal.
        const pullerToUntaint = names.map(
          (n) => (untainted.get(n) ?? Number.NaN) - (podReady.get(n) ?? Number.NaN),
        );
        const requests = auditedRequests(cluster.auditLog, USER_AGENT, gateStart).filter(
          (r) => r.at <= gateEnd && r.verb !== 'watch',
        );
        const nodePatches = requests.filter(
          (r) => r.verb === 'patch' && r.uri.startsWith('/api/v1/nodes/'),
        ).length;
        const s = (ms: number) => `${fmt(ms / 1000)} s`;
        rows.push(
          `  ${String(size).padStart(5)}  floor join→pod Ready p50 ${s(quantile(floor, 0.5))} p99 ${s(quantile(floor, 0.99))}` +
            `   gate join→untaint p50 ${s(quantile(joinToUntaint, 0.5))} p99 ${s(quantile(joinToUntaint, 0.99))}` +
            `   Ready→untaint p50 ${s(quantile(readyToUntaint, 0.5))} p99 ${s(quantile(readyToUntaint, 0.99))}` +
            `   puller Ready→untaint p50 ${s(quantile(pullerToUntaint, 0.5))} p99 ${s(quantile(pullerToUntaint, 0.99))}` +
            `   ratio p50 ${fmt(quantile(joinToUntaint, 0.5) / quantile(floor, 0.5), 2)}x` +
            `   requests ${requests.length} (${nodePatches} taint removals)`,
        );
        say(rows.at(-1)!.trim());
        made = size;
      }

      say('steady state: 15 s quiet window');
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const quietFrom = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 15_000));
      const steady = auditedRequests(cluster.auditLog, USER_AGENT, quietFrom).filter(
        (r) => r.verb !== 'watch',
      );
      const rssFew = await sampleRssMiB(operator.pid ?? 0, 15);

      say(`churn: every one of the ${WORKLOADS} Deployments annotated, no image changed`);
      const churnFrom = Date.now();
      for (let i = 0; i < NAMESPACES; i++) {
        kubectl(cluster, ['annotate', 'deployments', '--all', '-n', `${NS}-team-${i}`, `churn=${churnFrom}`]);
      }
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const churn = auditedRequests(cluster.auditLog, USER_AGENT, churnFrom).filter(
        (r) => r.verb !== 'watch',
      );

      say(`memory: ${WORKLOADS_MANY} more Deployments`);
      for (let from = WORKLOADS; from < WORKLOADS + WORKLOADS_MANY; from += 250) {
        kubectl(
          cluster,
          ['apply', '-f', '-'],
          JSON.stringify(deployments(from, Math.min(WORKLOADS + WORKLOADS_MANY, from + 250))),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const rssMany = await sampleRssMiB(operator.pid ?? 0, 15);
      const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, 'warm', NS);

      const lines = [
        `Node readiness gate benchmark on kwok nodes (Kubernetes ${cluster.kubernetesVersion}); one PrePulledImage with imagesFrom over ${WORKLOADS} Deployments in ${NAMESPACES} namespaces (${IMAGES + 4} images); at each size, that many floor and that many gated nodes join together:`,
        ...rows,
        `  operator API requests at steady state (15 s, ${made} nodes): ${steady.length} (target 0)`,
        `  operator API requests while ${WORKLOADS} Deployments were annotated (10 s): ${churn.length} (target 0)`,
        `  operator RSS: ${fmt(rssFew.median)} MiB median with ${WORKLOADS} Deployments, ${fmt(rssMany.median)} MiB with ${WORKLOADS + WORKLOADS_MANY} (peak ${fmt(rssMany.max)} MiB)`,
        `  status.imagesFrom: ${JSON.stringify(ppi?.status?.imagesFrom ?? {})}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      operator.kill('SIGTERM');
      await nodes.stop();
      await pods.stop();
    }
  },
);
