/**
 * The real node: containerd (2.x built from the Go module proxy, or Debian's
 * 1.6) with runc and CNI, and a kubelet named `localhost`, all with their own
 * files under the cluster directory. See HARNESS-NOTES.md for why each setting
 * is what it is.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { buildDockerArchive, holdBinary, type ReleaseImage, releaseImage } from './images.ts';
import { issueCertificate, type KeyPair, writeKubeconfig } from './pki.ts';
import { killMentioning, pidsMentioning, startProcess, stopProcess, waitUntilReady } from './process.ts';
import type { RealNodeInfo } from './types.ts';

export interface RealNodeOptions {
  /** The cluster directory; the node keeps everything under `<dir>/node`. */
  dir: string;
  runtime: RealNodeInfo['runtime'];
  /** Directory with the kubelet binary. */
  kubernetesBinDir: string;
  /** Directory with the kube-proxy binary (built from the same Kubernetes source). */
  kubeProxyBinDir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The cluster CA, which signs the kubelet's client and serving certificates. */
  ca: KeyPair;
  /** Registries the node trusts, by host:port, with the CA that signed them. */
  registries?: { host: string; caFile: string }[];
}

export interface RealNode {
  info: RealNodeInfo;
  /** Imports a docker or OCI archive into the node's `k8s.io` namespace. */
  importArchive(archive: string): void;
  /**
   * Stops the kubelet, runs `between` (which may delete the Node object, so
   * that the kubelet registers it anew), and starts it again with these
   * `--register-with-taints` taints (`key[=value]:Effect`); none, as at start.
   * The kubelet applies them only when it creates its Node object.
   */
  restartKubelet(registerWithTaints: string[], between?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

const NODE_NAME = 'localhost';
const BRIDGE = 'prepull0';
const POD_SUBNET = '10.88.0.0/16';
/** The bridge's address: the node as pods see it, and where they reach the API server. */
export const POD_GATEWAY = '10.88.0.1';
const KUBELET_PORT = 10250;
const KUBELET_HEALTHZ_PORT = 10248;
/** kube-proxy's own defaults: one real node fits on a machine, so fixed ports do too. */
const KUBE_PROXY_METRICS_PORT = 10249;
const KUBE_PROXY_HEALTHZ_PORT = 10256;
const PAUSE_REF = 'registry.k8s.io/pause:prepull';

/**
 * `repository@digest`: how containerd's CRI looks up a `name:tag@digest`
 * reference (the tag is dropped), so the image needs that name too.
 */
function digestReference(image: ReleaseImage): string {
  return `${image.name.slice(0, image.name.lastIndexOf(':'))}@${image.indexDigest}`;
}

/** Where the binaries of each runtime live. */
function runtimeBinDir(runtime: RealNodeInfo['runtime']): string {
  if (runtime === 'containerd16') return '/usr/bin';
  const versions = readFileSync(join(import.meta.dirname, 'versions.env'), 'utf8');
  const version = /^CONTAINERD_VERSION=(\S+)/m.exec(versions)?.[1];
  return join(process.env.PREPULL_CACHE ?? join(homedir(), '.cache', 'prepull'), `containerd-${version}`);
}

function containerdConfig(
  root: string,
  socket: string,
  registryConfigDir: string,
  cniConfDir: string,
): string {
  // Version 2 is what containerd 1.6 reads; 2.x migrates it on load.
  return `version = 2
root = "${root}/root"
state = "${root}/state"

[grpc]
  address = "${socket}"

[ttrpc]
  address = "${socket}.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_REF}"
  # The sandbox lacks CAP_SYS_RESOURCE: without this, runc fails to lower oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cniConfDir}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${registryConfigDir}"
`;
}

function cniConfig(dataDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'prepull',
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          // A default route through the node, so Service ClusterIPs (kube-proxy's rules on the node) are reachable.
          isDefaultGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], dataDir },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: {
  caCert: string;
  serving: { cert: string; key: string };
  socket: string;
  podLogsDir: string;
}): string {
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: '127.0.0.1',
      port: KUBELET_PORT,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: KUBELET_HEALTHZ_PORT,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: o.caCert },
      },
      authorization: { mode: 'Webhook' },
      tlsCertFile: o.serving.cert,
      tlsPrivateKeyFile: o.serving.key,
      cgroupDriver: 'cgroupfs',
      failSwapOn: false,
      failCgroupV1: false,
      containerRuntimeEndpoint: `unix://${o.socket}`,
      serializeImagePulls: false,
      // The test machine's disk may be fuller than a real node's; never evict for it.
      evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      resolvConf: '/etc/resolv.conf',
      clusterDomain: 'cluster.local',
      podPidsLimit: 1024,
      maxPods: 50,
      registerNode: true,
      podLogsDir: o.podLogsDir,
    },
    null,
    2,
  );
}

/**
 * Makes the node's containerd trust `registry` (its CA, over TLS): a
 * hosts.toml under `registryConfigDir` (its config_path, `<dir>/node/certs.d`),
 * read at each pull, so a tier may add a registry of its own to a running
 * node. Returns the directories written, for the tier to remove.
 */
export function trustRegistry(
  registryConfigDir: string,
  registry: { host: string; caFile: string },
): string[] {
  // containerd looks up `host:port` directories; the `_` form is for 1.6's older lookup.
  const dirs = [
    join(registryConfigDir, registry.host),
    join(registryConfigDir, registry.host.replace(':', '_')),
  ];
  for (const d of dirs) {
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'hosts.toml'),
      `server = "https://${registry.host}"\n\n[host."https://${registry.host}"]\n  capabilities = ["pull", "resolve", "push"]\n  ca = "${registry.caFile}"\n`,
    );
  }
  return dirs;
}

/** Starts containerd and the kubelet; resolves once the kubelet answers /healthz. */
export async function startRealNode(options: RealNodeOptions): Promise<RealNode> {
  const base = join(options.dir, 'node');
  const logDir = join(options.dir, 'logs');
  const pki = join(base, 'pki');
  const containerdRoot = join(base, 'containerd');
  const cniConfDir = join(base, 'cni', 'net.d');
  const cniDataDir = join(base, 'cni', 'ipam');
  const registryConfigDir = join(base, 'certs.d');
  const kubeletRoot = join(base, 'kubelet');
  for (const d of [
    base,
    logDir,
    pki,
    containerdRoot,
    cniConfDir,
    cniDataDir,
    registryConfigDir,
    kubeletRoot,
  ]) {
    mkdirSync(d, { recursive: true });
  }
  // Short: unix socket paths are limited to 108 bytes.
  const socket = join(options.dir, 'containerd.sock');
  const binDir = runtimeBinDir(options.runtime);
  const ctr = join(binDir, 'ctr');
  const env = { ...process.env, PATH: `${binDir}:/usr/sbin:/usr/bin:/sbin:/bin` };

  const kubeProxyBin = join(options.kubeProxyBinDir, 'kube-proxy');
  await cleanUpNodeLeftovers(options.dir, socket, kubeProxyBin);

  writeFileSync(
    join(base, 'containerd.toml'),
    containerdConfig(containerdRoot, socket, registryConfigDir, cniConfDir),
  );
  writeFileSync(join(cniConfDir, '10-prepull.conflist'), cniConfig(cniDataDir));
  for (const registry of options.registries ?? []) trustRegistry(registryConfigDir, registry);

  const containerd = startProcess(
    'containerd',
    join(binDir, 'containerd'),
    ['--config', join(base, 'containerd.toml')],
    logDir,
    env,
  );
  const ctrArgs = (args: string[]) => ['--address', socket, '--namespace', 'k8s.io', ...args];
  await waitUntilReady(
    containerd,
    'containerd',
    () => {
      execFileSync(ctr, ['--address', socket, 'version'], { stdio: 'pipe', env });
      return true;
    },
    60_000,
  );

  // Every run starts from the same node: no image an earlier run pulled or
  // imported, and no kubelet pull records. Since Kubernetes 1.35 those records
  // decide which pods may use an image already on the node (one pulled with
  // node credentials is open to every pod), so a leftover one changes tests.
  const leftovers = execFileSync(ctr, ctrArgs(['images', 'ls', '-q']), {
    encoding: 'utf8',
    stdio: 'pipe',
    env,
  })
    .split('\n')
    .filter(Boolean);
  if (leftovers.length > 0)
    execFileSync(ctr, ctrArgs(['images', 'rm', ...leftovers]), { stdio: 'pipe', env });
  rmSync(join(kubeletRoot, 'image_manager'), { recursive: true, force: true });

  const importArchive = (archive: string) => {
    // --local avoids ctr 2.x's transfer service, which containerd 1.6 lacks.
    const local = options.runtime === 'containerd2' ? ['--local'] : [];
    execFileSync(ctr, ctrArgs(['images', 'import', ...local, archive]), { stdio: 'pipe', env });
  };

  // No image can come from the internet: the sandbox image is our hold binary.
  const pauseArchive = await buildDockerArchive({
    workDir: join(base, 'images'),
    ref: PAUSE_REF,
    files: [{ path: 'pause', content: holdBinary('amd64'), mode: 0o755 }],
    entrypoint: ['/pause'],
  });
  importArchive(pauseArchive);
  // The Prepull image as released (scripts/build-image.sh), under its release
  // name, what the operator and `prepull load` use by default, and by digest,
  // the name the tests give the operator. Imported, so pods run it with
  // IfNotPresent and no registry, as on an air-gapped node.
  const release = releaseImage();
  importArchive(release.archive);
  execFileSync(ctr, ctrArgs(['images', 'tag', '--force', release.name, digestReference(release)]), {
    stdio: 'pipe',
    env,
  });
  const images = execFileSync(ctr, ctrArgs(['images', 'ls', '-q']), { encoding: 'utf8', stdio: 'pipe', env });
  for (const ref of [release.name, digestReference(release)]) {
    // An import that names nothing exits 0 (HARNESS-NOTES): check.
    if (!images.split('\n').includes(ref))
      throw new Error(`importing ${release.archive} gave no image ${ref}`);
  }

  const client = issueCertificate(options.ca, {
    dir: pki,
    name: 'kubelet-client',
    subject: `/O=system:nodes/CN=system:node:${NODE_NAME}`,
    usage: 'client',
  });
  const serving = issueCertificate(options.ca, {
    dir: pki,
    name: 'kubelet-serving',
    subject: `/CN=${NODE_NAME}`,
    sans: ['DNS:localhost', 'IP:127.0.0.1'],
    usage: 'server',
  });
  writeKubeconfig(
    join(base, 'kubelet.kubeconfig'),
    options.server,
    options.ca.cert,
    client,
    `system:node:${NODE_NAME}`,
  );
  writeFileSync(
    join(base, 'kubelet.json'),
    kubeletConfig({ caCert: options.ca.cert, serving, socket, podLogsDir: join(base, 'pod-logs') }),
  );

  // The bridge exists from the start (the CNI plugin adopts it), so the node is
  // reachable from pods at the gateway address before the first pod runs.
  try {
    execFileSync('ip', ['link', 'del', BRIDGE], { stdio: 'pipe' }); // left by a run that was killed
  } catch {
    // None: the usual case.
  }
  execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge'], { stdio: 'pipe' });
  execFileSync('ip', ['addr', 'add', `${POD_GATEWAY}/16`, 'dev', BRIDGE], { stdio: 'pipe' });
  execFileSync('ip', ['link', 'set', BRIDGE, 'up'], { stdio: 'pipe' });

  const startKubelet = async (registerWithTaints: string[]) => {
    const started = startProcess(
      'kubelet',
      join(options.kubernetesBinDir, 'kubelet'),
      [
        `--config=${join(base, 'kubelet.json')}`,
        `--kubeconfig=${join(base, 'kubelet.kubeconfig')}`,
        `--root-dir=${kubeletRoot}`,
        `--cert-dir=${pki}`,
        `--hostname-override=${NODE_NAME}`,
        '--node-labels=prepull.dev/test-node=real',
        ...(registerWithTaints.length > 0 ? [`--register-with-taints=${registerWithTaints.join(',')}`] : []),
        '--v=2',
      ],
      logDir,
      env,
    );
    await waitUntilReady(
      started,
      'kubelet',
      async () => (await fetch(`http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz`)).ok,
      90_000,
    );
    return started;
  };
  let kubelet = await startKubelet([]);

  // kube-proxy makes the node's Services work, the `kubernetes` one first: a
  // pod's in-cluster configuration reaches the API server through it, as on
  // any cluster (iptables mode; nothing here needs more).
  const proxyClient = issueCertificate(options.ca, {
    dir: pki,
    name: 'kube-proxy',
    subject: '/CN=system:kube-proxy',
    usage: 'client',
  });
  writeKubeconfig(
    join(base, 'kube-proxy.kubeconfig'),
    options.server,
    options.ca.cert,
    proxyClient,
    'system:kube-proxy',
  );
  const kubeProxy = startProcess(
    'kube-proxy',
    kubeProxyBin,
    [
      `--kubeconfig=${join(base, 'kube-proxy.kubeconfig')}`,
      `--hostname-override=${NODE_NAME}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${POD_SUBNET}`,
      // Leave the machine's conntrack table size alone.
      '--conntrack-max-per-core=0',
      // NodePorts on the node's primary address only, not on loopback or the bridge.
      '--nodeport-addresses=primary',
      `--metrics-bind-address=127.0.0.1:${KUBE_PROXY_METRICS_PORT}`,
      `--healthz-bind-address=127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}`,
      '--v=1',
    ],
    logDir,
    env,
  );
  // Healthy once it has programmed the Services it saw at start.
  await waitUntilReady(
    kubeProxy,
    'kube-proxy',
    async () => (await fetch(`http://127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}/healthz`)).ok,
    60_000,
  );

  return {
    info: {
      name: NODE_NAME,
      runtime: options.runtime,
      containerdSocket: socket,
      ctr,
      agentImage: release.pinned,
      podGateway: POD_GATEWAY,
    },
    importArchive,
    async restartKubelet(registerWithTaints, between) {
      await stopProcess(kubelet);
      await between?.();
      kubelet = await startKubelet(registerWithTaints);
    },
    async stop() {
      await stopProcess(kubeProxy);
      await stopProcess(kubelet);
      killPodProcesses();
      stopShims(socket);
      await stopProcess(containerd);
      await cleanUpNodeLeftovers(options.dir, socket, kubeProxyBin);
    },
  };
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Every kubepods cgroup directory in every hierarchy, deepest first. */
function podCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
    }
    found.push(dir);
  };
  if (!existsSync(CGROUP_ROOT)) return found;
  for (const hierarchy of readdirSync(CGROUP_ROOT)) {
    const kubepods = join(CGROUP_ROOT, hierarchy, 'kubepods');
    if (existsSync(kubepods)) walk(kubepods);
    const kubepodsSlice = join(CGROUP_ROOT, hierarchy, 'kubepods.slice');
    if (existsSync(kubepodsSlice)) walk(kubepodsSlice);
  }
  return found;
}

/** SIGKILLs every process in the pods' cgroups: containers outlive their shims otherwise. */
function killPodProcesses(): void {
  for (const cgroup of podCgroups()) {
    const procs = join(cgroup, 'cgroup.procs');
    if (!existsSync(procs)) continue;
    for (const pid of readFileSync(procs, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
  }
}

function stopShims(socket: string): void {
  for (const pid of pidsMentioning(socket)) {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('containerd-shim')) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

/**
 * Leaves nothing behind from this node or a crashed earlier run in the same
 * directory: processes, mounts, network namespaces, the bridge, cgroups,
 * kube-proxy's iptables rules.
 */
export async function cleanUpNodeLeftovers(dir: string, socket: string, kubeProxyBin: string): Promise<void> {
  killMentioning(socket);
  killMentioning(join(dir, 'node', 'kubelet'));
  killMentioning(join(dir, 'node', 'kube-proxy.kubeconfig'));
  // kube-proxy's iptables chains outlive it; its own clean-up removes them.
  try {
    execFileSync(kubeProxyBin, ['--cleanup'], { stdio: 'pipe' });
  } catch {}
  killPodProcesses();
  // Mounts under our directory, deepest first; lazy so a busy one still goes.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => mountPoint?.startsWith(`${dir}/`) === true)
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    } catch {}
  }
  // Network namespaces the CNI made for our pods (containerd names them cni-*).
  for (const netnsDir of ['/run/netns', '/var/run/netns']) {
    if (!existsSync(netnsDir)) continue;
    for (const ns of readdirSync(netnsDir).filter((n) => n.startsWith('cni-'))) {
      try {
        execFileSync('umount', ['-l', join(netnsDir, ns)], { stdio: 'pipe' });
      } catch {}
      try {
        execFileSync('rm', ['-f', join(netnsDir, ns)], { stdio: 'pipe' });
      } catch {}
    }
  }
  try {
    execFileSync('ip', ['link', 'del', BRIDGE], { stdio: 'pipe' });
  } catch {}
  for (let attempt = 0; attempt < 20; attempt++) {
    let left = 0;
    for (const cgroup of podCgroups()) {
      try {
        rmdirSync(cgroup);
      } catch {
        left++;
      }
    }
    if (left === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
