import { describe, expect, it } from 'vitest';
import type { Pod } from '../../kube/objects.ts';
import {
  addPullerPodIndexes,
  HOLDING_INDEX,
  OWNER_INDEX,
  type PullerPod,
  slimPullerPod,
  WAITING_INDEX,
} from './pods.ts';

describe('slimPullerPod', () => {
  it('keeps what the controllers read and drops the rest', () => {
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'p',
        namespace: 'ns',
        uid: 'u',
        resourceVersion: '7',
        creationTimestamp: '2026-01-01T00:00:00Z',
        annotations: { 'prepull.dev/owner': 'ns/x' },
        managedFields: [{ big: true }],
      },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'image-0', image: 'a:1', command: ['/prepull/hold'], volumeMounts: [{}] }],
        initContainers: [{ name: 'install-hold', image: 'agent', command: ['/hold'] }],
        schedulingGates: [{ name: 'prepull.dev/pull-slot' }],
        volumes: [{ name: 'v' }],
      },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [
          {
            name: 'image-0',
            image: 'a:1',
            imageID: 'a@sha256:1',
            ready: true,
            restartCount: 0,
            state: { running: { startedAt: 'x' } },
            ...({ resources: { big: true } } as object),
          },
        ],
      },
    };
    expect(slimPullerPod(pod)).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'p',
        namespace: 'ns',
        uid: 'u',
        resourceVersion: '7',
        creationTimestamp: '2026-01-01T00:00:00Z',
        annotations: { 'prepull.dev/owner': 'ns/x' },
      },
      spec: {
        nodeName: 'n1',
        containers: [{ name: 'image-0', image: 'a:1' }],
        schedulingGates: [{ name: 'prepull.dev/pull-slot' }],
      },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'image-0',
            image: 'a:1',
            imageID: 'a@sha256:1',
            ready: true,
            restartCount: 0,
            state: { running: {} },
          },
        ],
      },
    });
  });

  it('keeps only the labels, annotations and owner the controllers read, and placement once bound', () => {
    const pod = (nodeName?: string): Pod => ({
      metadata: {
        name: 'p',
        namespace: 'ns',
        labels: {
          'app.kubernetes.io/name': 'prepull-puller',
          'prepull.dev/owner-uid': 'u1',
          'prepull.dev/platform-group': 'arm64',
          'controller-revision-hash': 'abc',
        },
        annotations: {
          'prepull.dev/owner': 'ns/x',
          'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
        },
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Other', name: 'o', uid: 'o1' },
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ppi-x', uid: 'd1', controller: true },
        ],
      },
      spec: {
        ...(nodeName ? { nodeName } : {}),
        containers: [{ name: 'image-0', image: 'a:1' }],
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
        },
      },
    });
    const bound = slimPullerPod(pod('n1'));
    expect(bound.metadata).toEqual({
      name: 'p',
      namespace: 'ns',
      labels: { 'prepull.dev/owner-uid': 'u1', 'prepull.dev/platform-group': 'arm64' },
      annotations: { 'prepull.dev/owner': 'ns/x' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'ppi-x', uid: 'd1', controller: true },
      ],
    });
    expect(bound.spec).toEqual({ nodeName: 'n1', containers: [{ name: 'image-0', image: 'a:1' }] });
    // Unbound, the DaemonSet controller's node affinity is what names its node.
    expect(slimPullerPod(pod()).spec.affinity).toEqual(pod().spec.affinity);
  });
});

describe('addPullerPodIndexes', () => {
  const indexes = new Map<string, (pod: PullerPod) => string[]>();
  addPullerPodIndexes({ addIndex: (name, fn) => indexes.set(name, fn) });
  const index = (name: string, pod: PullerPod) => indexes.get(name)?.(pod);
  const puller = (patch: { gated?: boolean; holding?: boolean; owner?: string }): PullerPod => ({
    metadata: { name: 'p', namespace: 'ns', annotations: { 'prepull.dev/owner': patch.owner ?? 'ns/x' } },
    spec: {
      containers: [{ name: 'image-0', image: 'a:1' }],
      ...(patch.gated && { schedulingGates: [{ name: 'prepull.dev/pull-slot' }] }),
    },
    status: {
      containerStatuses: [
        {
          name: 'image-0',
          image: 'a:1',
          imageID: patch.holding ? 'a@sha256:1' : '',
          ready: patch.holding ?? false,
          restartCount: 0,
          state: patch.holding ? { running: {} } : { waiting: { reason: 'ContainerCreating' } },
        },
      ],
    },
  });

  it('indexes by owner every pod, and those holding every image or waiting for a pull slot apart', () => {
    expect(index(OWNER_INDEX, puller({}))).toEqual(['ns/x']);
    expect(index(HOLDING_INDEX, puller({ holding: true }))).toEqual(['ns/x']);
    expect(index(HOLDING_INDEX, puller({}))).toEqual([]);
    expect(index(WAITING_INDEX, puller({ gated: true }))).toEqual(['ns/x']);
    expect(index(WAITING_INDEX, puller({ holding: true }))).toEqual([]);
  });

  it('indexes no pod whose owner is in another namespace', () => {
    for (const name of [OWNER_INDEX, HOLDING_INDEX, WAITING_INDEX]) {
      expect(index(name, puller({ owner: 'other/x', holding: true, gated: true }))).toEqual([]);
    }
  });
});
