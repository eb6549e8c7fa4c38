/**
 * The controller runtime against the real API server and etcd: a watch that
 * expires (410 after an etcd compaction; caught up by a watch-list, with no
 * list) and an API server restart are both survived with no lost update; two operator processes elect one leader, and
 * after kill -9 of the leader the other takes over and finishes the work.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { imageNodeEnv, imageNodeFlags } from '../../scripts/build.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { apiSource, Informer, type RestartReason } from '../../src/kube/informer.ts';
import type { KubeObject } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { releasedImage } from '../../src/version.ts';
import { eventually } from '../support/eventually.ts';
import { operatorKubeconfig } from '../support/identity.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTcpProxy } from '../support/proxy.ts';

const cluster = inject('cluster');
const admin = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const log = pino({ level: 'silent' });

function configMap(namespace: string, name: string, value: string): KubeObject {
  return { metadata: { name, namespace, labels: { 'prepull-test': 'runtime' } }, data: { value } };
}

/** The requests an informer made: lists, and watches that were watch-lists (sendInitialEvents). */
interface Requests {
  lists: number;
  watchLists: number;
}

function informerOn(
  client: KubeClient,
  namespace: string,
  restarts: RestartReason[],
  requests: Requests = { lists: 0, watchLists: 0 },
): Informer<KubeObject> {
  const api = apiSource<KubeObject>(client, {
    type: Resources.configMaps,
    namespace,
    labelSelector: 'prepull-test=runtime',
  });
  return new Informer<KubeObject>({
    name: `configmaps-${namespace}`,
    source: {
      list: (options) => {
        requests.lists++;
        return api.list(options);
      },
      watch: (options, signal) => {
        if (options.sendInitialEvents) requests.watchLists++;
        return api.watch(options, signal);
      },
    },
    clock: systemClock,
    log,
    backoff: { baseMs: 200, maxMs: 2_000 },
    onRestart: (reason) => restarts.push(reason),
  });
}

function values(informer: Informer<KubeObject>): Record<string, string> {
  return Object.fromEntries(
    informer
      .list()
      .map((cm) => [cm.metadata.name ?? '', (cm.data as { value: string }).value] as const)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

/** etcd's current revision, then a compaction up to it: older watches get 410 Gone. */
async function compactEtcd(): Promise<void> {
  const range = await fetch(`${cluster.etcdUrl}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('/registry').toString('base64'), limit: 1 }),
  });
  const revision = ((await range.json()) as { header: { revision: string } }).header.revision;
  const compacted = await fetch(`${cluster.etcdUrl}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision, physical: true }),
  });
  expect(compacted.status).toBe(200);
}

describe('informer against the real API server', () => {
  it('recovers a watch that expired (410 Gone after etcd compaction) with no lost update', async () => {
    const ns = 'runtime-gone';
    kubectl(cluster, ['create', 'namespace', ns]);
    await admin.create(Resources.configMaps, configMap(ns, 'a', '1'));
    await admin.create(Resources.configMaps, configMap(ns, 'b', '1'));

    // The informer reaches the API server through a proxy the test can cut.
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(cluster.server).port));
    const kc = loadKubeConfig(cluster.kubeconfig);
    kc.clusters[0] = { ...kc.clusters[0]!, server: `https://127.0.0.1:${proxy.port}` };
    const restarts: RestartReason[] = [];
    const requests = { lists: 0, watchLists: 0 };
    const informer = informerOn(new KubeClient(kc), ns, restarts, requests);
    informer.start();
    try {
      await informer.waitForSync();
      expect(values(informer)).toEqual({ a: '1', b: '1' });

      proxy.partition();
      // While the operator is cut off: an update, a create, a delete, then compaction.
      await admin.apply(Resources.configMaps, configMap(ns, 'a', '2'), { fieldManager: 'test', force: true });
      await admin.create(Resources.configMaps, configMap(ns, 'c', '1'));
      await admin.delete(Resources.configMaps, 'b', ns);
      await compactEtcd();
      proxy.heal();

      await eventually(() => expect(values(informer)).toEqual({ a: '2', c: '1' }), 60_000);
      expect(restarts).toContain('gone');
      // Caught up by the API server's watch-list (WatchList, on from 1.34): b's deletion came from
      // the end of its replay, and the only list was the first sync's.
      expect(requests).toEqual({ lists: 1, watchLists: 1 });
      // And it keeps watching afterwards.
      await admin.apply(Resources.configMaps, configMap(ns, 'c', '2'), { fieldManager: 'test', force: true });
      await eventually(() => expect(values(informer)).toEqual({ a: '2', c: '2' }));
    } finally {
      await informer.stop();
      await proxy.close();
    }
  });

  it('survives an API server restart mid-watch and converges', async () => {
    const ns = 'runtime-restart';
    kubectl(cluster, ['create', 'namespace', ns]);
    await admin.create(Resources.configMaps, configMap(ns, 'x', '1'));
    const restarts: RestartReason[] = [];
    const informer = informerOn(admin, ns, restarts);
    informer.start();
    try {
      await informer.waitForSync();
      expect(values(informer)).toEqual({ x: '1' });
      const restarted = await fetch(`${cluster.controlUrl}/restart/kube-apiserver`, { method: 'POST' });
      expect(restarted.status).toBe(204);
      await admin.apply(Resources.configMaps, configMap(ns, 'x', '2'), { fieldManager: 'test', force: true });
      await admin.create(Resources.configMaps, configMap(ns, 'y', '1'));
      await eventually(() => expect(values(informer)).toEqual({ x: '2', y: '1' }), 60_000);
      expect(restarts.length).toBeGreaterThan(0);
    } finally {
      await informer.stop();
    }
  });
});

describe('leader election between two operator processes', () => {
  const ns = 'runtime-leader';
  const processes = new Map<string, ChildProcess>();

  afterAll(() => {
    for (const p of processes.values()) p.kill('SIGKILL');
  });

  /**
   * deploy/'s leader-election Role and RoleBinding, in this test's namespace: the
   * replicas run as the operator's ServiceAccount, so the Role is proven to be
   * enough (and the least-privilege check sees its verbs used).
   */
  function leaderElectionRbac(): void {
    const rbac = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'rbac.yaml'), 'utf8');
    for (const doc of parseAllDocuments(rbac)) {
      const object = doc.toJS() as { kind: string; metadata: { namespace?: string } };
      if (object.kind !== 'Role' && object.kind !== 'RoleBinding') continue;
      serverSideApply(cluster, { ...object, metadata: { ...object.metadata, namespace: ns } });
    }
  }

  function startReplica(identity: string): void {
    mkdirSync(join(cluster.dir, 'operator-logs'), { recursive: true });
    const logFile = join(cluster.dir, 'operator-logs', `leader-${identity}.log`);
    writeFileSync(logFile, '');
    const out = openSync(logFile, 'a');
    const child = spawn(
      process.execPath,
      [
        // As the image runs it: its Node flags and the bundle (built by the global setup).
        ...imageNodeFlags(),
        inject('bundle'),
        'run',
        '--kubeconfig',
        operatorKubeconfig(cluster),
        '--leader-elect',
        '--leader-election-namespace',
        ns,
        '--identity',
        identity,
        '--health-address',
        '127.0.0.1:0',
        '--agent-image',
        cluster.node?.agentImage ?? releasedImage,
      ],
      { stdio: ['ignore', out, out], env: { ...process.env, ...imageNodeEnv() } },
    );
    processes.set(identity, child);
  }

  async function holder(): Promise<string | undefined> {
    const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>(
      Resources.leases,
      'prepull-operator',
      ns,
    );
    return lease?.spec?.holderIdentity || undefined;
  }

  async function ready(name: string, nodes: number): Promise<void> {
    await eventually(async () => {
      const ppi = await admin.get<KubeObject & { status?: { ready?: string } }>(
        Resources.prePulledImages,
        name,
        ns,
      );
      expect(ppi?.status?.ready).toBe(`${nodes}/${nodes}`);
    }, 120_000);
  }

  function applyPpi(name: string): void {
    const manifest = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name, namespace: ns },
      spec: {
        images: [{ image: `registry.example.com/leader/${name}:1` }],
        nodeSelector: { 'prepull-test/pool': 'leader' },
        tolerations: [KWOK_TOLERATION],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest)).status).toBe(0);
  }

  it('elects one leader; after kill -9 of the leader the other takes over and finishes the work', async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', ns]);
    leaderElectionRbac();
    createFakeNodes(cluster, 'leader', 0, 5, { 'prepull-test/pool': 'leader' });
    startReplica('replica-a');
    startReplica('replica-b');
    await eventually(async () => expect(await holder()).toMatch(/^replica-[ab]$/), 60_000);
    const first = (await holder())!;
    applyPpi('before');
    await ready('before', 5);
    // Only the leader reconciled.
    const standby = first === 'replica-a' ? 'replica-b' : 'replica-a';
    const standbyLog = () =>
      readFileSync(join(cluster.dir, 'operator-logs', `leader-${standby}.log`), 'utf8');
    expect(standbyLog()).not.toContain('applied the puller DaemonSet');

    processes.get(first)!.kill('SIGKILL');
    const killedAt = Date.now();
    applyPpi('after');
    await eventually(async () => expect(await holder()).toBe(standby), 60_000);
    await ready('after', 5);
    expect(standbyLog()).toContain('became the leader');
    process.stderr.write(
      `[runtime] standby finished the work ${((Date.now() - killedAt) / 1000).toFixed(1)}s after kill -9\n`,
    );
  });
});

describe('a leader whose API connection hangs', () => {
  const ns = 'runtime-hang';
  const processes: ChildProcess[] = [];

  afterAll(() => {
    for (const p of processes) p.kill('SIGKILL');
  });

  function replica(identity: string, kubeconfig: string): () => Array<{ time: number; msg: string }> {
    mkdirSync(join(cluster.dir, 'operator-logs'), { recursive: true });
    const logFile = join(cluster.dir, 'operator-logs', `hang-${identity}.log`);
    writeFileSync(logFile, '');
    const out = openSync(logFile, 'a');
    processes.push(
      spawn(
        process.execPath,
        [
          ...imageNodeFlags(),
          inject('bundle'),
          'run',
          '--kubeconfig',
          kubeconfig,
          '--log-level',
          'debug',
          '--leader-elect',
          '--leader-election-namespace',
          ns,
          '--identity',
          identity,
          '--health-address',
          '127.0.0.1:0',
          '--agent-image',
          cluster.node?.agentImage ?? 'prepull.local/agent:dev',
        ],
        { stdio: ['ignore', out, out], env: { ...process.env, ...imageNodeEnv() } },
      ),
    );
    return () =>
      readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { time: number; msg: string });
  }

  async function holder(): Promise<string | undefined> {
    const lease = await admin.get<KubeObject & { spec?: { holderIdentity?: string } }>(
      Resources.leases,
      'prepull-operator',
      ns,
    );
    return lease?.spec?.holderIdentity || undefined;
  }

  function applyPpi(name: string): void {
    const manifest = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name, namespace: ns },
      spec: {
        images: [{ image: `registry.example.com/hang/${name}:1` }],
        nodeSelector: { 'prepull-test/pool': 'hang' },
        tolerations: [KWOK_TOLERATION],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest)).status).toBe(0);
  }

  async function ready(name: string): Promise<void> {
    await eventually(async () => {
      const ppi = await admin.get<KubeObject & { status?: { ready?: string } }>(
        Resources.prePulledImages,
        name,
        ns,
      );
      expect(ppi?.status?.ready).toBe('3/3');
    }, 120_000);
  }

  /** What counts as reconciling in a log: the controllers' own writes and failures. */
  const RECONCILING = new Set([
    'wrote status',
    'applied the puller DaemonSet',
    'admitted a puller pod',
    'reconcile failed',
  ]);

  it('steps down before its lease can pass on: the standby never reconciles while it still does', async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', ns]);
    createFakeNodes(cluster, 'hang', 0, 3, { 'prepull-test/pool': 'hang' });
    // The leader reaches the API server only through a proxy that the test makes hang.
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(cluster.server).port));
    try {
      const viaProxy = join(cluster.dir, 'kubeconfig-hang-proxy');
      writeFileSync(
        viaProxy,
        readFileSync(cluster.kubeconfig, 'utf8').replace(cluster.server, `https://127.0.0.1:${proxy.port}`),
      );
      const leaderLog = replica('hang-a', viaProxy);
      await eventually(async () => expect(await holder()).toBe('hang-a'), 60_000);
      const standbyLog = replica('hang-b', cluster.kubeconfig);
      applyPpi('before');
      await ready('before');
      expect(leaderLog().some((l) => RECONCILING.has(l.msg))).toBe(true);

      const stalledAt = Date.now();
      proxy.stall();
      await eventually(async () => expect(await holder()).toBe('hang-b'), 60_000);
      applyPpi('after');
      await ready('after');

      const a = leaderLog();
      const b = standbyLog();
      const stepDown = a.find((l) => l.msg === 'lost the lease: stopped leading');
      const takeOver = b.find((l) => l.msg === 'became the leader');
      expect(stepDown, 'the hung leader logged its step-down').toBeDefined();
      expect(takeOver).toBeDefined();
      expect(a.some((l) => l.msg === 'lease renew got no answer before the renew deadline')).toBe(true);
      // Stepped down within the renew deadline (7 s) of the stall, plus one retry period.
      expect(stepDown!.time - stalledAt).toBeLessThan(10_000);
      // Never two leaders: the old one had stopped before the new one began...
      expect(stepDown!.time).toBeLessThan(takeOver!.time);
      // ...and nothing either reconciled overlaps: the standby's first reconcile comes after the old leader's last write.
      const lastWriteOfA = Math.max(
        ...a.filter((l) => RECONCILING.has(l.msg) && l.msg !== 'reconcile failed').map((l) => l.time),
      );
      const firstOfB = Math.min(...b.filter((l) => RECONCILING.has(l.msg)).map((l) => l.time));
      expect(b.filter((l) => RECONCILING.has(l.msg)).length).toBeGreaterThan(0);
      expect(lastWriteOfA).toBeLessThan(firstOfB);
      expect(b.filter((l) => RECONCILING.has(l.msg) && l.time < takeOver!.time)).toEqual([]);
      process.stderr.write(
        `[runtime] hung leader stepped down ${((stepDown!.time - stalledAt) / 1000).toFixed(1)}s after the stall; standby led ${((takeOver!.time - stepDown!.time) / 1000).toFixed(1)}s later\n`,
      );
    } finally {
      await proxy.close();
    }
  });
});
