/**
 * PrePulledImage benchmark, in one run on one cluster of kwok nodes, as a
 * scale curve: at each size (BENCH_SIZES, default 100,1000,2500,5000 nodes)
 *   1. a bare DaemonSet of the same pods as a PrePulledImage's: time to ready
 *      (a first rollout on fresh nodes, which also pays for their warm-up, is
 *      left out);
 *   2. one PrePulledImage over the same nodes: time to Ready, in BENCH_PAIRS
 *      rounds paired with the floor's in ABBA order (the operator runs
 *      throughout), as a ratio of the medians, and as each round's ratio to the
 *      floor's round next to it, with their median. Both sides are timed by the API
 *      server (its audit log): from the create request to the status write
 *      that shows the rollout done (the DaemonSet controller's, the
 *      operator's), and the end is seen by a watch, so no poll weighs on either;
 *   3. API requests and status writes during those rollouts, from the API
 *      server's audit log, the controller's reconciles (its metric), the
 *      operator's RSS, and the CPU seconds of each
 *      side's rollouts (the operator's, and the whole machine's busy time:
 *      on a saturated machine the difference is what the ratio pays for), and
 *      the machine's steal time (CPU the hypervisor gave to other guests);
 * then, at the largest size, requests at steady state and the RSS with 100
 * PrePulledImages.
 * Run: node bench/prepulledimage.ts   (prints figures; asserts nothing)
 * BENCH_CPU_PROFILE=PREFIX also profiles the operator during each rollout of
 * step 2: PREFIX-<nodes>.cpuprofile (open in Chrome DevTools), and prints the
 * functions with the most self time. BENCH_HEAP_SNAPSHOT=PATH writes a heap
 * snapshot of the operator with 100 PrePulledImages, after the RSS is read,
 * and prints what kinds of object hold the heap. BENCH_KCM_FLAGS and the like
 * (bench/support.ts) add flags to the cluster's components.
 */
import { writeFileSync } from 'node:fs';

import { buildBundle, imageNodeFlags } from '../scripts/build.ts';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import { CONTROLLER_NAME } from '../src/controllers/prepulledimage/controller.ts';
import { renderPullDaemonSet } from '../src/controllers/prepulledimage/render.ts';
import type { DaemonSet, Node, Pod } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { USER_AGENT } from '../src/operator/manager.ts';
import { releasedImage } from '../src/version.ts';
import { auditedRequests } from '../test/support/audit.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../test/support/nodes.ts';
import { watchObjects, whenWatched } from '../test/support/watch.ts';
import {
  applyPrePulledImage,
  benchFlags,
  connectProfiler,
  cpuSeconds,
  fmt,
  kubectl,
  machineBusySeconds,
  machineStealSeconds,
  median,
  operatorMetric,
  prePulledImageManifest,
  sampleRssMiB,
  say,
  startOperatorProcess,
  takeHeapSnapshot,
  topSelfTime,
  until,
  untilControllersStarted,
  withCluster,
} from './support.ts';

const SIZES = (process.env.BENCH_SIZES ?? '100,1000,2500,5000').split(',').map(Number);
const LARGEST = Math.max(...SIZES);
const OBJECTS = 100;
const NS = 'bench';
const PROFILE = process.env.BENCH_CPU_PROFILE;
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT;
/** Rounds of floor and PrePulledImage at each size (BENCH_PAIRS, default 2). */
const PAIRS = Number(process.env.BENCH_PAIRS ?? '2');

const spec = {
  images: [{ image: 'registry.example.com/bench/app:1.0' }, { image: 'registry.example.com/bench/model:7b' }],
  nodeSelector: { 'prepull-bench/pool': 'all' },
  tolerations: [KWOK_TOLERATION],
};

await withCluster('bench', 23990, { kwok: true }, async (cluster, client) => {
  kubectl(cluster, ['create', 'namespace', NS]);
  const fake: PrePulledImage = {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name: 'bare', namespace: NS, uid: '00000000-0000-4000-8000-000000000000', generation: 1 },
    spec,
  };
  // The floor: a bare DaemonSet of exactly the pods a PrePulledImage renders.
  const bare = renderPullDaemonSet(fake, {
    agent: { image: releasedImage, pullPolicy: 'IfNotPresent', holdPath: '/hold' },
    extraPullSecrets: [],
  });
  delete bare.metadata.ownerReferences;
  delete bare.metadata.annotations;
  delete bare.spec.template.metadata.annotations?.['prepull.dev/owner'];
  const podsGone = () =>
    until(
      async () => (await client.list<Pod>(Resources.pods, { namespace: NS, limit: 1 })).items.length === 0,
      900_000,
      'the pods to go',
    );
  /** CPU seconds so far: the operator's, and the whole machine's busy time. */
  const cpuNow = () => ({
    operator: operator?.pid ? cpuSeconds(operator.pid) : 0,
    machine: machineBusySeconds(),
    steal: machineStealSeconds(),
  });
  const cpuSince = (from: ReturnType<typeof cpuNow>) => {
    const now = cpuNow();
    return {
      operatorCpu: now.operator - from.operator,
      machineCpu: now.machine - from.machine,
      stealCpu: now.steal - from.steal,
    };
  };
  /**
   * A rollout as the API server timed it, from its audit log: from the create
   * request to the last write of `resourcePath`'s status by `writer` before the watch saw
   * the rollout done. The watch's own lag drops out of both sides alike.
   */
  const serverSeconds = async (resourcePath: string, writer: string, from: number, by: number) => {
    // A request is logged once it completes: give the last ones a moment to reach the file.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const created = auditedRequests(cluster.auditLog, 'prepull', from).find(
      (r) =>
        r.userAgent === 'prepull' &&
        r.verb === 'create' &&
        r.uri.startsWith(resourcePath.replace(/\/[^/]+$/, '')),
    );
    const wrote = auditedRequests(cluster.auditLog, writer, from)
      .filter((r) => r.at <= by && r.uri.startsWith(`${resourcePath}/status`) && r.verb !== 'get')
      .at(-1);
    return created && wrote ? (wrote.at - created.at) / 1000 : Number.NaN;
  };
  const bareRollout = async (nodes: number, round: number) => {
    say(`${nodes} nodes: bare DaemonSet, round ${round}`);
    const cpu = cpuNow();
    const start = Date.now();
    await client.create(Resources.daemonSets, bare);
    await whenWatched(
      daemonSets,
      () => {
        const ds = daemonSets.get(`${NS}/${bare.metadata.name}`);
        return ds?.status?.desiredNumberScheduled === nodes && ds.status.numberReady === nodes
          ? ds
          : undefined;
      },
      1_800_000,
      'the bare DaemonSet to be ready',
    );
    const end = Date.now();
    const used = cpuSince(cpu);
    const path = `/apis/apps/v1/namespaces/${NS}/daemonsets/${bare.metadata.name}`;
    const server = await serverSeconds(path, 'kube-controller-manager', start, end);
    await client.delete(Resources.daemonSets, bare.metadata.name ?? '', NS, {
      propagationPolicy: 'Background',
    });
    await podsGone();
    return { seconds: (end - start) / 1000, server, ...used };
  };
  const isReady = (ppi: PrePulledImage, nodes: number) =>
    ppi.status?.ready === `${nodes}/${nodes}` &&
    ppi.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
  const ppiReady = (name: string, nodes: number) => async () => {
    const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, name, NS);
    return ppi !== undefined && isReady(ppi, nodes);
  };
  // Each rollout's end is seen by a watch, not a poll: a GET of the PrePulledImage every 100 ms
  // cost the API server more than one of the floor's DaemonSet, on that side only.
  const daemonSets = watchObjects<DaemonSet>(client, 'bench-daemonsets', {
    type: Resources.daemonSets,
    namespace: NS,
  });
  const prePulledImages = watchObjects<PrePulledImage>(client, 'bench-prepulledimages', {
    type: Resources.prePulledImages,
    namespace: NS,
  });
  for (const informer of [daemonSets, prePulledImages]) informer.start();
  await Promise.all([daemonSets.waitForSync(), prePulledImages.waitForSync()]);

  /** The PrePulledImage controller's reconciles so far, of any result. */
  const reconciles = () => operatorMetric('prepull_reconcile_total', `controller="${CONTROLLER_NAME}"`);
  const apply = (name: string) => applyPrePulledImage(cluster, NS, name, spec);
  /** One PrePulledImage over the nodes, to Ready, then deleted: seconds, and the operator's requests meanwhile. */
  const ppiRollout = async (nodes: number, round: number, profile: boolean) => {
    say(`${nodes} nodes: PrePulledImage, round ${round}`);
    const profiler = PROFILE && profile ? await connectProfiler(operatorLog) : undefined;
    await profiler?.start();
    const cpu = cpuNow();
    const reconciled = await reconciles();
    const start = Date.now();
    // Created as the floor's DaemonSet is, with one request from this process: a kubectl apply
    // would add its own start-up and discovery to this side only.
    await client.create<PrePulledImage>(Resources.prePulledImages, prePulledImageManifest(NS, 'one', spec));
    await whenWatched(
      prePulledImages,
      () => {
        const ppi = prePulledImages.get(`${NS}/one`);
        return ppi && isReady(ppi, nodes) ? ppi : undefined;
      },
      1_800_000,
      'the PrePulledImage to be Ready',
    );
    const end = Date.now();
    const used = cpuSince(cpu);
    const passes = (await reconciles()) - reconciled;
    if (profiler) {
      const cpu = await profiler.stop();
      writeFileSync(`${PROFILE}-${nodes}.cpuprofile`, JSON.stringify(cpu));
      say(`${nodes} nodes: operator CPU profile of the rollout, most self time:`);
      for (const line of topSelfTime(cpu, 15)) say(`  ${line}`);
    }
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, start).filter((r) => r.at <= end);
    const statusWrites = requests.filter((r) => r.uri.includes('/prepulledimages/one/status')).length;
    const path = `/apis/prepull.dev/v1alpha1/namespaces/${NS}/prepulledimages/one`;
    const server = await serverSeconds(path, USER_AGENT, start, end);
    kubectl(cluster, ['delete', 'ppi', 'one', '-n', NS, '--wait=true']);
    await podsGone();
    return {
      seconds: (end - start) / 1000,
      server,
      requests: requests.length,
      statusWrites,
      passes,
      ...used,
    };
  };

  const operatorLog = `${cluster.dir}/bench-operator.log`;
  let operator: ReturnType<typeof startOperatorProcess> | undefined;
  const rows: string[] = [];
  let created = 0;
  try {
    for (const size of SIZES) {
      say(`growing to ${size} kwok nodes`);
      // In parts of 50: one apply of hundreds of nodes can outlast kubectl's minute on a busy machine.
      // Each node carries its slice for the 100-object phase from the start (node i in slice
      // i % OBJECTS): labelling 5000 nodes afterwards took kubectl about 8 minutes.
      for (let from = created; from < size; from += 50) {
        createFakeNodes(cluster, 'bench', from, Math.min(size, from + 50), (i) => ({
          'prepull-bench/pool': 'all',
          'prepull-bench/slice': String(i % OBJECTS),
        }));
      }
      created = Math.max(created, size);
      await until(
        async () => {
          const nodes = await client.list<Node>(Resources.nodes, { labelSelector: 'prepull-bench/pool=all' });
          const ready = nodes.items.filter((n) =>
            n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
          );
          return ready.length === size;
        },
        900_000,
        `${size} nodes Ready`,
        // A list of 5000 kwok nodes is about 20 MB: polled back to back, it kept the API server busy while kwok brought them up.
        5_000,
      );
      operator ??= startOperatorProcess(
        await buildBundle(),
        cluster,
        operatorLog,
        [],
        PROFILE || HEAP_SNAPSHOT ? ['--inspect=127.0.0.1:0'] : [],
      );
      await untilControllersStarted(operatorLog);
      // The first rollout on fresh nodes also pays for their warm-up: the floor's, and left out.
      const bareFirst = (await bareRollout(size, 0)).seconds;
      // Paired rounds in ABBA order (floor, object, object, floor, …), so that load which drifts
      // during the run weighs on both sides alike; the ratio is of the medians.
      const bareRuns: Array<Awaited<ReturnType<typeof bareRollout>>> = [];
      const ppiRuns: Array<Awaited<ReturnType<typeof ppiRollout>>> = [];
      for (let round = 1; round <= PAIRS; round++) {
        const order = round % 2 === 1 ? ['bare', 'ppi'] : ['ppi', 'bare'];
        for (const side of order) {
          if (side === 'bare') bareRuns.push(await bareRollout(size, round));
          else ppiRuns.push(await ppiRollout(size, round, round === 1));
        }
      }
      // The ratio is of the API server's times; this process's, from its watch, are printed beside them.
      const bareSeconds = median(bareRuns.map((r) => r.server));
      const ppiSeconds = median(ppiRuns.map((r) => r.server));
      // Each round's ratio to the floor's round next to it (ABBA: the two share the machine's
      // state of the moment). Their median is the paired estimate, steadier than the ratio of the
      // medians when whole rounds drift by more than the difference measured.
      const pairRatios = ppiRuns.map((r, i) => r.server / (bareRuns[i]?.server ?? Number.NaN));
      const geometricMean = Math.exp(pairRatios.reduce((sum, x) => sum + Math.log(x), 0) / pairRatios.length);
      const [bareWatched, ppiWatched] = [bareRuns, ppiRuns].map((runs) => median(runs.map((r) => r.seconds)));
      const rss = await sampleRssMiB(operator.pid ?? 0, 10);
      const cpu = (runs: typeof bareRuns) =>
        `operator ${fmt(median(runs.map((r) => r.operatorCpu)))} s, machine ${fmt(median(runs.map((r) => r.machineCpu)))} s, ` +
        `steal ${fmt(median(runs.map((r) => r.stealCpu)))} s`;
      const times = (runs: typeof bareRuns) =>
        runs.map((r) => `${fmt(r.server, 2)} (${fmt(r.seconds, 2)})`).join(', ');
      rows.push(
        `  ${String(size).padStart(5)}  bare ${fmt(bareSeconds, 2).padStart(7)} s (fresh ${fmt(bareFirst)} s)  ` +
          `PrePulledImage ${fmt(ppiSeconds, 2).padStart(7)} s  ratio ${fmt(ppiSeconds / bareSeconds, 2)}x ` +
          `(as watched: ${fmt(bareWatched ?? 0, 2)} s, ${fmt(ppiWatched ?? 0, 2)} s, ${fmt((ppiWatched ?? 0) / (bareWatched ?? 1), 2)}x)  ` +
          `requests ${median(ppiRuns.map((r) => r.requests))} (${median(ppiRuns.map((r) => r.statusWrites))} status writes, ${median(ppiRuns.map((r) => r.passes))} reconciles)  RSS ${fmt(rss.median)} MiB`,
        `         rounds, API server (as watched): bare ${times(bareRuns)} s; PrePulledImage ${times(ppiRuns)} s`,
        `         each round against the floor's next to it: ${pairRatios.map((x) => `${fmt(x, 3)}x`).join(', ')}; ` +
          `median ${fmt(median(pairRatios), 3)}x, geometric mean ${fmt(geometricMean, 3)}x`,
        `         CPU per rollout (median): bare: ${cpu(bareRuns)}; PrePulledImage: ${cpu(ppiRuns)}`,
      );
      for (const row of rows.slice(-4)) say(row.trim());
    }
    // The steady state and the memory figures below are with one PrePulledImage over every node.
    apply('one');
    await until(ppiReady('one', LARGEST), 1_800_000, 'the PrePulledImage to be Ready');

    say('steady state: 15 s quiet window');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const quietFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const steady = auditedRequests(cluster.auditLog, USER_AGENT, quietFrom).filter((r) => r.verb !== 'watch');
    for (const r of steady) {
      say(`  steady-state request at +${fmt((r.at - quietFrom) / 1000)} s: ${r.verb} ${r.uri} (${r.code})`);
    }

    // Memory with 100 PrePulledImages, one per slice of the nodes (labelled when they were made).
    say(`memory: ${OBJECTS} PrePulledImages over ${LARGEST} nodes`);
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
      1_800_000,
      `${OBJECTS} PrePulledImages Ready`,
    );
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const rssMany = await sampleRssMiB(operator?.pid ?? 0, 30);
    const heapMany = (await operatorMetric('prepull_nodejs_heap_size_used_bytes')) / 1048576;
    const heapTotal = (await operatorMetric('prepull_nodejs_heap_size_total_bytes')) / 1048576;
    const external = (await operatorMetric('prepull_nodejs_external_memory_bytes')) / 1048576;
    if (HEAP_SNAPSHOT) {
      say(`heap snapshot: ${HEAP_SNAPSHOT}; the heap by kind of object, self size:`);
      for (const line of await takeHeapSnapshot(operatorLog, HEAP_SNAPSHOT, 25)) say(`  ${line}`);
    }
    const flags = Object.entries(benchFlags()).filter(([, f]) => f.length > 0);

    const lines = [
      `PrePulledImage benchmark on kwok nodes (Kubernetes ${cluster.kubernetesVersion}), one image set against a bare DaemonSet in the same run:`,
      '  nodes  floor (bare DaemonSet)          PrePulledImage    ratio (target <= 1.05x; times from the API server: create to the status write that shows it done)  operator requests, RSS',
      ...rows,
      `  operator API requests at steady state (15 s, ${LARGEST} nodes): ${steady.length} (target 0)`,
      ...steady.map((r) => `    ${r.verb} ${r.uri} (${r.code})`),
      `  operator RSS, ${LARGEST} nodes, ${OBJECTS} PrePulledImages: ${fmt(rssMany.median)} MiB median, ${fmt(rssMany.max)} MiB peak over 30 s (V8 heap in use ${fmt(heapMany)} MiB of ${fmt(heapTotal)} MiB, external ${fmt(external)} MiB; target <= 150 MiB)`,
      `    (node flags as in the image: ${imageNodeFlags().join(' ')}; kwok renews every node's status about every 30 s, so the caches churn)`,
      ...flags.map(([component, f]) => `    (${component} flags added for this run: ${f.join(' ')})`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    operator?.kill('SIGTERM');
    await Promise.all([daemonSets.stop(), prePulledImages.stop()]);
  }
});
