/**
 * `maxConcurrentPulls`: puller pods are created with a scheduling gate, and the
 * controller lifts it from the oldest gated pods while fewer than the limit are
 * pulling. The gate holds a pod before scheduling, so a waiting pod costs the
 * node nothing.
 */
import type { PullerPod } from './pods.ts';
import { podCreatedAt } from './protocol.ts';
import { hasImage, isPullFailure, isWaitingForPullSlot } from './status.ts';

/**
 * How many pods may pull at once: unlimited without a setting, a percentage of
 * the desired nodes rounded down but at least 1, or the number itself.
 */
export function resolvePullLimit(
  maxConcurrentPulls: number | string | undefined,
  desiredNodes: number,
): number {
  if (maxConcurrentPulls === undefined) return Number.POSITIVE_INFINITY;
  if (typeof maxConcurrentPulls === 'number') return Math.max(1, Math.floor(maxConcurrentPulls));
  const match = /^(\d+)(%?)$/.exec(maxConcurrentPulls.trim());
  // The CRD rejects anything else; if something slips through, pull one at a
  // time rather than all at once.
  if (!match) return 1;
  const value = Number(match[1]);
  if (match[2] !== '%') return Math.max(1, value);
  return Math.max(1, Math.floor((desiredNodes * value) / 100));
}

/**
 * The gated pods to ungate now: the oldest first (by creation time, then name),
 * as many as keep the pods still pulling within `limit`. Pods being deleted
 * count for nothing.
 */
export function podsToAdmit(pods: PullerPod[], limit: number): PullerPod[] {
  const live = pods.filter((pod) => !pod.metadata.deletionTimestamp);
  const inFlight = live.filter((pod) => !isWaitingForPullSlot(pod) && !isPullFinished(pod)).length;
  const gated = live.filter(isWaitingForPullSlot).sort(byAge);
  const free = Math.max(0, limit - inFlight);
  return Number.isFinite(free) ? gated.slice(0, free) : gated;
}

/**
 * A pod no longer takes a pull slot once it holds every image, or once the
 * kubelet reports a failure: it then only retries with back-off, and a bad
 * reference on some nodes must not stall the rollout to all the others.
 */
export function isPullFinished(pod: PullerPod): boolean {
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return true;
  const statuses = pod.status?.containerStatuses ?? [];
  if (statuses.some(isPullFailure) || (pod.status?.initContainerStatuses ?? []).some(isPullFailure))
    return true;
  return pod.spec.containers.every((c) => hasImage(statuses.find((s) => s.name === c.name)));
}

function byAge(a: PullerPod, b: PullerPod): number {
  const [ta, tb] = [creationTime(a), creationTime(b)];
  if (ta !== tb) return ta < tb ? -1 : 1;
  const [x, y] = [a.metadata.name ?? '', b.metadata.name ?? ''];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Unknown creation time sorts last: such a pod is not known to have waited longest. */
function creationTime(pod: PullerPod): number {
  return podCreatedAt(pod) ?? Number.POSITIVE_INFINITY;
}
