import { describe, expect, it } from 'vitest';
import type { Node } from './objects.ts';
import { slimNode } from './slim.ts';

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
