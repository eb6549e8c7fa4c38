import { describe, expect, it } from 'vitest';
import type { Pod } from '../../kube/objects.ts';
import { slimPullerPod } from './pods.ts';

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
