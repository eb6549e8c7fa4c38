/**
 * What informers keep of objects the kubelet writes: only the fields
 * controllers read. A kubelet-managed pod or node carries many kilobytes the
 * operator never looks at (managedFields, node images, heartbeat times, volume
 * and resource details); at 1000 nodes that is most of the cache. Pure.
 */
import type { ContainerStatus, Node, NodeCondition, ObjectMeta } from './objects.ts';

/** A node as {@link slimNode} keeps it: name, labels, taints, and its conditions without heartbeat times. */
export interface SlimNode extends Node {
  spec?: { taints?: NonNullable<Node['spec']>['taints'] };
  status?: { conditions?: NodeCondition[] };
}

/** The metadata a controller reads: identity, versions, labels, annotations and owners. */
export function slimMeta(m: ObjectMeta): ObjectMeta {
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

/** A container's status without its resources and volume details. */
export function slimContainerStatus(s: ContainerStatus): ContainerStatus {
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

/** A node as the controllers read it: name, labels, and its conditions without heartbeat times. */
export function slimNode(node: Node): SlimNode {
  const slim: SlimNode = { metadata: slimMeta(node.metadata) };
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
