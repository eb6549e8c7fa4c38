import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { SHARED_POOL_LABEL, SHARED_POOL_SIZE, sharedKwokPool } from '../support/nodes.ts';

const cluster = inject('cluster');

describe('the harness cluster', () => {
  it(`runs Kubernetes ${cluster.kubernetesVersion}`, () => {
    const version = JSON.parse(kubectl(cluster, ['version', '-o', 'json']).stdout);
    expect(version.serverVersion.gitVersion).toBe(cluster.kubernetesVersion);
  });

  it(`gets the shared pool of ${SHARED_POOL_SIZE} kwok nodes Ready`, async () => {
    sharedKwokPool(cluster);
    await eventually(() => {
      const out = kubectl(cluster, [
        'get',
        'nodes',
        '-l',
        `${SHARED_POOL_LABEL}=shared`,
        '-o',
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]).stdout;
      expect(out.split('\n').filter((s) => s === 'True')).toHaveLength(SHARED_POOL_SIZE);
    }, 180_000);
  });

  it('runs a pod on a kwok node through the real scheduler', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'on-kwok', namespace: 'default' },
      spec: {
        nodeSelector: { [SHARED_POOL_LABEL]: 'shared' },
        tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
        containers: [{ name: 'c', image: 'fake.invalid/app:v1' }],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod)).status).toBe(0);
    await eventually(() => {
      expect(kubectl(cluster, ['get', 'pod', 'on-kwok', '-o', 'jsonpath={.status.phase}']).stdout).toBe(
        'Running',
      );
    }, 120_000);
    expect(kubectl(cluster, ['get', 'pod', 'on-kwok', '-o', 'jsonpath={.spec.nodeName}']).stdout).toMatch(
      /^pool-/,
    );
  });

  it('has a real node, localhost, that is Ready with the chosen runtime', () => {
    const node = JSON.parse(kubectl(cluster, ['get', 'node', 'localhost', '-o', 'json']).stdout);
    expect(node.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    const runtime = node.status.nodeInfo.containerRuntimeVersion as string;
    expect(runtime).toMatch(
      cluster.node?.runtime === 'containerd16' ? /^containerd:\/\/1\.6\./ : /^containerd:\/\/2\./,
    );
  });

  it('runs a real pod from an image imported into containerd, with imagePullPolicy Never', async () => {
    createNodePod({
      name: 'imported',
      namespace: 'default',
      image: 'registry.k8s.io/pause:prepull',
      pullPolicy: 'Never',
    });
    await eventually(() => expect(containerStatus('imported', 'default').ready).toBe(true), 120_000);
    // The container really runs in containerd's k8s.io namespace on this node.
    const tasks = ctr(['tasks', 'ls']);
    const containerId = containerStatus('imported', 'default').containerID?.replace('containerd://', '');
    expect(tasks).toMatch(new RegExp(`${containerId}\\s+\\d+\\s+RUNNING`));
  });

  it('reports ErrImageNeverPull for an absent image with imagePullPolicy Never', async () => {
    createNodePod({
      name: 'never-pull',
      namespace: 'default',
      image: 'example.invalid/absent:v1',
      pullPolicy: 'Never',
    });
    await eventually(() => {
      const waiting = containerStatus('never-pull', 'default').state?.waiting;
      expect(waiting?.reason).toBe('ErrImageNeverPull');
      expect(waiting?.message).toContain('is not present with pull policy of Never');
    }, 120_000);
  });
});

describe('in-cluster access from the real node', () => {
  it('a pod reaches the API server through the `kubernetes` Service, as its ServiceAccount', async () => {
    const namespace = 'harness-incluster';
    kubectl(cluster, ['create', 'namespace', namespace]);
    // What an in-cluster client does: the Service's address from the
    // environment, the mounted CA and token. A self-subject review answers
    // with the identity the API server saw.
    const script = `
      const fs = require('node:fs');
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
      const req = require('node:https').request({
        host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
        path: '/apis/authentication.k8s.io/v1/selfsubjectreviews', method: 'POST',
        ca: fs.readFileSync(dir + '/ca.crt'),
        headers: { authorization: 'Bearer ' + fs.readFileSync(dir + '/token', 'utf8'), 'content-type': 'application/json' },
      }, (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => {
        console.log(process.env.KUBERNETES_SERVICE_HOST, res.statusCode, JSON.parse(b).status.userInfo.username);
        process.exit(res.statusCode === 201 ? 0 : 1); }); });
      req.on('error', (e) => { console.log('error', e.message); process.exit(1); });
      req.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }));`;
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'whoami', namespace },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'localhost' },
        restartPolicy: 'Never',
        containers: [
          {
            name: 'c',
            image: cluster.node!.agentImage,
            imagePullPolicy: 'Never',
            command: ['node', '-e', script],
          },
        ],
      },
    };
    const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod));
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(() => {
      expect(
        kubectl(cluster, ['get', 'pod', 'whoami', '-n', namespace, '-o', 'jsonpath={.status.phase}']).stdout,
      ).toMatch(/^(Succeeded|Failed)$/);
    }, 120_000);
    const logs = kubectl(cluster, ['logs', 'whoami', '-n', namespace]).stdout.trim();
    // The Service's ClusterIP, not an address the harness handed in.
    expect(logs).toBe(`10.96.0.1 201 system:serviceaccount:${namespace}:default`);
  });
});

describe('the private registry', () => {
  const registry = cluster.registry!;
  const namespace = 'harness-private';

  it('refuses an anonymous pull', async () => {
    kubectl(cluster, ['create', 'namespace', namespace]);
    createNodePod({ name: 'anonymous', namespace, image: registry.images.hold.ref, pullPolicy: 'Always' });
    await eventually(() => {
      const waiting = containerStatus('anonymous', namespace).state?.waiting;
      expect(waiting?.reason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
      expect(waiting?.message).toMatch(/no basic auth credentials|unauthorized|401/i);
    }, 120_000);
  });

  it('pulls a private image with an imagePullSecret, runs it, and reports the registry digest', async () => {
    const secret = kubectl(cluster, [
      'create',
      'secret',
      'docker-registry',
      'pull',
      '-n',
      namespace,
      `--docker-server=${registry.host}`,
      `--docker-username=${registry.username}`,
      `--docker-password=${registry.password}`,
    ]);
    expect(secret.status, secret.stderr).toBe(0);
    createNodePod({
      name: 'private',
      namespace,
      image: registry.images.hold.ref,
      pullPolicy: 'Always',
      pullSecret: 'pull',
    });
    await eventually(() => expect(containerStatus('private', namespace).ready).toBe(true), 120_000);
    expect(containerStatus('private', namespace).imageID).toBe(
      `${registry.host}/prepull-test/hold@${registry.images.hold.digest}`,
    );
    // And the image is now in containerd's k8s.io namespace on the node.
    expect(ctr(['images', 'ls', '-q'])).toContain(registry.images.hold.ref);
  });
});

interface ContainerStatus {
  ready?: boolean;
  imageID?: string;
  containerID?: string;
  state?: { waiting?: { reason?: string; message?: string } };
}

/** A one-container pod pinned to the real node. */
function createNodePod(o: {
  name: string;
  namespace: string;
  image: string;
  pullPolicy: string;
  pullSecret?: string;
}): void {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': 'localhost' },
      ...(o.pullSecret ? { imagePullSecrets: [{ name: o.pullSecret }] } : {}),
      containers: [{ name: 'c', image: o.image, imagePullPolicy: o.pullPolicy }],
    },
  };
  const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod));
  expect(applied.status, applied.stderr).toBe(0);
}

/** The pod's only container status, or an empty one before the kubelet reported. */
function containerStatus(name: string, namespace: string): ContainerStatus {
  const out = kubectl(cluster, [
    'get',
    'pod',
    name,
    '-n',
    namespace,
    '-o',
    'jsonpath={.status.containerStatuses[0]}',
  ]);
  return JSON.parse(out.stdout || '{}') as ContainerStatus;
}

/** `ctr` against the real node's containerd, in the kubelet's `k8s.io` namespace. */
function ctr(args: string[]): string {
  return execFileSync(
    cluster.node!.ctr,
    ['--address', cluster.node!.containerdSocket, '-n', 'k8s.io', ...args],
    {
      encoding: 'utf8',
    },
  );
}
