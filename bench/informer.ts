/**
 * Runtime benchmark with 1000 watched objects on a real API server: time for
 * an informer to sync, events per second from the watch through the work
 * queue to a reconciler, the queue alone, and the process's RSS.
 * Run: node bench/informer.ts   (prints figures; asserts nothing)
 */
import { pino } from 'pino';
import type { KubeClient } from '../src/kube/client.ts';
import { apiSource, Informer } from '../src/kube/informer.ts';
import { type KubeObject, keyOf } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { Controller } from '../src/runtime/controller.ts';
import { mapConcurrently } from '../src/runtime/parallel.ts';
import { WorkQueue } from '../src/runtime/queue.ts';
import { fmt, kubectl, say, until, withCluster } from './support.ts';

const OBJECTS = 1000;
const NS = 'bench-informer';
const log = pino({ level: 'silent' });
const mib = (bytes: number) => bytes / 1024 / 1024;

function configMap(i: number, value: string): KubeObject {
  // About 1 KiB of data each, like a small real ConfigMap.
  return {
    metadata: { name: `cm-${i}`, namespace: NS, labels: { bench: 'informer' } },
    data: { value, padding: 'x'.repeat(1000) },
  };
}

/** Events through the queue into a no-op reconciler, with no API server: the runtime's own ceiling. */
async function queueAlone(): Promise<number> {
  const queue = new WorkQueue<string>({ clock: systemClock });
  let reconciled = 0;
  const controller = new Controller({
    name: 'bench',
    queue,
    concurrency: 4,
    clock: systemClock,
    log,
    reconcile: async () => {
      reconciled++;
      return undefined;
    },
  });
  controller.start();
  const events = 200_000;
  const started = performance.now();
  for (let i = 0; i < events; i++) {
    queue.add(`ns/key-${i % OBJECTS}`);
    // Let workers run now and then, as watch events arrive in chunks.
    if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => queue.length === 0 && queue.processing === 0, 60_000, 'the queue to drain');
  const seconds = (performance.now() - started) / 1000;
  await controller.stop();
  say(`queue alone: ${events} adds, ${reconciled} reconciles (fewer when keys were deduplicated)`);
  return events / seconds;
}

async function againstApiServer(client: KubeClient): Promise<string[]> {
  say(`creating ${OBJECTS} ConfigMaps`);
  await mapConcurrently(
    Array.from({ length: OBJECTS }, (_, i) => i),
    32,
    (i) => client.create(Resources.configMaps, configMap(i, 'v1')),
  );
  const rssBefore = process.memoryUsage().rss;
  const informer = new Informer<KubeObject>({
    name: 'configmaps',
    source: apiSource(client, { type: Resources.configMaps, namespace: NS, labelSelector: 'bench=informer' }),
    clock: systemClock,
    log,
  });
  const queue = new WorkQueue<string>({ clock: systemClock });
  const seenV2 = new Set<string>();
  const controller = new Controller({
    name: 'bench',
    queue,
    concurrency: 4,
    clock: systemClock,
    log,
    reconcile: async (key) => {
      if ((informer.get(key)?.data as { value?: string } | undefined)?.value === 'v2') seenV2.add(key);
      return undefined;
    },
  });
  informer.addHandler({ add: (o) => queue.add(keyOf(o)), update: (_, o) => queue.add(keyOf(o)) });

  const syncStart = performance.now();
  informer.start();
  await informer.waitForSync();
  const syncMs = performance.now() - syncStart;
  controller.start();
  await until(() => queue.length === 0 && queue.processing === 0, 60_000, 'the initial keys');
  const rssSynced = process.memoryUsage().rss;

  say(`updating ${OBJECTS} ConfigMaps`);
  const updateStart = performance.now();
  await mapConcurrently(
    Array.from({ length: OBJECTS }, (_, i) => i),
    32,
    (i) => client.apply(Resources.configMaps, configMap(i, 'v2'), { fieldManager: 'bench', force: true }),
  );
  const sentMs = performance.now() - updateStart;
  await until(() => seenV2.size === OBJECTS, 120_000, 'every update to be reconciled');
  const throughMs = performance.now() - updateStart;
  await controller.stop();
  await informer.stop();

  return [
    `  informer sync (list of ${OBJECTS}):                 ${fmt(syncMs, 0)} ms`,
    `  ${OBJECTS} updates sent (32 at a time):              ${fmt(sentMs, 0)} ms`,
    `  ... all reconciled from the watch:              ${fmt(throughMs, 0)} ms = ${fmt((OBJECTS / throughMs) * 1000, 0)} events/s end to end`,
    `  ... lag of the last reconcile behind the last write: ${fmt(throughMs - sentMs, 0)} ms (the API server's write rate is the limit)`,
    `  RSS before the informer:                        ${fmt(mib(rssBefore))} MiB`,
    `  RSS with ${OBJECTS} objects cached:                  ${fmt(mib(rssSynced))} MiB (+${fmt(mib(rssSynced - rssBefore))} MiB)`,
  ];
}

const lines = await withCluster('bench-informer', 24090, { kwok: false }, async (cluster, client) => {
  kubectl(cluster, ['create', 'namespace', NS]);
  return againstApiServer(client);
});
const queueRate = await queueAlone();
process.stdout.write(
  [
    `Runtime benchmark, ${OBJECTS} watched ConfigMaps on a real API server`,
    ...lines,
    `  work queue alone (no API):                      ${fmt(queueRate, 0)} events/s`,
    '',
  ].join('\n'),
);
