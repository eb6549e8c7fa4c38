import { describe, expect, it } from 'vitest';
import type { KubeObject } from './objects.ts';
import { slimWorkload } from './workloads.ts';

const template = {
  serviceAccountName: 'runner',
  imagePullSecrets: [{ name: 'pull' }],
  containers: [{ name: 'app', image: 'app:1', env: [{ name: 'A', value: 'x'.repeat(1000) }] }],
  initContainers: [{ name: 'init', image: 'init:1' }],
  ephemeralContainers: [{ name: 'debug', image: 'busybox' }],
  volumes: [{ name: 'v', emptyDir: {} }],
};

describe('slimWorkload', () => {
  it("keeps a Deployment's name, labels, template images, pull secrets and ServiceAccount", () => {
    const deployment = {
      metadata: {
        name: 'web',
        namespace: 'ml',
        labels: { app: 'web' },
        managedFields: [{}],
        annotations: { a: 'b' },
      },
      spec: { replicas: 3, template: { metadata: { labels: { app: 'web' } }, spec: template } },
      status: { replicas: 3 },
    } as KubeObject;
    expect(slimWorkload('Deployment')(deployment)).toEqual({
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'ml', labels: { app: 'web' } },
      images: ['app:1', 'init:1'],
      pullSecrets: ['pull'],
      serviceAccountName: 'runner',
    });
  });

  it("reads a CronJob's job template and a Pod's own spec", () => {
    const cronJob = {
      metadata: { name: 'nightly', namespace: 'ml' },
      spec: { schedule: '@daily', jobTemplate: { spec: { template: { spec: template } } } },
    } as KubeObject;
    expect(slimWorkload('CronJob')(cronJob).images).toEqual(['app:1', 'init:1']);
    const pod = { metadata: { name: 'p', namespace: 'ml' }, spec: template } as KubeObject;
    expect(slimWorkload('Pod')(pod).images).toEqual(['app:1', 'init:1']);
  });

  it('keeps nothing of a controlled workload but that it is controlled', () => {
    const pod = {
      metadata: {
        name: 'web-abc',
        namespace: 'ml',
        uid: 'p1',
        resourceVersion: '9',
        labels: { app: 'web', 'pod-template-hash': 'abc' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'u', controller: true },
        ],
      },
      spec: template,
    } as KubeObject;
    expect(slimWorkload('Pod')(pod)).toEqual({
      kind: 'Pod',
      metadata: { name: 'web-abc', namespace: 'ml', resourceVersion: '9' },
      images: [],
      pullSecrets: [],
      controlled: true,
    });
  });
});
