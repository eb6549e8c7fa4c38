/**
 * What the informers keep of pods and nodes: only the fields the controllers
 * read. A kubelet-managed pod or node carries many kilobytes the operator never
 * looks at (managedFields, node images, heartbeat times, volume and resource
 * details); at 1000 nodes that is most of the cache.
 */
import type { ContainerStatus, Node, ObjectMeta, Pod } from './objects.ts';

function slimMeta(m: ObjectMeta): ObjectMeta {
  const out: ObjectMeta = {};
  for (const key of [
    'name',
    'namespace',
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'deletionTimestamp',
    'labels',
    'annotations',
    'ownerReferences',
  ] as const) {
    if (m[key] !== undefined) (out as Record<string, unknown>)[key] = m[key];
  }
  return out;
}

function slimStatus(s: ContainerStatus): ContainerStatus {
  const out: ContainerStatus = {
    name: s.name,
    image: s.image,
    imageID: s.imageID,
    ready: s.ready,
    restartCount: s.restartCount,
  };
  if (s.started !== undefined) out.started = s.started;
  if (s.state) out.state = s.state;
  return out;
}

/** A pod as the PrePulledImage controller reads it: containers' names and images, placement, gates, and statuses. */
export function slimPod(pod: Pod): Pod {
  const spec: Pod['spec'] = {
    containers: pod.spec.containers.map((c) => ({ name: c.name, ...(c.image ? { image: c.image } : {}) })),
  };
  if (pod.spec.initContainers) {
    spec.initContainers = pod.spec.initContainers.map((c) => ({
      name: c.name,
      ...(c.image ? { image: c.image } : {}),
    }));
  }
  if (pod.spec.nodeName) spec.nodeName = pod.spec.nodeName;
  if (pod.spec.schedulingGates) spec.schedulingGates = pod.spec.schedulingGates;
  if (pod.spec.affinity) spec.affinity = pod.spec.affinity;
  const slim: Pod = { metadata: slimMeta(pod.metadata), spec };
  if (pod.apiVersion) slim.apiVersion = pod.apiVersion;
  if (pod.kind) slim.kind = pod.kind;
  if (pod.status) {
    const status: NonNullable<Pod['status']> = {};
    if (pod.status.phase) status.phase = pod.status.phase;
    if (pod.status.containerStatuses) status.containerStatuses = pod.status.containerStatuses.map(slimStatus);
    if (pod.status.initContainerStatuses) {
      status.initContainerStatuses = pod.status.initContainerStatuses.map(slimStatus);
    }
    slim.status = status;
  }
  return slim;
}

/** A node as the controllers read it: name, labels, and its conditions without heartbeat times. */
export function slimNode(node: Node): Node {
  const slim: Node = { metadata: slimMeta(node.metadata) };
  if (node.apiVersion) slim.apiVersion = node.apiVersion;
  if (node.kind) slim.kind = node.kind;
  if (node.spec) slim.spec = node.spec.taints ? { taints: node.spec.taints } : {};
  const conditions = node.status?.conditions;
  if (conditions) {
    slim.status = {
      conditions: conditions.map((c) => ({
        type: c.type,
        status: c.status,
        ...(c.reason ? { reason: c.reason } : {}),
        ...(c.message ? { message: c.message } : {}),
      })),
    };
  }
  return slim;
}
