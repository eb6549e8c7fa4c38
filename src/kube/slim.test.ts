import { describe, expect, it } from 'vitest';
import type { Node } from './objects.ts';
import { intern, slimContainerState, slimNode } from './slim.ts';

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

describe('slimNode and kubectl apply', () => {
  it('drops the last-applied copy, and keeps an annotation map that held only that', () => {
    const node = (annotations: Record<string, string>) =>
      ({ metadata: { name: 'n1', annotations } }) as unknown as Node;
    const applied = { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' };
    expect(slimNode(node({ ...applied, keep: 'me' })).metadata.annotations).toEqual({ keep: 'me' });
    // A JSON patch that adds one annotation must still see that the map exists.
    expect(slimNode(node(applied)).metadata.annotations).toEqual({});
  });
});

describe('slimContainerState', () => {
  it('keeps the waiting reason and message, that it runs, and how it ended', () => {
    expect(
      slimContainerState({
        waiting: { reason: 'ErrImagePull', message: 'not found' },
        running: { startedAt: 't' },
        terminated: { exitCode: 1, reason: 'Error', message: 'm', startedAt: 't', finishedAt: 't' },
      }),
    ).toEqual({
      waiting: { reason: 'ErrImagePull', message: 'not found' },
      running: {},
      terminated: { exitCode: 1, reason: 'Error', message: 'm' },
    });
  });
});

describe('intern', () => {
  it('returns an equal string, and undefined for undefined', () => {
    const made = ['registry.example.com/', 'bench/app:1.0'].join('');
    expect(intern(made)).toBe('registry.example.com/bench/app:1.0');
    expect(intern(undefined)).toBeUndefined();
  });
});
