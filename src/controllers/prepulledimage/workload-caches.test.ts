import { describe, expect, it } from 'vitest';
import { type PrePulledImage, WORKLOAD_KINDS } from '../../api/prepulledimage.ts';
import type { Informer, InformerHandler } from '../../kube/informer.ts';
import { type KubeObject, keyOf, type Namespace, type ServiceAccount } from '../../kube/objects.ts';
import type { SlimWorkload } from '../../kube/workloads.ts';
import { ImagesFromPlans, WORKLOAD_NAMESPACE_INDEX, type WorkloadInformers } from './workload-caches.ts';

/** A cache the test fills by hand, calling handlers as an informer would. */
class HandFedCache<T extends KubeObject> {
  readonly objects = new Map<string, T>();
  readonly handlers: InformerHandler<T>[] = [];
  addHandler(h: InformerHandler<T>) {
    this.handlers.push(h);
  }
  addIndex() {}
  get(key: string) {
    return this.objects.get(key);
  }
  list() {
    return [...this.objects.values()];
  }
  byIndex(name: string, value: string) {
    expect(name).toBe(WORKLOAD_NAMESPACE_INDEX);
    return this.list().filter((o) => o.metadata.namespace === value);
  }
  put(obj: T) {
    const previous = this.objects.get(keyOf(obj));
    this.objects.set(keyOf(obj), obj);
    for (const h of this.handlers) previous ? h.update?.(previous, obj) : h.add?.(obj);
  }
  asInformer() {
    return this as unknown as Informer<T>;
  }
}

const deployment = (images: string[], resourceVersion: string): SlimWorkload => ({
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'ml', resourceVersion },
  images,
  pullSecrets: [],
});

describe('ImagesFromPlans', () => {
  const workloads = Object.fromEntries(WORKLOAD_KINDS.map((k) => [k, new HandFedCache<SlimWorkload>()]));
  const namespaces = new HandFedCache<Namespace>();
  const accounts = new HandFedCache<ServiceAccount>();
  const plans = new ImagesFromPlans({
    workloads: Object.fromEntries(
      Object.entries(workloads).map(([k, c]) => [k, c.asInformer()]),
    ) as WorkloadInformers,
    namespaces: namespaces.asInformer(),
    serviceAccounts: accounts.asInformer(),
  });
  namespaces.put({ metadata: { name: 'ml' } });
  const ppi: PrePulledImage = {
    metadata: { name: 'warm', namespace: 'ml', uid: 'u', generation: 1 },
    spec: { images: [], imagesFrom: {} },
  };

  it('keeps a plan while nothing it reads changes, and plans anew when an image does', () => {
    workloads.Deployment!.put(deployment(['app:1'], '1'));
    const first = plans.planFor(ppi);
    expect(first?.entries).toEqual([{ image: 'docker.io/library/app:1' }]);
    // A scale or a status update: another resourceVersion, the same images.
    workloads.Deployment!.put(deployment(['app:1'], '2'));
    expect(plans.planFor(ppi)).toBe(first);
    workloads.Deployment!.put(deployment(['app:2'], '3'));
    expect(plans.planFor(ppi)?.entries).toEqual([{ image: 'docker.io/library/app:2' }]);
  });

  it('plans anew for a new generation of the object, and forgets it', () => {
    const held = plans.planFor(ppi);
    const edited = { ...ppi, metadata: { ...ppi.metadata, generation: 2 } };
    expect(plans.planFor(edited)).not.toBe(held);
    plans.forget(keyOf(ppi));
    expect(plans.planFor({ ...ppi, spec: { images: [] } })).toBeUndefined();
  });
});
