/**
 * Bringing nodes onto the digest the registry serves (registry checks with
 * spec.refresh): a node is stale when its puller pod holds a tag at another
 * digest than the last check resolved. Its pod is deleted and the DaemonSet
 * makes a new one, whose container pulls the tag again (imagePullPolicy
 * Always). Nodes that hold the resolved digest keep their pods, so a check
 * that finds nothing moved replaces nothing, and a moved tag replaces only
 * the stale nodes' pods, in waves no larger than maxConcurrentPulls. The plan
 * reads only the pods and the checks in status, so a new leader goes on from
 * there. Pure: the controller deletes the pods this picks.
 */
import type { ImageReference } from '../../image/reference.ts';
import type { PullerPod } from './pods.ts';
import { holdContainerName, podCreatedAt } from './protocol.ts';
import type { ImageResolution } from './resolution.ts';
import { digestOf, isWaitingForPullSlot, podNodeName } from './status.ts';
import { isPullFinished } from './throttle.ts';

/** A node whose pod holds an image at another digest than the registry serves. */
export interface StaleNode {
  node: string;
  pod: PullerPod;
  /** The first stale image: its reference as the pod names it, the digest held, the digest resolved. */
  image: string;
  held: string;
  resolved: string;
}

export interface StaleNodePlan {
  /** Every stale node, oldest pod first. */
  stale: StaleNode[];
  /** The stale nodes whose pods to delete now. */
  replace: StaleNode[];
  /** Nodes counted as taking a slot: pods still pulling or waiting, and nodes whose pod is gone. */
  inFlight: number;
}

export interface StaleNodeInput {
  /** The object's puller pods, as the cache shows them. */
  pods: readonly PullerPod[];
  /** The images, aligned with spec.images: undefined for tarballs and unparsable references. */
  refs: readonly (ImageReference | undefined)[];
  /** The checks, aligned with spec.images. */
  resolutions: readonly (ImageResolution | undefined)[];
  /** Nodes the DaemonSet should run a pod on. */
  desiredNodes: number;
  /** Pods at most replaced or pulling at once (throttle.ts resolvePullLimit). */
  limit: number;
  /** Pods this controller deleted that the cache still shows. */
  deleting?: (pod: PullerPod) => boolean;
}

/**
 * The stale nodes, and those whose pods to delete now: as many, oldest pod
 * first, as keep the nodes in flight within `limit`. A digest counts only
 * when a check resolved it (a failed check stalls nothing and tears nothing
 * down) and only for a pod created no later than that check, so a node whose
 * fresh pull still shows another digest (a mirror, a tag that moved again) is
 * tried again at the next check, never in a loop.
 */
export function planStaleNodes(input: StaleNodeInput): StaleNodePlan {
  const deleting = input.deleting ?? (() => false);
  const newest = new Map<string, PullerPod>();
  let inFlight = 0;
  for (const pod of input.pods) {
    if (pod.metadata.deletionTimestamp || deleting(pod)) continue;
    const node = podNodeName(pod);
    if (node === undefined) continue;
    const seen = newest.get(node);
    if (!seen || (podCreatedAt(pod) ?? 0) > (podCreatedAt(seen) ?? 0)) newest.set(node, pod);
  }
  for (const pod of newest.values()) {
    if (isWaitingForPullSlot(pod) || !isPullFinished(pod)) inFlight++;
  }
  // A node whose pod was deleted and not yet made again is on its way too.
  inFlight += Math.max(0, input.desiredNodes - newest.size);

  const stale: StaleNode[] = [];
  for (const [node, pod] of newest) {
    const found = staleImage(pod, input.refs, input.resolutions);
    if (found) stale.push({ node, pod, ...found });
  }
  stale.sort((a, b) => (podCreatedAt(a.pod) ?? 0) - (podCreatedAt(b.pod) ?? 0) || (a.node < b.node ? -1 : 1));
  const free = Math.max(0, input.limit - inFlight);
  return { stale, replace: Number.isFinite(free) ? stale.slice(0, free) : stale, inFlight };
}

function staleImage(
  pod: PullerPod,
  refs: readonly (ImageReference | undefined)[],
  resolutions: readonly (ImageResolution | undefined)[],
): { image: string; held: string; resolved: string } | undefined {
  const created = podCreatedAt(pod);
  for (const [index, ref] of refs.entries()) {
    // Digest references never move, and tag+digest references keep their digest.
    if (!ref?.tag || ref.digest) continue;
    const resolution = resolutions[index];
    const resolved = resolution?.resolvedDigest;
    if (!resolved || resolution.registryCheck) continue;
    const checkedAt = Date.parse(resolution.resolvedAt);
    if (created === undefined || Number.isNaN(checkedAt) || created > checkedAt) continue;
    const name = holdContainerName(index);
    const status = pod.status?.containerStatuses?.find((s) => s.name === name);
    // Only a registry digest (`repo@sha256:…`) says what the node holds; kwok reports none.
    if (!status?.imageID?.includes('@')) continue;
    const held = digestOf(status.imageID);
    if (held !== resolved) {
      const image = pod.spec.containers.find((c) => c.name === name)?.image ?? '';
      return { image, held, resolved };
    }
  }
  return undefined;
}
