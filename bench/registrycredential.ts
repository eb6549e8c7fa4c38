/**
 * RegistryCredential benchmark, on a cluster of its own (no nodes needed):
 *   1. time for one RegistryCredential to sync its secret into 1000 namespaces;
 *   2. per-namespace latency, from the create of a namespace to its copy
 *      arriving on a watch, over 200 new namespaces created 20 a second;
 *   3. the operator's API requests at steady state, from the audit log;
 *   4. the operator's RSS.
 * Run: node bench/registrycredential.ts   (prints figures; asserts nothing)
 */
import { buildBundle } from '../scripts/build.ts';
import type { RegistryCredential } from '../src/api/registrycredential.ts';
import type { Namespace, Secret } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { USER_AGENT } from '../src/operator/manager.ts';
import { auditedRequests } from '../test/support/audit.ts';
import { watchObjects } from '../test/support/watch.ts';
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

const NAMESPACES = Number(process.env.BENCH_NAMESPACES ?? 1000);
const NEW_NAMESPACES = 200;
const NEW_NAMESPACE_GAP_MS = 50;
const LABEL = 'prepull-bench/pull';
const SOURCE_NS = 'bench-source';

function namespace(name: string): Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [LABEL]: 'yes' } } };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

await withCluster('bench-rc', 24290, { kwok: false }, async (cluster, client) => {
  kubectl(cluster, ['create', 'namespace', SOURCE_NS]);
  kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    'corp-pull',
    '-n',
    SOURCE_NS,
    '--docker-server=registry.example.com',
    '--docker-username=bench',
    '--docker-password=bench-password',
  ]);
  say(`creating ${NAMESPACES} namespaces`);
  const names = Array.from({ length: NAMESPACES }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
  kubectl(
    cluster,
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: names.map(namespace) }),
  );

  const operatorLog = `${cluster.dir}/bench-operator.log`;
  const operator = startOperatorProcess(await buildBundle(), cluster, operatorLog);
  // Copies as they arrive, timestamped by this process.
  const copies = watchObjects<Secret>(client, 'bench-copies', {
    type: Resources.secrets,
    labelSelector: 'prepull.dev/registrycredential=bench',
  });
  const arrived = new Map<string, number>();
  copies.addHandler({ add: (s) => arrived.set(s.metadata.namespace ?? '', Date.now()) });
  copies.start();
  await copies.waitForSync();
  try {
    await untilControllersStarted(operatorLog);

    const synced = async (n: number) => {
      const rc = await client.get<RegistryCredential>(Resources.registryCredentials, 'bench');
      return (
        rc?.status?.synced === `${n}/${n}` &&
        rc.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
      );
    };

    // 1. One RegistryCredential over every namespace.
    say(`syncing into ${NAMESPACES} namespaces`);
    const syncStart = Date.now();
    kubectl(
      cluster,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'RegistryCredential',
        metadata: { name: 'bench' },
        spec: {
          source: { secretRef: { namespace: SOURCE_NS, name: 'corp-pull' } },
          target: { secretName: 'corp-pull', namespaceSelector: { matchLabels: { [LABEL]: 'yes' } } },
        },
      }),
    );
    await until(() => arrived.size === NAMESPACES, 300_000, `copies in ${NAMESPACES} namespaces`);
    const copiesSeconds = (Date.now() - syncStart) / 1000;
    await until(() => synced(NAMESPACES), 300_000, `synced ${NAMESPACES}/${NAMESPACES}`);
    const readySeconds = (Date.now() - syncStart) / 1000;
    const syncRequests = auditedRequests(cluster.auditLog, USER_AGENT, syncStart).filter(
      (r) => r.verb !== 'watch',
    );

    // 2. New namespaces, one every NEW_NAMESPACE_GAP_MS.
    say(`creating ${NEW_NAMESPACES} namespaces, one every ${NEW_NAMESPACE_GAP_MS} ms`);
    const created = new Map<string, number>();
    for (let i = 0; i < NEW_NAMESPACES; i++) {
      const name = `bench-new-${String(i).padStart(3, '0')}`;
      const at = Date.now();
      await client.create(Resources.namespaces, namespace(name));
      created.set(name, at);
      await new Promise((resolve) => setTimeout(resolve, NEW_NAMESPACE_GAP_MS));
    }
    await until(
      () => [...created.keys()].every((n) => arrived.has(n)),
      120_000,
      'copies in the new namespaces',
    );
    const latencies = [...created]
      .map(([n, at]) => (arrived.get(n) ?? Number.NaN) - at)
      .sort((a, b) => a - b);

    // 3. Steady state.
    await until(() => synced(NAMESPACES + NEW_NAMESPACES), 120_000, 'synced after the new namespaces');
    say('steady state: 15 s quiet window');
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const quietFrom = Date.now();
    const rss = await sampleRssMiB(operator.pid ?? 0, 15);
    const steady = auditedRequests(cluster.auditLog, USER_AGENT, quietFrom).filter((r) => r.verb !== 'watch');
    const heap = (await operatorMetric('prepull_nodejs_heap_size_used_bytes')) / 1048576;

    const creates = syncRequests.filter((r) => r.verb === 'create').length;
    const row = (label: string, value: string) => `  ${label.padEnd(52)} ${value}`;
    const lines = [
      `RegistryCredential benchmark (Kubernetes ${cluster.kubernetesVersion})`,
      row(`copies in all ${NAMESPACES} namespaces:`, `${fmt(copiesSeconds, 2)} s`),
      row(`status synced ${NAMESPACES}/${NAMESPACES} and Ready:`, `${fmt(readySeconds, 2)} s`),
      row('operator API requests for that sync:', `${syncRequests.length} (creates: ${creates})`),
      row(
        `new namespace → its secret (${NEW_NAMESPACES}, ${1000 / NEW_NAMESPACE_GAP_MS}/s):`,
        `p50 ${fmt(percentile(latencies, 50), 0)} ms, p99 ${fmt(percentile(latencies, 99), 0)} ms, max ${fmt(latencies.at(-1) ?? Number.NaN, 0)} ms`,
      ),
      row('operator API requests at steady state (15 s):', `${steady.length} (target 0)`),
      row(
        `operator RSS with ${NAMESPACES + NEW_NAMESPACES} copies:`,
        `${fmt(rss.median)} MiB median, ${fmt(rss.max)} MiB peak over 15 s (V8 heap in use ${fmt(heap)} MiB)`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await copies.stop();
    operator.kill('SIGTERM');
  }
});
