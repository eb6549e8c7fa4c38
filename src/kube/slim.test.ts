import { describe, expect, it } from 'vitest';
import type { Node, Pod } from './objects.ts';
import { slimNode, slimPod } from './slim.ts';

describe('slimPod', () => {
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
    expect(slimPod(pod)).toEqual({
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
        initContainers: [{ name: 'install-hold', image: 'agent' }],
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
            state: { running: { startedAt: 'x' } },
          },
        ],
      },
    });
  });
});

describe('slimNode', () => {
  it('keeps name, labels, taints and conditions without heartbeats; drops images', () => {
    const node = {
      metadata: { name: 'n1', labels: { a: 'b' }, managedFields: [{}] },
      spec: { taints: [{ key: 'k', effect: 'NoSchedule' }], podCIDR: '10.0.0.0/24' },
      status: {
        conditions: [{ type: 'DiskPressure', status: 'True', message: 'full', lastHeartbeatTime: 't' }],
        images: [{ names: ['x'], sizeBytes: 1 }],
      },
    } as unknown as Node;
    expect(slimNode(node)).toEqual({
      metadata: { name: 'n1', labels: { a: 'b' } },
      spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] },
      status: { conditions: [{ type: 'DiskPressure', status: 'True', message: 'full' }] },
    });
  });
});
