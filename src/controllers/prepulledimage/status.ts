/**
 * PrePulledImage status from what the kubelets report on the puller pods: per
 * node and image a state, counts, digests, and the Ready / Progressing /
 * Degraded conditions. Pure, and bounded in size however large the cluster.
 */
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import { importFingerprint } from '../../agent/node/imports/report.ts';
import { ConditionType, Reason } from '../../api/conditions.ts';
import {
  IMAGES_NOT_READY_TAINT,
  MAX_STATUS_NODES,
  type nodeImageStateSchema,
  type PrePulledImage,
  type PrePulledImageStatus,
  RELEASED_UNREADY_ANNOTATION,
} from '../../api/prepulledimage.ts';
import { normalizeImageReference } from '../../image/reference.ts';
import type { ContainerStateWaiting, ContainerStatus, DaemonSet, Node } from '../../kube/objects.ts';
import {
  applyConditions,
  type ConditionSet,
  failureConditions,
  type NewCondition,
  shortenMessage,
  verdict,
} from '../../runtime/conditions.ts';
import type { Failure } from '../../runtime/failure.ts';
import { compareStrings } from '../../runtime/order.ts';
import type { ImportsOnNode } from './agent-imports.ts';
import { PULL_SLOT_GATE } from './labels.ts';
import { namesImage } from './pinning.ts';
import type { PlatformPlan } from './platforms.ts';
import type { PullerPod } from './pods.ts';
import { archiveContainerName, holdIndexOf, podCreatedAt, tagContainerName } from './protocol.ts';
import { firstFailedCheck, type ImageResolution, withResolution } from './resolution.ts';
import { selectsNode } from './selection.ts';

/** One image on one node. */
export type NodeImageState = z.infer<typeof nodeImageStateSchema>;

/** What the status is computed from; the controller reads it from its caches. */
export interface StatusInput {
  /** Spec and metadata.generation; previous conditions keep their transition times. */
  ppi: PrePulledImage;
  /** Pods of its DaemonSet, of any template revision. */
  pods: PullerPod[];
  /** Every node that exists now, by name. */
  nodes: Map<string, Node>;
  /** Undefined before it is created. */
  daemonSet?: DaemonSet;
  /** The API server's message refusing the DaemonSet's latest pods, if any (refusals.ts). */
  podRefusal?: string;
  /** What the node agents report of this object's tarball imports, per node (agent-imports.ts). */
  imports?: ImportsOnNode;
  /** The registry checks of the images, aligned with spec.images, when the operator makes them (resolution.ts). */
  resolutions?: readonly (ImageResolution | undefined)[];
  /** With registry checks and spec.refresh: nodes that hold a tag at another digest than it resolved to (stale-nodes.ts). */
  staleNodes?: number;
  /** With registry checks: which images each architecture lacks (platforms.ts). */
  platforms?: PlatformPlan;
  now: Date;
}

/**
 * Ready / Progressing / Degraded, and kstatus's Stalled: Degraded is True for
 * every failure (Argo CD's health reads it), Stalled only for one that waits
 * for a human (Flux and kstatus read it as Failed; a failure that may pass by
 * itself leaves the object InProgress, from Ready False).
 */
export const PREPULLED_IMAGE_CONDITIONS: ConditionSet = {
  ready: ConditionType.Ready,
  progressing: ConditionType.Progressing,
  failing: ConditionType.Degraded,
  stalled: ConditionType.Stalled,
};

/**
 * Node failures that no retry fixes by itself: the registry or the archive
 * says no (credentials, a missing tag or platform, a bad name, an archive that
 * is corrupt, lacks the image or is refused by the import rules). A node
 * failing with one of them makes the object Stalled. The others (the registry
 * or file server unreachable, disk pressure, a kubelet error without a known
 * cause) may pass by themselves as the kubelet and the importer retry.
 */
const STALLING_NODE_REASONS: ReadonlySet<string> = new Set([
  Reason.Unauthorized,
  Reason.NotFound,
  Reason.PlatformMismatch,
  Reason.InvalidImageName,
  Reason.ErrImageNeverPull,
  Reason.ImportFailed,
  Reason.ChecksumMismatch,
  Reason.ImageNotInArchive,
  Reason.RuntimeNotFound,
  Reason.ImportConflict,
  Reason.DigestMismatch,
  Reason.ChecksumRequired,
  Reason.RedirectRefused,
  Reason.DownloadTooLarge,
  Reason.ArchiveTooLarge,
  Reason.PathRefused,
  Reason.NotRegularFile,
]);

const IMAGE_MESSAGE_MAX = 512;
const CONDITION_MESSAGE_MAX = 1024;
const FIRST_FAILURE_MESSAGE_MAX = 256;
const DIGEST_MAX = 128;
const MAX_DIGESTS = 8;
/**
 * JSON budget for `status.nodes`. MAX_STATUS_NODES alone is not enough: 50
 * nodes × 64 images × 512-character messages would be megabytes, past what
 * etcd stores in one object.
 */
const NODES_JSON_BUDGET = 128 * 1024;

/**
 * Waiting reasons with which the kubelet says a container cannot get or use its
 * image. It keeps retrying with back-off, so these are states, not verdicts.
 */
const PULL_FAILURE_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'ImageInspectError',
  'ErrImageNeverPull',
  'RegistryUnavailable',
  'InvalidImageName',
  'SignatureValidationFailed',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

/**
 * Whether the node has the container's image: the kubelet reports an image ID
 * once pulled. A running container has its image too; kwok's simulated nodes
 * report running containers without an image ID.
 */
export function hasImage(status: ContainerStatus | undefined): boolean {
  return Boolean(status?.imageID) || Boolean(status?.state?.running);
}

/** Whether the kubelet reports that the container cannot get or use its image. */
export function isPullFailure(status: ContainerStatus | undefined): boolean {
  const reason = status?.state?.waiting?.reason;
  return reason !== undefined && PULL_FAILURE_REASONS.has(reason);
}

/** Whether the pod still waits for the controller to give it a pull slot. */
export function isWaitingForPullSlot(pod: PullerPod): boolean {
  return pod.spec.schedulingGates?.some((gate) => gate.name === PULL_SLOT_GATE) ?? false;
}

/** Status writes per object are at least this far apart (the first one is immediate)... */
export const STATUS_WRITE_INTERVAL_MS = 2_000;
/**
 * ...and, over many nodes, this much per node the object wants: a status
 * pass walks every node, so the passes of a rollout cost CPU in proportion to
 * its nodes, not to their square (1000 nodes: 2 s; 5000 nodes: 5 s).
 * Ready, a transition, is written at once whatever the interval.
 */
export const STATUS_WRITE_INTERVAL_PER_NODE_MS = 1;

/** The status throttle's interval for `ppi`, from the nodes its status last counted. */
export function statusWriteIntervalOf(ppi: PrePulledImage): number {
  return Math.max(
    STATUS_WRITE_INTERVAL_MS,
    (ppi.status?.desiredNodes ?? 0) * STATUS_WRITE_INTERVAL_PER_NODE_MS,
  );
}
/** Whether the pod reports every one of its containers' images as on its node. */
export function holdsEveryImage(pod: PullerPod): boolean {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.length === pod.spec.containers.length && statuses.length > 0 && statuses.every(hasImage);
}

/**
 * Whether the object may just have become Ready: its status does not say so
 * yet, and as many puller pods hold every image ({@link holdsEveryImage};
 * `holding` of them, counted by an index) as its DaemonSets want. A count,
 * with no per-node work: while the status throttle holds, the controller
 * computes status only then (or for pods waiting for a pull slot), so that
 * the write that makes the object Ready is not held back. A pod of an older
 * rollout may make it true too early; that costs one computation.
 */
export function mayHaveBecomeReady(
  ppi: PrePulledImage,
  holding: number,
  daemonSet: DaemonSet | undefined,
): boolean {
  if (ppi.status?.conditions?.some((c) => c.type === ConditionType.Ready && c.status === 'True'))
    return false;
  const desired = daemonSet?.status?.desiredNumberScheduled ?? 0;
  return desired > 0 && holding >= desired;
}

/**
 * Whether a puller DaemonSet's change only moves the counts in its status:
 * the DaemonSet controller's writes as pods come and go, hundreds in a
 * rollout over thousands of nodes. Those may wait for the status throttle.
 * Anything else may need the object's reconcile at once: a change of its
 * spec or metadata (a hash the apply no longer finds, an owner taken away),
 * or a new observed generation (the rollout of a new spec has begun, or the
 * object may now be settled).
 */
export function onlyCountsMoved(previous: DaemonSet, daemonSet: DaemonSet): boolean {
  return (
    previous.status?.observedGeneration === daemonSet.status?.observedGeneration &&
    isDeepStrictEqual(previous.spec, daemonSet.spec) &&
    isDeepStrictEqual(lastingMetadata(previous), lastingMetadata(daemonSet))
  );
}

/** Metadata without what every write changes. */
function lastingMetadata({ metadata }: DaemonSet): DaemonSet['metadata'] {
  const { resourceVersion, managedFields, ...rest } = metadata;
  return rest;
}

const PLATFORM_MISMATCH = /no match for platform|no matching manifest for/i;
// Word boundaries keep a digest's hex digits from reading as a status code.
const UNAUTHORIZED =
  /\b401\b|unauthori[sz]ed|authorization failed|no basic auth credentials|403 forbidden|denied|insufficient_scope/i;
const NOT_FOUND = /not found|manifest unknown|\b404\b/i;

/**
 * The condition reason for a failed pull. The kubelet's message carries the
 * registry's answer, which says more than its waiting reason does.
 */
export function classifyPullFailure(waitingReason: string | undefined, message: string | undefined): Reason {
  const text = message ?? '';
  if (PLATFORM_MISMATCH.test(text)) return Reason.PlatformMismatch;
  if (UNAUTHORIZED.test(text)) return Reason.Unauthorized;
  if (NOT_FOUND.test(text)) return Reason.NotFound;
  if (waitingReason === 'InvalidImageName') return Reason.InvalidImageName;
  if (waitingReason === 'ErrImageNeverPull') return Reason.ErrImageNeverPull;
  if (waitingReason === 'ImagePullBackOff') return Reason.ImagePullBackOff;
  return Reason.ErrImagePull;
}

/** `docker-pullable://nginx@sha256:…` → `sha256:…`; an ID without a digest is returned as is. */
export function digestOf(imageID: string): string {
  const id = imageID.replace(/^docker-pullable:\/\//, '');
  const at = id.lastIndexOf('@');
  return shortenMessage(at >= 0 ? id.slice(at + 1) : id, DIGEST_MAX);
}

/**
 * The node a puller pod is for: where it is bound, or else the node the
 * DaemonSet controller pinned it to with a `metadata.name` field affinity.
 */
export function podNodeName(pod: PullerPod): string | undefined {
  if (pod.spec.nodeName) return pod.spec.nodeName;
  const terms =
    pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  for (const term of terms ?? []) {
    for (const field of term.matchFields ?? []) {
      if (field.key === 'metadata.name' && field.operator === 'In' && field.values?.[0])
        return field.values[0];
    }
  }
  return undefined;
}

type NodeGroup = 'failed' | 'pulling' | 'pending' | 'ready';
const GROUP_ORDER: Record<NodeGroup, number> = { failed: 0, pulling: 1, pending: 2, ready: 3 };

interface NodeReport {
  name: string;
  group: NodeGroup;
  images: NodeImageState[];
}

interface Counts {
  desired: number;
  ready: number;
  pulling: number;
  failed: number;
  pending: number;
}

/** How far one node is for a PrePulledImage: every image held, a failure, or on its way. */
export type NodeProgress =
  | { state: 'ready' }
  | { state: 'failed'; reason: string; message: string }
  | { state: 'waiting' };

/** {@link NodeProgress} of `node`, from the object's puller pods (of any node). */
export function nodeProgress(
  ppi: PrePulledImage,
  pods: PullerPod[],
  node: Node,
  imports?: ImportsOnNode,
  platforms?: PlatformPlan,
): NodeProgress {
  const name = node.metadata.name ?? '';
  const onNode = podsByNode(pods, new Map([[name, node]])).get(name);
  const mismatches = ppi.spec.images.map((entry, index) =>
    platformMismatch(platforms, node, index, normalizeOrKeep(entry.image)),
  );
  // A node no image fits gets no pod: it is known to fail before any would run.
  if (!onNode && !mismatches.every((m) => m !== undefined)) return { state: 'waiting' };
  const context: ImageContext = { ppi, ...(imports && { imports }) };
  const images = ppi.spec.images.map(
    (entry, index) =>
      mismatches[index] ?? imageStateOnNode(context, onNode ?? [], node, normalizeOrKeep(entry.image)),
  );
  const group = groupOf(images);
  if (group === 'ready') return { state: 'ready' };
  if (group !== 'failed') return { state: 'waiting' };
  const failure = images.find((s) => s.state === 'Failed');
  return {
    state: 'failed',
    reason: failure?.reason ?? Reason.NodesFailing,
    message: `${failure?.image}: ${failure?.message ?? failure?.reason}`,
  };
}

/** Aggregates the puller pods into the PrePulledImage's status. */
export function computePrePulledImageStatus(input: StatusInput): PrePulledImageStatus {
  const { ppi, nodes, daemonSet, now } = input;
  const refs = ppi.spec.images.map((entry) => normalizeOrKeep(entry.image));
  const reports: NodeReport[] = [];
  const context: ImageContext = { ppi, ...(input.imports && { imports: input.imports }) };
  const byNode = podsByNode(input.pods, nodes);
  for (const [name, pods] of byNode) {
    const node = nodes.get(name)!;
    const images = refs.map(
      (ref, index) =>
        platformMismatch(input.platforms, node, index, ref) ?? imageStateOnNode(context, pods, node, ref),
    );
    reports.push({ name, group: groupOf(images), images });
  }
  // Nodes whose architecture no image offers get no pod at all: each image is PlatformMismatch there.
  if (input.platforms && input.platforms.excluded.length > 0) {
    for (const [name, node] of nodes) {
      if (byNode.has(name) || !selectsNode(ppi, node)) continue;
      const images = refs.map((ref, index) => platformMismatch(input.platforms, node, index, ref));
      if (images.every((s) => s !== undefined)) reports.push({ name, group: 'failed', images });
    }
  }
  reports.sort((a, b) => GROUP_ORDER[a.group] - GROUP_ORDER[b.group] || compareStrings(a.name, b.name));

  const inGroup: Record<NodeGroup, number> = { failed: 0, pulling: 0, pending: 0, ready: 0 };
  for (const report of reports) inGroup[report.group]++;
  // Nodes the DaemonSet controller wants but has not yet made a pod for. Its
  // count still includes a deleted node while that node's pod exists (until
  // PodGC takes it), so such nodes are taken off: only existing nodes count.
  const goneNodes = new Set<string>();
  for (const pod of input.pods) {
    const node = podNodeName(pod);
    if (node !== undefined && !nodes.has(node)) goneNodes.add(node);
  }
  const dsDesired = daemonSet?.status?.desiredNumberScheduled ?? 0;
  const unscheduled = Math.max(0, dsDesired - byNode.size - goneNodes.size);
  const counts: Counts = {
    desired: reports.length + unscheduled,
    ready: inGroup.ready,
    pulling: inGroup.pulling,
    failed: inGroup.failed,
    pending: inGroup.pending + unscheduled,
  };

  const images = ppi.spec.images.map((entry, index) => {
    let readyNodes = 0;
    const digests = new Set<string>();
    for (const report of reports) {
      const state = report.images[index];
      if (state?.state !== 'Ready') continue;
      readyNodes++;
      if (state.digest) digests.add(state.digest);
    }
    return withResolution(
      {
        image: refs[index] ?? entry.image,
        ...(entry.name !== undefined && { name: entry.name }),
        digests: [...digests].sort(compareStrings).slice(0, MAX_DIGESTS),
        readyNodes,
      },
      input.resolutions?.[index],
    );
  });

  const listed = listNodes(reports);
  const generation = ppi.metadata.generation;
  const decided = withRegistryCheck(
    decideConditions(ppi, counts, reports, daemonSet, input.podRefusal),
    firstFailedCheck(ppi, input.resolutions),
    counts,
  );
  return {
    ...(generation !== undefined && { observedGeneration: generation }),
    conditions: applyConditions(ppi, decided, now),
    ready: `${counts.ready}/${counts.desired}`,
    desiredNodes: counts.desired,
    readyNodes: counts.ready,
    pullingNodes: counts.pulling,
    failedNodes: counts.failed,
    ...(input.staleNodes !== undefined && { staleNodes: input.staleNodes }),
    images,
    nodes: listed,
    ...(reports.length > listed.length && { nodesOmitted: reports.length - listed.length }),
    ...(ppi.spec.nodeReadiness?.taint && { nodeReadiness: nodeReadinessOf(ppi, nodes) }),
  };
}

/**
 * The nodes this object selects that the startup taint still holds back, and
 * those released before they were ready (their pods may not even exist yet).
 */
function nodeReadinessOf(
  ppi: PrePulledImage,
  nodes: Map<string, Node>,
): NonNullable<PrePulledImageStatus['nodeReadiness']> {
  let heldBack = 0;
  const released: string[] = [];
  for (const [name, node] of nodes) {
    if (!selectsNode(ppi, node)) continue;
    if (node.spec?.taints?.some((t) => t.key === IMAGES_NOT_READY_TAINT)) heldBack++;
    if (node.metadata.annotations?.[RELEASED_UNREADY_ANNOTATION] !== undefined) released.push(name);
  }
  released.sort(compareStrings);
  return { heldBack, ...(released.length > 0 && { releasedUnready: released.slice(0, MAX_STATUS_NODES) }) };
}

/**
 * Status for a pass that cannot go on: a spec the controller cannot act on
 * (terminal until the user edits it, so Progressing is False), or a step that
 * failed (retried, so Progressing stays True). Counts and lists from the last
 * good pass are kept, since the pods are still there.
 */
export function stalledStatus(ppi: PrePulledImage, failure: Failure, now: Date): PrePulledImageStatus {
  const generation = ppi.metadata.generation;
  return {
    ...ppi.status,
    ...(generation !== undefined && { observedGeneration: generation }),
    conditions: failureConditions(ppi, PREPULLED_IMAGE_CONDITIONS, failure, {
      now,
      maxMessage: CONDITION_MESSAGE_MAX,
      failingWhileRetrying: true,
    }),
  };
}

/**
 * The pods of each existing node, newest first: during a rollout (surge) a
 * replacement runs beside the pod it replaces. Pods being deleted are already
 * gone as far as the node's images are concerned.
 */
function podsByNode(pods: PullerPod[], nodes: Map<string, Node>): Map<string, PullerPod[]> {
  const byNode = new Map<string, PullerPod[]>();
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const name = podNodeName(pod);
    if (name === undefined || !nodes.has(name)) continue;
    const list = byNode.get(name);
    if (list) list.push(pod);
    else byNode.set(name, [pod]);
  }
  for (const list of byNode.values()) {
    if (list.length > 1) list.sort((a, b) => (isNewer(a, b) ? -1 : isNewer(b, a) ? 1 : 0));
  }
  return byNode;
}

function isNewer(a: PullerPod, b: PullerPod): boolean {
  // An unknown creation time is not known to be the replacement: it sorts oldest.
  const delta = (podCreatedAt(a) ?? 0) - (podCreatedAt(b) ?? 0);
  // Ties fall back to the name so the choice does not depend on list order.
  return delta !== 0 ? delta > 0 : compareStrings(a.metadata.name ?? '', b.metadata.name ?? '') > 0;
}

/** What image states are read against: the object, and the agents' import reports. */
interface ImageContext {
  ppi: PrePulledImage;
  imports?: ImportsOnNode;
}

/**
 * Each puller pod's image states, by image, for objects that import nothing:
 * a state is then a function of the pod object alone, which the informer
 * replaces on every change. In a rollout over thousands of nodes most pods
 * do not change between two status passes, so a pass reads them from here.
 * Weakly held: a pod the informer lets go takes its states with it.
 */
const podImageStates = new WeakMap<PullerPod, Map<string, NodeImageState>>();

/** {@link imageStateInPod}, from {@link podImageStates} when no image of the object is imported. */
function podImageState(context: ImageContext, pod: PullerPod, image: string): NodeImageState {
  if (context.imports && context.ppi.spec.images.some((entry) => entry.tarball))
    return imageStateInPod(context, pod, image);
  let states = podImageStates.get(pod);
  if (!states) {
    states = new Map();
    podImageStates.set(pod, states);
  }
  let state = states.get(image);
  if (!state) {
    state = imageStateInPod(context, pod, image);
    states.set(image, state);
  }
  return state;
}

function imageStateOnNode(
  context: ImageContext,
  pods: PullerPod[],
  node: Node,
  image: string,
): NodeImageState {
  const [newest, ...older] = pods as [PullerPod, ...PullerPod[]];
  let state = podImageState(context, newest, image);
  // A replacement on its way (a spec edit, a refresh round): the pod it
  // replaces still holds the image, so the node has it. A failure of the
  // replacement is reported, not hidden.
  if (state.state === 'Pulling' || state.state === 'Pending') {
    const held = older.map((pod) => podImageState(context, pod, image)).find((s) => s.state === 'Ready');
    if (held) state = held;
  }
  if (state.state === 'Ready') return state;
  // The kubelet garbage-collects images and refuses new pods under disk
  // pressure; that, not the pod's own state, is what the user must fix.
  const pressure = node.status?.conditions?.find((c) => c.type === 'DiskPressure' && c.status === 'True');
  if (pressure)
    return failed(image, Reason.DiskPressure, pressure.message || 'the node is under disk pressure');
  return state;
}

function imageStateInPod(context: ImageContext, pod: PullerPod, image: string): NodeImageState {
  const container = pod.spec.containers.find(
    (c) => holdIndexOf(c.name) !== undefined && namesImage(c.image, image),
  );
  if (!container) return pending(image, 'waiting for the DaemonSet to roll out the new spec');
  const status = pod.status?.containerStatuses?.find((s) => s.name === container.name);
  const pinned = tagPullState(pod, container.name, image);
  if (pinned && status && hasImage(status)) return pinned;
  const imported = importOutcome(context, pod, container.name, image, status);
  // A refused import over someone else's image of that name: the hold container
  // runs, but on their content, not this object's.
  if (imported?.reason === Reason.ImportConflict) return imported;
  if (imported && !(status && hasImage(status))) return imported;
  if (status && hasImage(status)) {
    return status.imageID
      ? { image, state: 'Ready', digest: digestOf(status.imageID) }
      : { image, state: 'Ready' };
  }
  if (isWaitingForPullSlot(pod)) return pending(image, 'waiting for a pull slot (maxConcurrentPulls)');
  if (!pod.spec.nodeName) return pending(image, 'waiting for the pod to be scheduled');
  if (status?.state?.waiting && isPullFailure(status)) return failedPull(image, status.state.waiting, '');
  // Until the agent's init container runs, the kubelet pulls none of the
  // images, so an agent that cannot be pulled blocks every one of them.
  const agent = pod.status?.initContainerStatuses?.find(isPullFailure)?.state?.waiting;
  if (agent) return failedPull(image, agent, 'agent image: ');
  return { image, state: 'Pulling', reason: Reason.Pulling };
}

/** Image `index` on `node` as PlatformMismatch when the node's architecture lacks it (platforms.ts). */
function platformMismatch(
  platforms: PlatformPlan | undefined,
  node: Node,
  index: number,
  image: string,
): NodeImageState | undefined {
  const why = platforms?.mismatch(index, node.metadata.labels?.['kubernetes.io/arch']);
  return why === undefined ? undefined : failed(image, Reason.PlatformMismatch, why);
}

/**
 * For a hold container pinned to a digest (pinning.ts): the state of the
 * container that pulls the tag, until it holds the image too, since a
 * workload naming the tag finds it only then. Undefined when there is none,
 * or once it holds the image.
 */
function tagPullState(pod: PullerPod, holdName: string, image: string): NodeImageState | undefined {
  const index = holdIndexOf(holdName);
  const name = index === undefined ? undefined : tagContainerName(index);
  if (!name || !pod.spec.containers.some((c) => c.name === name)) return undefined;
  const status = pod.status?.containerStatuses?.find((s) => s.name === name);
  if (status && hasImage(status)) return undefined;
  if (status?.state?.waiting && isPullFailure(status))
    return failedPull(image, status.state.waiting, 'tag: ');
  return { image, state: 'Pulling', reason: Reason.Pulling };
}

/**
 * For an image imported from a tarball: what the node agent reports of its
 * import while it waits or runs, when it failed (with the importer's reason),
 * or when it refused to replace someone else's image; else undefined and the
 * hold container's state decides. The hold container uses the image with
 * imagePullPolicy Never, so until the kubelet next tries it after the import,
 * it waits with ErrImageNeverPull: that is part of importing, not a failure.
 */
function importOutcome(
  context: ImageContext,
  pod: PullerPod,
  containerName: string,
  image: string,
  status: ContainerStatus | undefined,
): NodeImageState | undefined {
  const index = holdIndexOf(containerName);
  const entry = index === undefined ? undefined : context.ppi.spec.images[index];
  const node = pod.spec.nodeName;
  if (!entry?.tarball || !node || !context.imports) return undefined;
  const onNode = context.imports(node);
  const spec = importFingerprint(entry);
  const reported = onNode.entries.find((e) => e.index === index && e.spec === spec);
  if (reported?.state === 'Failed' && reported.reason === Reason.ImportConflict) {
    return failed(image, Reason.ImportConflict, reported.message);
  }
  if (status && hasImage(status)) return undefined;
  if (!onNode.agent) {
    return {
      image,
      state: 'Pending',
      reason: Reason.AgentMissing,
      message: 'no prepull-agent pod runs on this node, and it is what imports tarballs',
    };
  }
  if (reported?.state === 'Failed') {
    return failed(image, (reported.reason as Reason | undefined) ?? Reason.ImportFailed, reported.message);
  }
  if (
    reported?.state === 'Imported' &&
    status?.state?.waiting &&
    refusedForCredentials(status.state.waiting)
  ) {
    return failed(
      image,
      Reason.CredentialsNotVerified,
      `imported, but the kubelet will not start it for the puller pod: ${status.state.waiting.message}. The content was pulled onto this node before with credentials; give the PrePulledImage imagePullSecrets that can pull it, or set the kubelet's imagePullCredentialsVerificationPolicy`,
    );
  }
  if (reported?.state === 'Imported') {
    return {
      image,
      state: 'Pulling',
      reason: Reason.Importing,
      message: 'imported; waiting for the kubelet to start the container',
    };
  }
  return {
    image,
    state: 'Pulling',
    reason: Reason.Importing,
    message: reported
      ? 'the node agent is importing the archive'
      : entry.tarball.persistentVolumeClaim
        ? `waiting for the puller pod's ${archiveContainerName(index!)} container to send the archive from claim ${entry.tarball.persistentVolumeClaim.claimName} to the node agent`
        : 'waiting for the node agent to import the archive',
  };
}

/**
 * The kubelet's refusal of an image that is present (ErrImageNeverPull, its
 * message since 1.35): it was pulled onto the node with credentials this pod
 * lacks. The kubelet offers no reason of its own for this, only the message.
 */
function refusedForCredentials(waiting: ContainerStateWaiting): boolean {
  return (
    waiting.reason === 'ErrImageNeverPull' &&
    /is present with pull policy of Never but does not have the proper auth/.test(waiting.message ?? '')
  );
}

function pending(image: string, message: string): NodeImageState {
  return { image, state: 'Pending', reason: Reason.Pending, message };
}

function failed(image: string, reason: Reason, message: string | undefined): NodeImageState {
  const state: NodeImageState = { image, state: 'Failed', reason };
  if (message) state.message = shortenMessage(message, IMAGE_MESSAGE_MAX);
  return state;
}

function failedPull(image: string, waiting: ContainerStateWaiting, prefix: string): NodeImageState {
  const message = waiting.message || waiting.reason;
  return failed(
    image,
    classifyPullFailure(waiting.reason, waiting.message),
    message && `${prefix}${message}`,
  );
}

function groupOf(images: NodeImageState[]): NodeGroup {
  if (images.every((s) => s.state === 'Ready')) return 'ready';
  if (images.some((s) => s.state === 'Failed')) return 'failed';
  if (images.some((s) => s.state === 'Pulling')) return 'pulling';
  return 'pending';
}

/** Reports are sorted most-interesting first, so cutting the tail drops ready nodes first. */
function listNodes(reports: NodeReport[]): NonNullable<PrePulledImageStatus['nodes']> {
  const listed: NonNullable<PrePulledImageStatus['nodes']> = [];
  let size = 0;
  for (const report of reports) {
    if (listed.length >= MAX_STATUS_NODES) break;
    const entry = { name: report.name, ready: report.group === 'ready', images: report.images };
    size += JSON.stringify(entry).length;
    if (size > NODES_JSON_BUDGET) break;
    listed.push(entry);
  }
  return listed;
}

function decideConditions(
  ppi: PrePulledImage,
  counts: Counts,
  reports: NodeReport[],
  daemonSet: DaemonSet | undefined,
  podRefusal: string | undefined,
): NewCondition[] {
  const progress = { reason: Reason.Progressing, message: progressMessage(counts, daemonSet) };
  if (podRefusal !== undefined && counts.pending > 0) {
    // Nodes wait for pods the cluster will not create: say why, in its words.
    const message = shortenMessage(
      `${counts.pending} of ${counts.desired} nodes have no puller pod; the DaemonSet controller's last try: ${podRefusal}`,
      CONDITION_MESSAGE_MAX,
    );
    return verdict(PREPULLED_IMAGE_CONDITIONS, {
      reason: Reason.PodsRefused,
      message,
      ready: false,
      progressing: true,
      failing: true,
      progress: { reason: Reason.PodsRefused, message },
    });
  }
  if (counts.failed > 0) {
    return verdict(PREPULLED_IMAGE_CONDITIONS, {
      reason: Reason.NodesFailing,
      message: failureMessage(ppi, counts, reports),
      ready: false,
      progressing: counts.pulling + counts.pending > 0,
      failing: true,
      progress,
      stalled: reports.some(
        (r) =>
          r.group === 'failed' &&
          r.images.some(
            (s) => s.state === 'Failed' && s.reason !== undefined && STALLING_NODE_REASONS.has(s.reason),
          ),
      ),
    });
  }
  // The counts mean nothing until the DaemonSet controller has seen the latest
  // template, after a spec edit. A template change of the same spec (a refresh
  // round, a renamed credential) leaves a Ready object Ready: the pods it
  // replaces hold the images until their replacements run (surge).
  const sameSpecWasReady =
    ppi.status?.observedGeneration === ppi.metadata.generation &&
    ppi.status?.conditions?.some((c) => c.type === ConditionType.Ready && c.status === 'True') === true;
  const settled = daemonSet !== undefined && (isObserved(daemonSet) || sameSpecWasReady);
  const done = { ready: true, progressing: false, failing: false };
  if (settled && counts.desired === 0) {
    return verdict(PREPULLED_IMAGE_CONDITIONS, {
      reason: Reason.NoMatchingNodes,
      message: "no node matches the PrePulledImage's node selection",
      ...done,
    });
  }
  if (settled && counts.ready === counts.desired) {
    const message = `${counts.ready}/${counts.desired} nodes hold every image`;
    return verdict(PREPULLED_IMAGE_CONDITIONS, { reason: Reason.AllNodesReady, message, ...done });
  }
  return verdict(PREPULLED_IMAGE_CONDITIONS, {
    ...progress,
    ready: false,
    progressing: true,
    failing: false,
  });
}

/**
 * A failed registry check makes the object Degraded with the check's reason
 * (Unauthorized, NotFound, RegistryUnavailable), unless nodes fail already
 * (their failure is then the one to fix first). Ready and Progressing stay as
 * the nodes make them: nodes that hold the images go on holding them.
 */
function withRegistryCheck(
  decided: NewCondition[],
  failure: { image: string; reason: string; message?: string } | undefined,
  counts: Counts,
): NewCondition[] {
  if (!failure || counts.failed > 0) return decided;
  const message = shortenMessage(
    `registry check of ${failure.image} failed${failure.message ? `: ${failure.message}` : ''}`,
    CONDITION_MESSAGE_MAX,
  );
  return decided.map((c) =>
    c.type === PREPULLED_IMAGE_CONDITIONS.failing
      ? { ...c, status: 'True', reason: failure.reason, message }
      : c,
  );
}

function isObserved(daemonSet: DaemonSet): boolean {
  return (daemonSet.status?.observedGeneration ?? -1) >= (daemonSet.metadata.generation ?? 0);
}

function progressMessage(counts: Counts, daemonSet: DaemonSet | undefined): string {
  if (daemonSet === undefined) return 'waiting for the puller DaemonSet to be created';
  let message = `${counts.ready}/${counts.desired} nodes ready, ${counts.pulling} pulling`;
  if (counts.pending > 0) message += `, ${counts.pending} pending`;
  if (!isObserved(daemonSet)) message += '; the DaemonSet controller has not yet seen the latest spec';
  return message;
}

/** Names the first failure, so `kubectl get` shows what to fix without reading `nodes`. */
function failureMessage(ppi: PrePulledImage, counts: Counts, reports: NodeReport[]): string {
  let message = `${counts.failed} of ${counts.desired} nodes failed`;
  const report = reports.find((r) => r.group === 'failed');
  const index = report?.images.findIndex((s) => s.state === 'Failed') ?? -1;
  const state = report?.images[index];
  if (report && state) {
    const entry = ppi.spec.images[index];
    message += `: ${report.name} ${entry?.name ?? state.image} ${state.reason}`;
    if (state.message) message += `: ${shortenMessage(state.message, FIRST_FAILURE_MESSAGE_MAX)}`;
  }
  return shortenMessage(message, CONDITION_MESSAGE_MAX);
}

/** The status must still be written for a reference render would reject; show it as given. */
function normalizeOrKeep(image: string): string {
  try {
    return normalizeImageReference(image);
  } catch {
    return image;
  }
}
