/**
 * The workload caches spec.imagesFrom reads (one slim informer per kind,
 * indexed by namespace), the view over them that images-from.ts plans with,
 * and a memory of each object's plan that holds until the object or any of
 * these caches changes: the node gate asks for the same plans once per held
 * node. No I/O of its own; the informers do it.
 */
import { type PrePulledImage, WORKLOAD_KINDS, type WorkloadKind } from '../../api/prepulledimage.ts';
import type { Informer } from '../../kube/informer.ts';
import { keyOf, type Namespace, type ServiceAccount } from '../../kube/objects.ts';
import type { SlimWorkload } from '../../kube/workloads.ts';
import {
  type ImagesFromPlan,
  namespaceChanged,
  planImagesFrom,
  type WorkloadView,
  workloadChanged,
} from './images-from.ts';

/** One slim informer per workload kind. */
export type WorkloadInformers = Record<WorkloadKind, Informer<SlimWorkload>>;

/** Workloads by namespace. */
export const WORKLOAD_NAMESPACE_INDEX = 'prepull-workload-namespace';

/** Adds the namespace index every workload informer needs. */
export function addWorkloadIndexes(workloads: WorkloadInformers): void {
  for (const kind of WORKLOAD_KINDS) {
    workloads[kind].addIndex(WORKLOAD_NAMESPACE_INDEX, (w) => [w.metadata.namespace ?? '']);
  }
}

export interface WorkloadCacheInformers {
  workloads: WorkloadInformers;
  namespaces: Informer<Namespace>;
  serviceAccounts: Informer<ServiceAccount>;
}

/** Plans of spec.imagesFrom, remembered per object until it or a cache it reads changes. */
export class ImagesFromPlans {
  readonly #view: WorkloadView;
  readonly #memo = new Map<string, { version: string; plan: ImagesFromPlan | undefined }>();
  #cachesVersion = 0;

  constructor(informers: WorkloadCacheInformers) {
    const { workloads, namespaces, serviceAccounts } = informers;
    this.#view = {
      namespaces: () => namespaces.list(),
      namespace: (name) => namespaces.get(name),
      workloadsIn: (kind, namespace) => workloads[kind].byIndex(WORKLOAD_NAMESPACE_INDEX, namespace),
      serviceAccount: (namespace, name) => serviceAccounts.get(`${namespace}/${name}`),
    };
    // Only what a plan reads counts: a pod's status or a scale leaves every plan as it was.
    const changed = () => this.#cachesVersion++;
    for (const kind of WORKLOAD_KINDS) {
      workloads[kind].addHandler({
        add: changed,
        delete: changed,
        update: (previous, workload) => workloadChanged(workload, previous) && changed(),
      });
    }
    namespaces.addHandler({
      add: changed,
      delete: changed,
      update: (previous, ns) => namespaceChanged(ns, previous) && changed(),
    });
    serviceAccounts.addHandler({
      add: changed,
      delete: changed,
      update: (previous, sa) =>
        JSON.stringify(previous.imagePullSecrets) !== JSON.stringify(sa.imagePullSecrets) && changed(),
    });
  }

  /** The object's plan now (undefined without spec.imagesFrom). */
  planFor(ppi: PrePulledImage): ImagesFromPlan | undefined {
    if (!ppi.spec.imagesFrom) return undefined;
    const key = keyOf(ppi);
    // Its spec (generation) and its identity (uid) are all of the object a plan reads.
    const version = `${ppi.metadata.uid}/${ppi.metadata.generation}/${this.#cachesVersion}`;
    const held = this.#memo.get(key);
    if (held?.version === version) return held.plan;
    const plan = planImagesFrom(ppi, this.#view);
    this.#memo.set(key, { version, plan });
    return plan;
  }

  /** Forgets an object that is gone, by its `namespace/name` key. */
  forget(key: string): void {
    this.#memo.delete(key);
  }
}
