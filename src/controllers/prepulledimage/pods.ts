/**
 * Puller pods as the PrePulledImage controller reads them: the slim form its
 * informer keeps, which of them belong to an object, and the owner key that
 * routes their events. Pure.
 */
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { ContainerStatus, CoreEvent, DaemonSet, KubeObject, PodSpec } from '../../kube/objects.ts';
import { slimContainerStatus, slimMeta } from '../../kube/slim.ts';
import { OWNER_ANNOTATION, OWNER_UID_LABEL } from './labels.ts';
import { REFUSAL_DAEMONSET_INDEX, refusedDaemonSetKey } from './refusals.ts';
import { podNodeName } from './status.ts';

/** A pod as {@link slimPullerPod} keeps it: containers' names and images, placement, gates, and statuses. */
export interface PullerPod extends KubeObject {
  spec: Pick<PodSpec, 'nodeName' | 'schedulingGates' | 'affinity'> & {
    containers: Array<{ name: string; image?: string }>;
    initContainers?: Array<{ name: string; image?: string }>;
  };
  status?: {
    phase?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** The informer's transform: only what status, throttle and retry read. */
export function slimPullerPod(pod: PullerPod): PullerPod {
  const named = (c: { name: string; image?: string }) => ({
    name: c.name,
    ...(c.image ? { image: c.image } : {}),
  });
  const spec: PullerPod['spec'] = { containers: pod.spec.containers.map(named) };
  if (pod.spec.initContainers) spec.initContainers = pod.spec.initContainers.map(named);
  if (pod.spec.nodeName) spec.nodeName = pod.spec.nodeName;
  if (pod.spec.schedulingGates) spec.schedulingGates = pod.spec.schedulingGates;
  if (pod.spec.affinity) spec.affinity = pod.spec.affinity;
  const slim: PullerPod = { metadata: slimMeta(pod.metadata), spec };
  if (pod.apiVersion) slim.apiVersion = pod.apiVersion;
  if (pod.kind) slim.kind = pod.kind;
  if (pod.status) {
    const status: NonNullable<PullerPod['status']> = {};
    if (pod.status.phase) status.phase = pod.status.phase;
    if (pod.status.containerStatuses)
      status.containerStatuses = pod.status.containerStatuses.map(slimContainerStatus);
    if (pod.status.initContainerStatuses) {
      status.initContainerStatuses = pod.status.initContainerStatuses.map(slimContainerStatus);
    }
    slim.status = status;
  }
  return slim;
}

/**
 * The key of the PrePulledImage a puller DaemonSet or pod names as its owner,
 * only if that is in the object's own namespace: a pod in one namespace never
 * reaches another namespace's PrePulledImage, however it is annotated.
 */
export function ownerKeyOf(obj: {
  metadata: { namespace?: string; annotations?: Record<string, string> };
}): string | undefined {
  const key = obj.metadata.annotations?.[OWNER_ANNOTATION];
  if (!key || !obj.metadata.namespace) return undefined;
  const slash = key.indexOf('/');
  return slash > 0 && key.slice(0, slash) === obj.metadata.namespace ? key : undefined;
}

/**
 * The pods that count as `ppi`'s among those naming it: in its namespace,
 * labelled with its UID, and, once its DaemonSet is known, controlled by that
 * DaemonSet. Anything else (a forged pod, a predecessor's pod) is ignored.
 */
export function podsOf(
  ppi: PrePulledImage,
  daemonSet: DaemonSet | undefined,
  candidates: PullerPod[],
): PullerPod[] {
  const { namespace, uid } = ppi.metadata;
  return candidates.filter((pod) => {
    if (pod.metadata.namespace !== namespace || pod.metadata.labels?.[OWNER_UID_LABEL] !== uid) return false;
    if (!daemonSet?.metadata.uid) return true;
    return (
      pod.metadata.ownerReferences?.some((o) => o.controller && o.uid === daemonSet.metadata.uid) ?? false
    );
  });
}

/** Index of puller pods by {@link ownerKeyOf}. */
export const OWNER_INDEX = 'prepulledimage-owner';

/** Adds {@link OWNER_INDEX}; call once, before or after the informer starts. */
export function addPullerPodIndexes(pods: {
  addIndex(name: string, fn: (pod: PullerPod) => string[]): void;
}): void {
  pods.addIndex(OWNER_INDEX, (pod) => {
    const key = ownerKeyOf(pod);
    return key ? [key] : [];
  });
}

/** Index of puller pods by the node they are for (bound, or pinned by the DaemonSet controller). */
export const NODE_INDEX = 'prepulledimage-node';

/** Adds {@link NODE_INDEX}; call once, before or after the informer starts. */
export function addPullerPodNodeIndex(pods: {
  addIndex(name: string, fn: (pod: PullerPod) => string[]): void;
}): void {
  pods.addIndex(NODE_INDEX, (pod) => {
    const node = podNodeName(pod);
    return node ? [node] : [];
  });
}

/** Adds {@link REFUSAL_DAEMONSET_INDEX} to the refusal Events' informer. */
export function addRefusalIndexes(events: {
  addIndex(name: string, fn: (event: CoreEvent) => string[]): void;
}): void {
  events.addIndex(REFUSAL_DAEMONSET_INDEX, (event) => {
    const key = refusedDaemonSetKey(event);
    return key ? [key] : [];
  });
}
