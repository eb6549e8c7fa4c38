/**
 * A real Kubernetes cluster on loopback, from binaries that build.sh made:
 * etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok for fake
 * nodes, and optionally the real node (kubelet + containerd). Everything lives
 * under one directory; stop() leaves no process, mount, bridge or cgroup.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  buildOciImage,
  buildOciIndex,
  holdBinary,
  OCI_INDEX,
  OCI_MANIFEST,
  type OciImage,
} from './images.ts';
import { POD_GATEWAY, type RealNode, startRealNode } from './node.ts';
import { ensureCa, ensureServiceAccountKey, issueCertificate, type KeyPair, writeKubeconfig } from './pki.ts';
import { killMentioning, type Supervised, startProcess, stopProcess, waitUntilReady } from './process.ts';
import { pushBlob, pushManifest, type Registry, startRegistry } from './registry.ts';
import type { ClusterInfo, RealNodeInfo, RegistryInfo, TestImage, TestImageName } from './types.ts';

export interface ClusterOptions {
  /** Names the directory, /tmp/prepull-<name>. Default `test`. */
  name?: string;
  /** Start kwok for fake nodes annotated `kwok.x-k8s.io/node: fake`. */
  kwok?: boolean;
  /** Start the password-protected registry and push the test images. */
  registry?: boolean;
  /** Start the real node with this runtime. */
  realNode?: RealNodeInfo['runtime'];
  /** First of the loopback ports this cluster uses (it takes a block of 10). */
  basePort?: number;
  /** Log progress lines here (the run command shows them). */
  progress?: (line: string) => void;
  /** More kube-controller-manager flags (the benchmarks lift its limits for thousands of nodes). */
  controllerManagerFlags?: string[];
  /** More kube-apiserver flags, after the harness's own (a repeated flag's last value wins). */
  apiServerFlags?: string[];
  /** More kube-scheduler flags. */
  schedulerFlags?: string[];
  /** More kwok flags, after the harness's own (e.g. a longer node lease for thousands of nodes). */
  kwokFlags?: string[];
}

export interface Cluster {
  info: ClusterInfo;
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** Stops kube-apiserver and starts it again on the same etcd, port and flags. */
  restartApiServer(): Promise<void>;
  /**
   * Registers the real node anew: stops its kubelet, deletes its Node object
   * and starts the kubelet with `--register-with-taints` (none: as at start),
   * as a node joining the cluster does; resolves once the node is back (not
   * necessarily Ready). Its pods are gone with the old Node object.
   */
  reregisterRealNode(taints: string[]): Promise<void>;
  /**
   * Restarts the real node's kubelet and nothing else: the Node object and
   * its pods stay. Resolves once the kubelet answers its health check. What
   * the kubelet caches in memory (such as its 5-minute cache of config.json)
   * starts empty.
   */
  restartKubelet(): Promise<void>;
}

function readVersions(): Record<string, string> {
  const text = readFileSync(join(import.meta.dirname, 'versions.env'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The cache directory build.sh wrote a component into. */
export function cachedBinDir(
  component: 'kubernetes' | 'kube-proxy' | 'etcd' | 'kwok' | 'containerd' | 'helm' | 'tokenserver' | 'crictl',
): string {
  const versions = readVersions();
  // kube-proxy is built from the Kubernetes source, at its version.
  const version = versions[`${component === 'kube-proxy' ? 'KUBERNETES' : component.toUpperCase()}_VERSION`];
  return join(process.env.PREPULL_CACHE ?? join(homedir(), '.cache', 'prepull'), `${component}-${version}`);
}

/** GET over TLS with a client certificate; resolves with the status code and body. */
function httpsGet(url: string, ca: string, client: KeyPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key), timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Service ClusterIPs; the first is the `kubernetes` Service's. */
const SERVICE_CIDR = '10.96.0.0/16';
const KUBERNETES_SERVICE_IP = '10.96.0.1';

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Heartbeats of the real and fake nodes would drown everything else.
  - level: None
    userGroups: ["system:nodes"]
  - level: None
    users: ["kwok"]
  - level: Metadata
`;

/** Starts the cluster; on failure, stops what it started and throws with the failing component's log. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const name = options.name ?? 'test';
  const dir = `/tmp/prepull-${name}`;
  const port = options.basePort ?? 23790;
  const ports = {
    etcdClient: port,
    etcdPeer: port + 1,
    apiserver: port + 2,
    kcm: port + 3,
    scheduler: port + 4,
    kwok: port + 5,
    registry: port + 6,
    /** Free for tiers that start servers of their own (a second registry, a token server). */
    spare: [port + 7, port + 8, port + 9],
  };
  const say = options.progress ?? (() => {});
  const k8sBin = cachedBinDir('kubernetes');
  const server = `https://127.0.0.1:${ports.apiserver}`;

  // A crashed earlier run of the same cluster may have left processes behind.
  killMentioning(`${dir}/`);
  const logDir = join(dir, 'logs');
  const pki = join(dir, 'pki');
  rmSync(join(dir, 'etcd'), { recursive: true, force: true });
  rmSync(logDir, { recursive: true, force: true });
  rmSync(join(dir, 'audit.log'), { force: true });
  mkdirSync(logDir, { recursive: true });
  mkdirSync(pki, { recursive: true });

  const ca = ensureCa(pki);
  const sa = ensureServiceAccountKey(pki);
  const serving = issueCertificate(ca, {
    dir: pki,
    name: 'apiserver',
    subject: '/CN=kube-apiserver',
    sans: [
      'IP:127.0.0.1',
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      'DNS:kubernetes.default.svc.cluster.local',
      // The `kubernetes` Service's ClusterIP and the pod bridge: how pods on the real node reach it.
      `IP:${KUBERNETES_SERVICE_IP}`,
      `IP:${POD_GATEWAY}`,
    ],
    usage: 'server',
  });
  const admin = issueCertificate(ca, {
    dir: pki,
    name: 'admin',
    subject: '/O=system:masters/CN=admin',
    usage: 'client',
  });
  const kubeletClient = issueCertificate(ca, {
    dir: pki,
    name: 'apiserver-kubelet-client',
    subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
    usage: 'client',
  });
  const kcm = issueCertificate(ca, {
    dir: pki,
    name: 'kcm',
    subject: '/CN=system:kube-controller-manager',
    usage: 'client',
  });
  const scheduler = issueCertificate(ca, {
    dir: pki,
    name: 'scheduler',
    subject: '/CN=system:kube-scheduler',
    usage: 'client',
  });
  const kwokCert = issueCertificate(ca, {
    dir: pki,
    name: 'kwok',
    subject: '/O=system:masters/CN=kwok',
    usage: 'client',
  });
  const kubeconfig = join(dir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfig, server, ca.cert, admin, 'admin');
  writeKubeconfig(join(dir, 'kcm.kubeconfig'), server, ca.cert, kcm, 'system:kube-controller-manager');
  writeKubeconfig(join(dir, 'scheduler.kubeconfig'), server, ca.cert, scheduler, 'system:kube-scheduler');
  writeKubeconfig(join(dir, 'kwok.kubeconfig'), server, ca.cert, kwokCert, 'kwok');
  writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);

  const started: Supervised[] = [];
  let restartApiServer = async (): Promise<void> => {
    throw new Error('kube-apiserver is not running');
  };
  let realNode: RealNode | undefined;
  let reregisterRealNode = async (_taints: string[]): Promise<void> => {
    throw new Error('this cluster has no real node');
  };
  let restartKubelet = async (): Promise<void> => {
    throw new Error('this cluster has no real node');
  };
  let registry: Registry | undefined;
  let registryInfo: RegistryInfo | undefined;
  const stop = async (stopOptions?: { keepDir?: boolean }) => {
    await realNode?.stop();
    await registry?.stop();
    for (const p of [...started].reverse()) await stopProcess(p);
    killMentioning(`${dir}/`);
    if (stopOptions?.keepDir === false) rmSync(dir, { recursive: true, force: true });
  };

  try {
    say('starting etcd');
    const etcd = startProcess(
      'etcd',
      join(cachedBinDir('etcd'), 'etcd'),
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${ports.etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${ports.etcdPeer}`,
        // A test cluster need not survive a power cut; fsync dominates its latency.
        '--unsafe-no-fsync',
        '--quota-backend-bytes=4294967296',
      ],
      logDir,
    );
    started.push(etcd);
    await waitUntilReady(
      etcd,
      'etcd',
      async () => (await fetch(`http://127.0.0.1:${ports.etcdClient}/health`)).ok,
      60_000,
    );

    say('starting kube-apiserver');
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
      // With the real node, pods reach the API server as on any cluster: the
      // `kubernetes` Service (kube-proxy on the node) points at the pod bridge's
      // address, where the API server listens too. Without it, loopback only, and
      // no endpoints (they cannot be loopback).
      ...(options.realNode
        ? ['--bind-address=0.0.0.0', `--advertise-address=${POD_GATEWAY}`]
        : ['--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none']),
      `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${ca.cert}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${sa.pub}`,
      `--service-account-signing-key-file=${sa.key}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--kubelet-client-certificate=${kubeletClient.cert}`,
      `--kubelet-client-key=${kubeletClient.key}`,
      `--kubelet-certificate-authority=${ca.cert}`,
      // The real node is `localhost`: logs and exec reach its kubelet on loopback.
      '--kubelet-preferred-address-types=Hostname',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`,
      `--audit-log-path=${join(dir, 'audit.log')}`,
      '--audit-log-maxsize=200',
      '--profiling=false',
      // No watch cache for ConfigMaps: their watches go to etcd itself, so a test
      // can compact etcd and see a real 410 Gone (the runtime tier does).
      '--watch-cache-sizes=configmaps#0',
      ...(options.apiServerFlags ?? []),
    ];
    const startApiServer = async (): Promise<Supervised> => {
      const p = startProcess('kube-apiserver', join(k8sBin, 'kube-apiserver'), apiserverArgs, logDir);
      started.push(p);
      await waitUntilReady(
        p,
        'kube-apiserver',
        async () => (await httpsGet(`${server}/readyz`, ca.cert, admin)).status === 200,
        90_000,
      );
      return p;
    };
    let apiserver = await startApiServer();
    restartApiServer = async () => {
      await stopProcess(apiserver);
      started.splice(started.indexOf(apiserver), 1);
      apiserver = await startApiServer();
    };

    say('starting kube-controller-manager and kube-scheduler');
    const controllerManager = startProcess(
      'kube-controller-manager',
      join(k8sBin, 'kube-controller-manager'),
      [
        `--kubeconfig=${join(dir, 'kcm.kubeconfig')}`,
        `--authentication-kubeconfig=${join(dir, 'kcm.kubeconfig')}`,
        `--authorization-kubeconfig=${join(dir, 'kcm.kubeconfig')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.kcm}`,
        // Without it the controllers lack RBAC and the node's not-ready taint is never lifted.
        '--use-service-account-credentials=true',
        '--controllers=*,-nodeipam',
        `--root-ca-file=${ca.cert}`,
        `--service-account-private-key-file=${sa.key}`,
        `--cluster-signing-cert-file=${ca.cert}`,
        `--cluster-signing-key-file=${ca.key}`,
        '--leader-elect=false',
        ...(options.controllerManagerFlags ?? []),
      ],
      logDir,
    );
    started.push(controllerManager);
    const kubeScheduler = startProcess(
      'kube-scheduler',
      join(k8sBin, 'kube-scheduler'),
      [
        `--kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
        `--authentication-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
        `--authorization-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${ports.scheduler}`,
        '--leader-elect=false',
        ...(options.schedulerFlags ?? []),
      ],
      logDir,
    );
    started.push(kubeScheduler);
    const kubectl = (args: string[]) =>
      execFileSync(join(k8sBin, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    // The default ServiceAccount appears once the controllers run.
    await waitUntilReady(
      controllerManager,
      'kube-controller-manager',
      () => kubectl(['get', 'serviceaccount', 'default', '-o', 'name']).includes('default'),
      60_000,
    );

    if (options.kwok) {
      say('starting kwok');
      const kwok = startProcess(
        'kwok',
        join(cachedBinDir('kwok'), 'kwok'),
        [
          `--kubeconfig=${join(dir, 'kwok.kubeconfig')}`,
          '--manage-all-nodes=false',
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          // Heartbeats as Lease renewals: at 1000 nodes, status heartbeats fall behind on 2 cores.
          '--node-lease-duration-seconds=40',
          `--server-address=127.0.0.1:${ports.kwok}`,
          ...(options.kwokFlags ?? []),
        ],
        logDir,
      );
      started.push(kwok);
      await waitUntilReady(
        kwok,
        'kwok',
        async () => (await fetch(`http://127.0.0.1:${ports.kwok}/healthz`)).ok,
        60_000,
      );
    }

    if (options.registry) {
      say('starting the registry and pushing the test images');
      registry = await startRegistry({ dir, port: ports.registry, ca });
      const { stop: _, ...reachable } = registry;
      registryInfo = { ...reachable, images: await pushTestImages(dir, registry) };
    }

    if (options.realNode) {
      say(`starting the real node (kubelet + ${options.realNode})`);
      realNode = await startRealNode({
        dir,
        runtime: options.realNode,
        kubernetesBinDir: k8sBin,
        kubeProxyBinDir: cachedBinDir('kube-proxy'),
        server,
        ca,
        registries: registry ? [{ host: registry.host, caFile: registry.caFile }] : [],
      });
      await waitUntilReady(
        undefined,
        'node localhost Ready',
        () =>
          kubectl([
            'get',
            'node',
            'localhost',
            '-o',
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          ]) === 'True',
        120_000,
        join(logDir, 'kubelet.log'),
      );
      // The controller manager lifts the not-ready taint shortly after Ready.
      await waitUntilReady(
        undefined,
        'node localhost untainted',
        () => !kubectl(['get', 'node', 'localhost', '-o', 'jsonpath={.spec.taints}']).includes('not-ready'),
        60_000,
        join(logDir, 'kube-controller-manager.log'),
      );
      const node = realNode;
      restartKubelet = () => node.restartKubelet([]);
      reregisterRealNode = async (taints) => {
        await node.restartKubelet(taints, async () => {
          kubectl(['delete', 'node', 'localhost', '--ignore-not-found', '--wait=true']);
        });
        await waitUntilReady(
          undefined,
          'node localhost registered',
          () =>
            kubectl(['get', 'node', 'localhost', '-o', 'name', '--ignore-not-found']).includes('localhost'),
          60_000,
          join(logDir, 'kubelet.log'),
        );
      };
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const info: ClusterInfo = {
    dir,
    kubeconfig,
    server,
    kubernetesVersion: readVersions().KUBERNETES_VERSION!,
    binDir: k8sBin,
    kwok: options.kwok ?? false,
    auditLog: join(dir, 'audit.log'),
    etcdUrl: `http://127.0.0.1:${ports.etcdClient}`,
    sparePorts: ports.spare,
    ...(realNode ? { node: realNode.info } : {}),
    ...(registryInfo ? { registry: registryInfo } : {}),
  };
  say('cluster ready');
  return {
    info,
    stop,
    restartApiServer: () => restartApiServer(),
    reregisterRealNode: (taints) => reregisterRealNode(taints),
    restartKubelet: () => restartKubelet(),
  };
}

/** Builds and pushes the test images; each comes back with the digest the registry serves. */
async function pushTestImages(dir: string, registry: Registry): Promise<Record<TestImageName, TestImage>> {
  const workDir = join(dir, 'images');
  const hold = holdBinary('amd64');
  const specs: Record<
    Exclude<TestImageName, 'noamd64index'>,
    {
      files: { path: string; content: Buffer | string; mode: number }[];
      moreLayers?: { path: string; content: Buffer | string; mode: number }[][];
      entrypoint?: string[];
      arch?: string;
    }
  > = {
    hold: { files: [{ path: 'hold', content: hold, mode: 0o755 }], entrypoint: ['/hold'] },
    scratch: {
      files: [{ path: 'data/readme.txt', content: 'an image with no binary and no shell\n', mode: 0o644 }],
    },
    arm64only: {
      files: [{ path: 'hold', content: holdBinary('arm64'), mode: 0o755 }],
      entrypoint: ['/hold'],
      arch: 'arm64',
    },
    shell: {
      // A shell image with no network: Debian's static busybox, `sh` linked to it.
      files: [
        { path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
        { path: 'bin/sh', content: '#!/bin/busybox sh\n', mode: 0o755 },
        { path: 'hold', content: hold, mode: 0o755 },
      ],
      entrypoint: ['/hold'],
    },
    multilayer: {
      files: [{ path: 'hold', content: hold, mode: 0o755 }],
      moreLayers: [
        [{ path: 'data/one.txt', content: 'layer two\n', mode: 0o644 }],
        [{ path: 'data/two.txt', content: 'layer three\n', mode: 0o644 }],
      ],
      entrypoint: ['/hold'],
    },
    movable: {
      files: [
        { path: 'hold', content: hold, mode: 0o755 },
        { path: 'generation', content: '1\n', mode: 0o644 },
      ],
      entrypoint: ['/hold'],
    },
  };
  const images = {} as Record<TestImageName, TestImage>;
  const push = async (repo: string, image: OciImage, reference: string) => {
    for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
    return pushManifest(registry, repo, reference, OCI_MANIFEST, image.manifest);
  };
  for (const [name, spec] of Object.entries(specs) as [
    keyof typeof specs,
    (typeof specs)[keyof typeof specs],
  ][]) {
    const repo = `prepull-test/${name}`;
    images[name] = {
      ref: `${registry.host}/${repo}:v1`,
      digest: await push(repo, buildOciImage({ workDir, ...spec }), 'v1'),
    };
  }
  // A multi-platform index with no amd64 variant: the kubelet finds no match for an amd64 node.
  const variants = [
    buildOciImage({
      workDir,
      arch: 'arm64',
      files: [{ path: 'hold', content: holdBinary('arm64'), mode: 0o755 }],
      entrypoint: ['/hold'],
    }),
    buildOciImage({
      workDir,
      arch: 's390x',
      files: [{ path: 'data/readme.txt', content: 's390x\n', mode: 0o644 }],
    }),
  ];
  const repo = 'prepull-test/noamd64index';
  for (const variant of variants)
    await push(repo, variant, `sha256:${createHash('sha256').update(variant.manifest).digest('hex')}`);
  images.noamd64index = {
    ref: `${registry.host}/${repo}:v1`,
    digest: await pushManifest(registry, repo, 'v1', OCI_INDEX, buildOciIndex(variants)),
  };
  return images;
}
