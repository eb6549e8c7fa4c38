/**
 * What the harness hands to tests and to `npm start`. Plain data, so vitest's
 * global setup can `provide` it to test files (which run in other processes).
 */
export interface ClusterInfo {
  /** Directory holding every file of this cluster: certs, logs, state. */
  dir: string;
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Kubernetes version the binaries report, e.g. v1.36.3. */
  kubernetesVersion: string;
  /** Directory with kubectl and the other cached binaries. */
  binDir: string;
  /** The real node, when started. */
  node?: RealNodeInfo;
  /** The password-protected registry, when started. */
  registry?: RegistryInfo;
  /** The API server's audit log (metadata level; node heartbeats left out). */
  auditLog: string;
  /** etcd's client URL (plain HTTP on loopback), for tests that compact it. */
  etcdUrl: string;
  /** Loopback ports of this cluster's block that no component uses: a tier may start its own servers there. */
  sparePorts: number[];
  /**
   * The global setup's control endpoint: `POST /restart/kube-apiserver` restarts the API server,
   * `POST /restart/kubelet` the real node's kubelet (node and pods stay), `POST /reregister/node`
   * registers the real node anew.
   */
  controlUrl?: string;
  /** Annotation value kwok manages; fake nodes carry `kwok.x-k8s.io/node: fake`. */
  kwok: boolean;
}

export interface RealNodeInfo {
  /** Node name as the API server knows it: `localhost`. */
  name: string;
  /** `containerd2` (built from the Go module proxy) or `containerd16` (Debian). */
  runtime: 'containerd2' | 'containerd16';
  /** containerd's socket for this node. */
  containerdSocket: string;
  /** Path of a `ctr` binary that matches the runtime. */
  ctr: string;
  /**
   * The Prepull image (scripts/build-image.sh), imported into the node's
   * containerd under its release name `ghcr.io/prepull/prepull:v<version>`
   * (the operator's and `prepull load`'s default) and pinned by digest: this
   * is `ghcr.io/prepull/prepull:v<version>@sha256:<index digest>`.
   */
  agentImage: string;
  /** The node's address on the pod bridge: what a pod reaches the node at (e.g. a test's HTTP server). */
  podGateway: string;
}

export interface RegistryInfo {
  /** host:port on loopback, e.g. 127.0.0.1:5443 */
  host: string;
  username: string;
  password: string;
  /** CA that signed the registry's certificate (the node trusts it). */
  caFile: string;
  /** Images pushed at start-up, by role. Each is a full reference with its digest. */
  images: Record<TestImageName, TestImage>;
}

/**
 * Images the harness pushes at start-up. `hold` runs (its entrypoint is the
 * hold binary); `shell` has busybox's sh; `scratch` has no binary at all;
 * `multilayer` has three layers; `arm64only` is a single arm64 manifest;
 * `noamd64index` is a multi-platform index (arm64, s390x) with no amd64
 * variant; `movable` is a tag tests may move to new content.
 */
export type TestImageName =
  | 'hold'
  | 'shell'
  | 'scratch'
  | 'multilayer'
  | 'arm64only'
  | 'noamd64index'
  | 'movable';

export interface TestImage {
  /** Reference with tag, e.g. 127.0.0.1:5443/prepull-test/scratch:v1 */
  ref: string;
  /** Digest the registry serves for that tag (manifest or index). */
  digest: string;
}
