import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const FAKE_NODES = 100;

function fakeNode(i: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: `kwok-harness-${i}`,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: { type: 'kwok', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': `kwok-harness-${i}` },
    },
    spec: { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] },
  };
}

describe('the harness cluster', () => {
  it(`runs Kubernetes ${cluster.kubernetesVersion}`, () => {
    const version = JSON.parse(kubectl(cluster, ['version', '-o', 'json']).stdout);
    expect(version.serverVersion.gitVersion).toBe(cluster.kubernetesVersion);
  });

  it(`gets ${FAKE_NODES} kwok nodes Ready`, async () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: Array.from({ length: FAKE_NODES }, (_, i) => fakeNode(i)),
    };
    const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(list));
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(() => {
      const out = kubectl(cluster, [
        'get',
        'nodes',
        '-l',
        'type=kwok',
        '-o',
        'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]).stdout;
      expect(out.split('\n').filter((s) => s === 'True')).toHaveLength(FAKE_NODES);
    }, 180_000);
  });

  it('runs a pod on a kwok node through the real scheduler', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'on-kwok', namespace: 'default' },
      spec: {
        nodeSelector: { type: 'kwok' },
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
      /^kwok-harness-/,
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
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'imported', namespace: 'default' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'localhost' },
        containers: [{ name: 'c', image: 'registry.k8s.io/pause:prepull', imagePullPolicy: 'Never' }],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod)).status).toBe(0);
    await eventually(() => {
      expect(
        kubectl(cluster, ['get', 'pod', 'imported', '-o', 'jsonpath={.status.containerStatuses[0].ready}'])
          .stdout,
      ).toBe('true');
    }, 120_000);
    // The container really runs in containerd's k8s.io namespace on this node.
    const tasks = execFileSync(
      cluster.node!.ctr,
      ['--address', cluster.node!.containerdSocket, '-n', 'k8s.io', 'tasks', 'ls'],
      { encoding: 'utf8' },
    );
    const containerId = kubectl(cluster, [
      'get',
      'pod',
      'imported',
      '-o',
      'jsonpath={.status.containerStatuses[0].containerID}',
    ]).stdout.replace('containerd://', '');
    expect(tasks).toMatch(new RegExp(`${containerId}\\s+\\d+\\s+RUNNING`));
  });

  it('reports ErrImageNeverPull for an absent image with imagePullPolicy Never', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'never-pull', namespace: 'default' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'localhost' },
        containers: [{ name: 'c', image: 'example.invalid/absent:v1', imagePullPolicy: 'Never' }],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(pod)).status).toBe(0);
    await eventually(() => {
      const waiting = JSON.parse(
        kubectl(cluster, [
          'get',
          'pod',
          'never-pull',
          '-o',
          'jsonpath={.status.containerStatuses[0].state.waiting}',
        ]).stdout || '{}',
      );
      expect(waiting.reason).toBe('ErrImageNeverPull');
      expect(waiting.message).toContain('is not present with pull policy of Never');
    }, 120_000);
  });
});
