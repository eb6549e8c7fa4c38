/**
 * Puller pods as the PrePulledImage controller reads them: the slim form its
 * informer keeps, which of them belong to an object, and the owner key that
 * routes their events. Pure.
 */
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type {
  ContainerStatus,
  CoreEvent,
  DaemonSet,
  KubeObject,
  ObjectMeta,
  PodSpec,
} from '../../kube/objects.ts';
import { intern, slimContainerStatus, slimOwnerReference } from '../../kube/slim.ts';
import { OWNER_ANNOTATION, OWNER_UID_LABEL } from './labels.ts';
import { PLATFORM_GROUP_LABEL } from './platforms.ts';
import { REFUSAL_DAEMONSET_INDEX, refusedDaemonSetKey } from './refusals.ts';
import { holdsEveryImage, isWaitingForPullSlot, podNodeName } from './status.ts';

/**
 * A pod as {@link slimPullerPod} keeps it: identity, the labels and
 * annotations this controller reads, its controller, containers' names and
 * images, placement, gates, and statuses.
 */
export interface PullerPod extends KubeObject {
  spec: Pick<PodSpec, 'nodeName' | 'schedulingGates' | 'affinity'> & {
    containers: Array<{ name: string; image?: string }>;
  };
  status?: {
    phase?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

/** The only labels of a puller pod anything reads: whose it is, and its architecture set. */
const KEPT_LABELS = [OWNER_UID_LABEL, PLATFORM_GROUP_LABEL];
/** The only annotation of a puller pod anything reads: the owner key its events route by. */
const KEPT_ANNOTATIONS = [OWNER_ANNOTATION];

/**
 * The informer's transform: only what status, throttle, retry and the node
 * gate read. At thousands of nodes the puller pods are most of the operator's
 * memory, so even their labels are cut to those read; the strings every pod
 * repeats (owner, images, container names) are kept once.
 */
export function slimPullerPod(pod: PullerPod): PullerPod {
  const named = (c: { name: string; image?: string }) => ({
    name: intern(c.name),
    ...(c.image ? { image: intern(c.image) } : {}),
  });
  const spec: PullerPod['spec'] = { containers: pod.spec.containers.map(named) };
  if (pod.spec.schedulingGates) spec.schedulingGates = pod.spec.schedulingGates;
  if (pod.spec.nodeName) spec.nodeName = pod.spec.nodeName;
  // The node an unbound pod is pinned to (podNodeName); once bound, nodeName says it.
  else if (pod.spec.affinity) spec.affinity = pod.spec.affinity;
  const slim: PullerPod = { metadata: pullerPodMeta(pod.metadata), spec };
  if (pod.apiVersion) slim.apiVersion = pod.apiVersion;
  if (pod.kind) slim.kind = pod.kind;
  if (pod.status) {
    const status: NonNullable<PullerPod['status']> = {};
    if (pod.status.phase) status.phase = intern(pod.status.phase);
    if (pod.status.containerStatuses)
      status.containerStatuses = pod.status.containerStatuses.map(slimContainerStatus);
    if (pod.status.initContainerStatuses) {
      status.initContainerStatuses = pod.status.initContainerStatuses.map(slimContainerStatus);
    }
    slim.status = status;
  }
  return slim;
}

function pullerPodMeta(m: ObjectMeta): ObjectMeta {
  const out: ObjectMeta = {};
  if (m.name !== undefined) out.name = m.name;
  if (m.namespace !== undefined) out.namespace = intern(m.namespace);
  if (m.uid !== undefined) out.uid = m.uid;
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.creationTimestamp !== undefined) out.creationTimestamp = m.creationTimestamp;
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  const labels = picked(m.labels, KEPT_LABELS);
  if (labels) out.labels = labels;
  const annotations = picked(m.annotations, KEPT_ANNOTATIONS);
  if (annotations) out.annotations = annotations;
  const controllers = m.ownerReferences?.filter((o) => o.controller).map(slimOwnerReference);
  if (controllers && controllers.length > 0) out.ownerReferences = controllers;
  return out;
}

/** The entries of `map` under `keys`, values interned; undefined when there are none. */
function picked(
  map: Record<string, string> | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (!map) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const key of keys) {
    const value = map[key];
    if (value === undefined) continue;
    out[key] = intern(value);
    any = true;
  }
  return any ? out : undefined;
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
/** Index of the puller pods that hold every image ({@link holdsEveryImage}), by {@link ownerKeyOf}: counted, not listed. */
export const HOLDING_INDEX = 'prepulledimage-holding';
/** Index of the puller pods waiting for a pull slot, by {@link ownerKeyOf}: counted, not listed. */
export const WAITING_INDEX = 'prepulledimage-waiting';

/**
 * Adds {@link OWNER_INDEX}, {@link HOLDING_INDEX} and {@link WAITING_INDEX};
 * call once, before or after the informer starts. The last two let a pass
 * that the status throttle holds back decide from counts, not a walk over
 * every node's pod.
 */
export function addPullerPodIndexes(pods: {
  addIndex(name: string, fn: (pod: PullerPod) => string[]): void;
}): void {
  const ownerIf = (pod: PullerPod, yes: boolean) => {
    const key = yes ? ownerKeyOf(pod) : undefined;
    return key ? [key] : [];
  };
  pods.addIndex(OWNER_INDEX, (pod) => ownerIf(pod, true));
  pods.addIndex(HOLDING_INDEX, (pod) => ownerIf(pod, holdsEveryImage(pod)));
  pods.addIndex(WAITING_INDEX, (pod) => ownerIf(pod, isWaitingForPullSlot(pod)));
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
