/**
 * Which PrePulledImages a change of a workload, a namespace or a
 * ServiceAccount concerns, for spec.imagesFrom: only a change a plan reads
 * (images, pull secrets, ServiceAccount, labels, a namespace's labels or
 * grant) enqueues anything, and only the objects that read that namespace.
 * A workload that churns without changing its images costs no reconcile,
 * and an unchanged image list no DaemonSet write (its hash is the same).
 */
import { type PrePulledImage, WORKLOAD_KINDS, type WorkloadKind } from '../../api/prepulledimage.ts';
import type { Informer } from '../../kube/informer.ts';
import { keyOf, type Namespace, type ServiceAccount } from '../../kube/objects.ts';
import { Resources, type ResourceType } from '../../kube/resources.ts';
import { type Watch, watch } from '../../runtime/object-controller.ts';
import { namespaceChanged, readsNamespace, workloadChanged } from './images-from.ts';
import type { WorkloadInformers } from './workload-caches.ts';

/** The API type of each workload kind. */
export const WORKLOAD_RESOURCES: Record<WorkloadKind, ResourceType> = {
  Deployment: Resources.deployments,
  StatefulSet: Resources.statefulSets,
  DaemonSet: Resources.daemonSets,
  Job: Resources.jobs,
  CronJob: Resources.cronJobs,
  Pod: Resources.pods,
};

/** The watches spec.imagesFrom adds to the PrePulledImage kind. */
export function imagesFromWatches(informers: {
  prePulledImages: Informer<PrePulledImage>;
  workloads: WorkloadInformers;
  namespaces: Informer<Namespace>;
  serviceAccounts: Informer<ServiceAccount>;
}): Watch[] {
  const reading = (namespace: string) => {
    const ns = informers.namespaces.get(namespace);
    return informers.prePulledImages
      .list()
      .filter((ppi) => readsNamespace(ppi, namespace, ns))
      .map(keyOf);
  };
  return [
    ...WORKLOAD_KINDS.map((kind) =>
      watch(informers.workloads[kind], WORKLOAD_RESOURCES[kind], (workload, previous) =>
        workloadChanged(workload, previous) ? reading(workload.metadata.namespace ?? '') : [],
      ),
    ),
    // A namespace that is relabelled, or grants or withdraws a grant, may join or leave any selector.
    watch(informers.namespaces, Resources.namespaces, (ns, previous) =>
      namespaceChanged(ns, previous)
        ? informers.prePulledImages
            .list()
            .filter((ppi) => ppi.spec.imagesFrom?.namespaceSelector !== undefined)
            .map(keyOf)
        : [],
    ),
    // A ServiceAccount's pull secrets are those of the workloads that run as it, in its namespace.
    watch(informers.serviceAccounts, Resources.serviceAccounts, (sa, previous) =>
      previous === undefined ||
      JSON.stringify(previous.imagePullSecrets) !== JSON.stringify(sa.imagePullSecrets)
        ? informers.prePulledImages
            .list()
            .filter((ppi) => ppi.spec.imagesFrom && ppi.metadata.namespace === sa.metadata.namespace)
            .map(keyOf)
        : [],
    ),
  ];
}
