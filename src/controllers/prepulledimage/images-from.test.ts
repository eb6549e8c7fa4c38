import { describe, expect, it } from 'vitest';
import { Reason } from '../../api/conditions.ts';
import {
  IMAGES_READABLE_BY_ANNOTATION,
  type ImagesFrom,
  MAX_IMAGES,
  type PrePulledImage,
  type WorkloadKind,
} from '../../api/prepulledimage.ts';
import type { Namespace, ServiceAccount } from '../../kube/objects.ts';
import type { SlimWorkload } from '../../kube/workloads.ts';
import {
  grantsReadTo,
  planImagesFrom,
  readsNamespace,
  requireImages,
  type WorkloadView,
  withImageSources,
  withWorkloadImages,
  workloadChanged,
} from './images-from.ts';

const ns = (name: string, labels: Record<string, string> = {}, grant?: string): Namespace => ({
  metadata: {
    name,
    labels,
    ...(grant !== undefined && { annotations: { [IMAGES_READABLE_BY_ANNOTATION]: grant } }),
  },
});
const workload = (
  kind: WorkloadKind,
  namespace: string,
  name: string,
  images: string[],
  extra: Partial<SlimWorkload> = {},
): SlimWorkload => ({ kind, metadata: { name, namespace }, images, pullSecrets: [], ...extra });

function viewOf(
  namespaces: Namespace[],
  workloads: SlimWorkload[],
  accounts: ServiceAccount[] = [],
): WorkloadView {
  return {
    namespaces: () => namespaces,
    namespace: (name) => namespaces.find((n) => n.metadata.name === name),
    workloadsIn: (kind, namespace) =>
      workloads.filter((w) => w.kind === kind && w.metadata.namespace === namespace),
    serviceAccount: (namespace, name) =>
      accounts.find((a) => a.metadata.namespace === namespace && a.metadata.name === name),
  };
}

const ppi = (imagesFrom: ImagesFrom, images: string[] = []): PrePulledImage => ({
  metadata: { name: 'warm', namespace: 'ml', uid: 'u1', generation: 1 },
  spec: { images: images.map((image) => ({ image })), imagesFrom },
});

const namespaces = [
  ns('ml', { team: 'ml' }),
  ns('ml-batch', { team: 'ml' }, 'ml'),
  ns('ml-secret', { team: 'ml' }),
  ns('web', { team: 'web' }, '*'),
];

describe('grantsReadTo', () => {
  it('grants a namespace to itself, and to others only when its annotation names them or is *', () => {
    expect(grantsReadTo(ns('ml'), 'ml')).toBe(true);
    expect(grantsReadTo(ns('other'), 'ml')).toBe(false);
    expect(grantsReadTo(ns('other', {}, 'a, ml ,b'), 'ml')).toBe(true);
    expect(grantsReadTo(ns('other', {}, 'mlx'), 'ml')).toBe(false);
    expect(grantsReadTo(ns('other', {}, '*'), 'ml')).toBe(true);
  });
});

describe('planImagesFrom', () => {
  it("reads only the object's own namespace without a namespaceSelector", () => {
    const view = viewOf(namespaces, [
      workload('Deployment', 'ml', 'train', ['trainer:1']),
      workload('Deployment', 'web', 'site', ['site:1']),
      workload('Deployment', 'ml-batch', 'batch', ['batch:1']),
    ]);
    const plan = planImagesFrom(ppi({}), view)!;
    expect(plan.entries).toEqual([{ image: 'docker.io/library/trainer:1' }]);
    expect(plan.summary).toEqual({ namespaces: ['ml'], namespaceCount: 1, workloads: 1, images: 1 });
  });

  it('reads another selected namespace only with its grant, and counts those without', () => {
    const view = viewOf(namespaces, [
      workload('Deployment', 'ml-batch', 'batch', ['batch:1']),
      workload('Deployment', 'ml-secret', 'hidden', ['hidden:1']),
    ]);
    const plan = planImagesFrom(ppi({ namespaceSelector: { matchLabels: { team: 'ml' } } }), view)!;
    expect(plan.entries.map((e) => e.image)).toEqual(['docker.io/library/batch:1']);
    expect(plan.summary.namespaces).toEqual(['ml', 'ml-batch']);
    expect(plan.summary.notGranted).toBe(1);
  });

  it('deduplicates by normalised reference after spec.images, and names every source', () => {
    const view = viewOf(namespaces, [
      workload('Deployment', 'ml', 'a', ['nginx', 'docker.io/library/redis:7']),
      workload('StatefulSet', 'ml', 'b', ['docker.io/library/nginx:latest', 'redis:7']),
      workload('CronJob', 'ml', 'c', ['index.docker.io/library/redis:7']),
    ]);
    const plan = planImagesFrom(ppi({}, ['nginx:latest']), view)!;
    expect(plan.entries).toEqual([{ image: 'docker.io/library/redis:7' }]);
    expect(plan.sources.get('docker.io/library/nginx:latest')).toEqual([
      'Deployment ml/a',
      'StatefulSet ml/b',
    ]);
    expect(plan.summary.images).toBeGreaterThanOrEqual(2);
  });

  it('filters by workload labels and kinds, and skips controlled workloads and puller DaemonSets', () => {
    const view = viewOf(namespaces, [
      workload('Deployment', 'ml', 'gpu', ['gpu:1'], {
        metadata: { name: 'gpu', namespace: 'ml', labels: { pool: 'gpu' } },
      }),
      workload('Deployment', 'ml', 'cpu', ['cpu:1'], {
        metadata: { name: 'cpu', namespace: 'ml', labels: { pool: 'cpu' } },
      }),
      workload('Job', 'ml', 'gpu-job', ['job:1'], {
        metadata: { name: 'gpu-job', namespace: 'ml', labels: { pool: 'gpu' } },
      }),
      workload('Pod', 'ml', 'owned', [], { controlled: true }),
      workload('DaemonSet', 'ml', 'ppi-x', ['puller:1'], {
        metadata: {
          name: 'ppi-x',
          namespace: 'ml',
          labels: { 'app.kubernetes.io/managed-by': 'prepull', pool: 'gpu' },
        },
      }),
    ]);
    const plan = planImagesFrom(
      ppi({ selector: { matchLabels: { pool: 'gpu' } }, kinds: ['Deployment', 'DaemonSet', 'Pod'] }),
      view,
    )!;
    expect(plan.entries.map((e) => e.image)).toEqual(['docker.io/library/gpu:1']);
    expect(plan.summary.workloads).toBe(1);
  });

  it("takes pull secrets, the workload's and its ServiceAccount's, from its own namespace only", () => {
    const view = viewOf(
      namespaces,
      [
        workload('Deployment', 'ml', 'a', ['a:1'], { pullSecrets: ['own'], serviceAccountName: 'runner' }),
        workload('Pod', 'ml', 'b', ['b:1']),
        workload('Deployment', 'ml-batch', 'c', ['c:1'], { pullSecrets: ['theirs'] }),
      ],
      [
        { metadata: { name: 'runner', namespace: 'ml' }, imagePullSecrets: [{ name: 'sa-secret' }] },
        { metadata: { name: 'default', namespace: 'ml' }, imagePullSecrets: [{ name: 'default-secret' }] },
        {
          metadata: { name: 'default', namespace: 'ml-batch' },
          imagePullSecrets: [{ name: 'batch-secret' }],
        },
      ],
    );
    const plan = planImagesFrom(ppi({ namespaceSelector: { matchLabels: { team: 'ml' } } }), view)!;
    expect(plan.pullSecrets).toEqual(['default-secret', 'own', 'sa-secret']);
    const effective = withWorkloadImages(
      { ...ppi({}), spec: { ...ppi({}).spec, imagePullSecrets: [{ name: 'own' }] } },
      plan,
    );
    expect(effective.spec.imagePullSecrets).toEqual([
      { name: 'own' },
      { name: 'default-secret' },
      { name: 'sa-secret' },
    ]);
  });

  it('caps the images at the list bound with spec.images first, and reports what it left out', () => {
    const images = Array.from(
      { length: 70 },
      (_, i) => `registry.example.com/app-${String(i).padStart(2, '0')}:1`,
    );
    const view = viewOf(namespaces, [
      workload('Deployment', 'ml', 'many', images),
      workload('Pod', 'ml', 'bad', ['UPPER:case']),
    ]);
    const plan = planImagesFrom(ppi({}, ['explicit:1']), view)!;
    expect(plan.entries).toHaveLength(MAX_IMAGES - 1);
    expect(plan.summary.omittedCount).toBe(70 - (MAX_IMAGES - 1));
    expect(plan.summary.omitted?.[0]).toBe('registry.example.com/app-63:1');
    expect(plan.summary.unparsable).toBe(1);
  });

  it('is undefined without imagesFrom', () => {
    expect(
      planImagesFrom({ metadata: { namespace: 'ml' }, spec: { images: [{ image: 'a' }] } }, viewOf([], [])),
    ).toBe(undefined);
  });
});

describe('readsNamespace', () => {
  it('routes a workload only to objects that read its namespace', () => {
    expect(readsNamespace(ppi({}), 'ml', namespaces[0])).toBe(true);
    expect(readsNamespace(ppi({}), 'web', namespaces[3])).toBe(false);
    const wide = ppi({ namespaceSelector: {} });
    expect(readsNamespace(wide, 'web', namespaces[3])).toBe(true);
    expect(readsNamespace(wide, 'ml-secret', namespaces[2])).toBe(false);
  });
});

describe('withImageSources and requireImages', () => {
  it('adds the first sources and their count to status.images, and the summary', () => {
    const view = viewOf(
      namespaces,
      Array.from({ length: 6 }, (_, i) => workload('Pod', 'ml', `p${i}`, ['app:1'])),
    );
    const plan = planImagesFrom(ppi({}), view)!;
    const status = withImageSources({ images: [{ image: 'docker.io/library/app:1', readyNodes: 0 }] }, plan);
    expect(status.images?.[0]?.sources).toEqual(['Pod ml/p0', 'Pod ml/p1', 'Pod ml/p2', 'Pod ml/p3']);
    expect(status.images?.[0]?.sourceCount).toBe(6);
    expect(status.imagesFrom?.workloads).toBe(6);
  });

  it('refuses an object with no image at all, as NoImages', () => {
    expect(() =>
      requireImages(withWorkloadImages(ppi({}), planImagesFrom(ppi({}), viewOf(namespaces, [])))),
    ).toThrow(expect.objectContaining({ failure: expect.objectContaining({ reason: Reason.NoImages }) }));
  });
});

describe('workloadChanged', () => {
  it('is true for new images, secrets or labels, false for anything else', () => {
    const before = workload('Deployment', 'ml', 'a', ['a:1']);
    expect(workloadChanged(before, undefined)).toBe(true);
    expect(
      workloadChanged({ ...before, metadata: { ...before.metadata, resourceVersion: '9' } }, before),
    ).toBe(false);
    expect(workloadChanged({ ...before, images: ['a:2'] }, before)).toBe(true);
    expect(workloadChanged({ ...before, pullSecrets: ['s'] }, before)).toBe(true);
    const owned = workload('Pod', 'ml', 'web-1', [], { controlled: true });
    expect(workloadChanged(owned, undefined)).toBe(false);
  });
});
