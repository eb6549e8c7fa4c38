/**
 * What informers keep of objects the kubelet writes: only the fields
 * controllers read. A kubelet-managed pod or node carries many kilobytes the
 * operator never looks at (managedFields, node images, heartbeat times, volume
 * and resource details, kubectl's last-applied copy); at thousands of nodes
 * that is most of the cache. Strings that repeat across objects (namespaces,
 * image names, condition texts) are kept once ({@link intern}). Pure in
 * effect: the intern table is bounded, and what it returns equals its input.
 */
import type {
  ContainerState,
  ContainerStatus,
  Node,
  NodeCondition,
  ObjectMeta,
  OwnerReference,
} from './objects.ts';

/** A node as {@link slimNode} keeps it: name, labels, taints, and its conditions without heartbeat times. */
export interface SlimNode extends Node {
  spec?: { taints?: NonNullable<Node['spec']>['taints'] };
  status?: { conditions?: NodeCondition[] };
}

/**
 * kubectl's copy of what it last applied, on every object made with
 * `kubectl apply`: often the largest annotation, and never read here.
 */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/** Distinct strings {@link intern} keeps before it starts over. */
const INTERN_LIMIT = 4096;
const internTable = new Map<string, string>();

/**
 * One shared copy of `value`. JSON.parse gives every object its own copy of
 * each long string, so 5000 pods naming one image hold it 5000 times; through
 * here they hold it once. Only for strings that repeat across objects: the
 * table starts over when it holds {@link INTERN_LIMIT} of them, so a stream
 * of unique ones costs nothing lasting.
 */
export function intern<S extends string | undefined>(value: S): S {
  if (value === undefined) return value;
  const known = internTable.get(value);
  if (known !== undefined) return known as S;
  if (internTable.size >= INTERN_LIMIT) internTable.clear();
  internTable.set(value, value);
  return value;
}

/** Annotations without kubectl's last-applied copy; a map that held only that stays, empty (a JSON patch may add to it). */
export function slimAnnotations(annotations: Record<string, string>): Record<string, string> {
  if (!(LAST_APPLIED_ANNOTATION in annotations)) return annotations;
  const { [LAST_APPLIED_ANNOTATION]: _, ...rest } = annotations;
  return rest;
}

/** The metadata a controller reads: identity, versions, labels, annotations (but kubectl's copy) and owners. */
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
  if (out.namespace !== undefined) out.namespace = intern(out.namespace);
  if (out.annotations) out.annotations = slimAnnotations(out.annotations);
  return out;
}

/** An owner reference with its strings interned (many objects name one owner). */
export function slimOwnerReference(o: OwnerReference): OwnerReference {
  const out: OwnerReference = {
    apiVersion: intern(o.apiVersion),
    kind: intern(o.kind),
    name: intern(o.name),
    uid: intern(o.uid),
  };
  if (o.controller !== undefined) out.controller = o.controller;
  if (o.blockOwnerDeletion !== undefined) out.blockOwnerDeletion = o.blockOwnerDeletion;
  return out;
}

/** A running container's state: that it runs (its start time is never read). */
const RUNNING: NonNullable<ContainerState['running']> = Object.freeze({});

/** A container state as controllers read it: waiting's reason and message, that it runs, how it ended. */
export function slimContainerState(state: ContainerState): ContainerState {
  const out: ContainerState = {};
  if (state.waiting) {
    const { reason, message } = state.waiting;
    out.waiting = {
      ...(reason !== undefined ? { reason: intern(reason) } : {}),
      ...(message !== undefined ? { message: intern(message) } : {}),
    };
  }
  if (state.running) out.running = RUNNING;
  if (state.terminated) {
    const { exitCode, reason, message } = state.terminated;
    out.terminated = {
      exitCode,
      ...(reason !== undefined ? { reason: intern(reason) } : {}),
      ...(message !== undefined ? { message } : {}),
    };
  }
  return out;
}

/** A container's status without its resources, volume details and times. */
export function slimContainerStatus(s: ContainerStatus): ContainerStatus {
  const out: ContainerStatus = {
    name: intern(s.name),
    image: intern(s.image),
    imageID: intern(s.imageID),
    ready: s.ready,
    restartCount: s.restartCount,
  };
  if (s.started !== undefined) out.started = s.started;
  if (s.state) out.state = slimContainerState(s.state);
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
        type: intern(c.type),
        status: intern(c.status),
        ...(c.reason ? { reason: intern(c.reason) } : {}),
        ...(c.message ? { message: intern(c.message) } : {}),
      })),
    };
  }
  return slim;
}
