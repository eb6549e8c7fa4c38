import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../../api/prepulledimage.ts';
import { DEFAULT_IMPORT_POLICY } from '../../../image/import-policy.ts';
import type { KubeObject } from '../../../kube/objects.ts';
import { planImports } from './plan.ts';

const policy = { ok: true as const, policy: DEFAULT_IMPORT_POLICY };
const archive = '/var/lib/prepull/archives/team-a/app.tar';

function ppi(namespace: string, uid: string, images: PrePulledImage['spec']['images']): PrePulledImage {
  return { metadata: { name: 'web', namespace, uid }, spec: { images } };
}

function pullerPod(namespace: string, owner: string, uid: string, daemonSet = 'ppi-web'): KubeObject {
  return {
    metadata: {
      name: `${daemonSet}-x`,
      namespace,
      labels: { 'prepull.dev/owner-uid': uid },
      annotations: { 'prepull.dev/owner': owner },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'DaemonSet', name: daemonSet, uid: 'ds', controller: true },
      ],
    },
  };
}

describe('planImports', () => {
  const objects = new Map<string, PrePulledImage>([
    [
      'team-a/web',
      ppi('team-a', 'ua', [
        { image: 'nginx:1.27' },
        { image: 'prepull.local/team-a/app:v1', tarball: { hostPath: archive } },
        { image: 'registry.k8s.io/pause:3.10', tarball: { hostPath: archive } },
      ]),
    ],
  ]);
  const lookup = (key: string) => objects.get(key);

  it("owes the tarball images of the object whose pod is on the node, read from the object, with the policy's verdict", () => {
    const tasks = planImports([pullerPod('team-a', 'team-a/web', 'ua')], lookup, policy);
    expect(tasks.map((t) => [t.key, t.image, t.namespace, t.refusal === undefined])).toEqual([
      ['ua/1', 'prepull.local/team-a/app:v1', 'team-a', true],
      ['ua/2', 'registry.k8s.io/pause:3.10', 'team-a', false],
    ]);
  });

  it('owes nothing for forged pods: another namespace, another UID, or not controlled by the DaemonSet', () => {
    for (const forged of [
      pullerPod('team-b', 'team-a/web', 'ua'),
      pullerPod('team-a', 'team-a/web', 'other'),
      pullerPod('team-a', 'team-a/web', 'ua', 'ppi-forged'),
      { metadata: { ...pullerPod('team-a', 'team-a/web', 'ua').metadata, ownerReferences: [] } },
      { metadata: { ...pullerPod('team-a', 'team-a/web', 'ua').metadata, deletionTimestamp: 'now' } },
    ]) {
      expect(planImports([forged], lookup, policy), JSON.stringify(forged.metadata)).toEqual([]);
    }
  });
});
