/**
 * Retrying failed tarball imports. An import step runs once per pod, as an init
 * container, so a node whose import failed (file not there yet, a download
 * server down, an archive being replaced) would stay failed until the spec
 * changed. Instead its pod is deleted after a back-off, and the DaemonSet
 * makes a new one whose steps run again: 30 s, 1 min, 2 min, … 10 min between
 * tries per node, reset once the node's imports succeed. The count of retries
 * per node lives in status (`importRetries`), so a new leader goes on with the
 * same back-off.
 *
 * Pure: the controller deletes the pods this picks.
 */
import { MAX_IMPORT_RETRY_NODES, type PrePulledImageStatus } from '../../api/prepulledimage.ts';
import type { PullerPod } from './pods.ts';
import { holdContainerName, importIndexOf, parseImportResult } from './protocol.ts';

export interface ImportRetryPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_IMPORT_RETRY: ImportRetryPolicy = { baseMs: 30_000, maxMs: 600_000 };

/** The wait before try number `attempt + 1` (attempt 0: the first retry). */
export function importRetryDelayMs(attempt: number, policy: ImportRetryPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
}

/** A pod's import steps as far as retrying goes. */
export type ImportSteps =
  | { state: 'none' }
  | { state: 'running' }
  | { state: 'ok' }
  /** `images`: the images whose import failed and that are not on the node anyway. */
  | { state: 'failed'; finishedAt: number; images: string[] };

export function importSteps(pod: PullerPod): ImportSteps {
  const steps = (pod.status?.initContainerStatuses ?? []).flatMap((status) => {
    const index = importIndexOf(status.name);
    return index === undefined ? [] : [{ status, index }];
  });
  if (steps.length === 0) return { state: 'none' };
  const images: string[] = [];
  let finishedAt = 0;
  for (const { status, index } of steps) {
    const terminated = status.state?.terminated;
    if (!terminated) return { state: 'running' };
    if (parseImportResult(terminated).ok) continue;
    // The hold container of the same image, running: the image is there after all.
    const hold = pod.status?.containerStatuses?.find((c) => c.name === holdContainerName(index));
    if (hold?.state?.running) continue;
    images.push(pod.spec.containers.find((c) => c.name === holdContainerName(index))?.image ?? status.name);
    finishedAt = Math.max(finishedAt, Date.parse(terminated.finishedAt ?? '') || 0);
  }
  return images.length > 0 ? { state: 'failed', finishedAt, images } : { state: 'ok' };
}

export interface RetryPlan {
  /** Pods to delete now, with the try number this is for each (1: the first retry). */
  due: Array<{ pod: PullerPod; node: string; attempt: number; images: string[] }>;
  /** When to look again for the next retry, if any waits. */
  nextInMs: number | undefined;
  /** Nodes whose imports all succeeded: their count starts over. */
  succeeded: string[];
}

/**
 * Which pods to delete now. `attempts` holds, per node, how many retries were
 * made; a pod being deleted or without a node is left alone.
 */
export function planImportRetries(
  pods: PullerPod[],
  attempts: ReadonlyMap<string, number>,
  now: number,
  policy: ImportRetryPolicy,
): RetryPlan {
  const plan: RetryPlan = { due: [], nextInMs: undefined, succeeded: [] };
  for (const pod of pods) {
    const node = pod.spec.nodeName;
    if (!node || pod.metadata.deletionTimestamp) continue;
    const steps = importSteps(pod);
    if (steps.state === 'ok') {
      if (attempts.has(node)) plan.succeeded.push(node);
      continue;
    }
    if (steps.state !== 'failed') continue;
    const made = attempts.get(node) ?? 0;
    const wait = steps.finishedAt + importRetryDelayMs(made, policy) - now;
    if (wait <= 0) {
      plan.due.push({ pod, node, attempt: made + 1, images: steps.images });
    } else {
      plan.nextInMs = Math.min(plan.nextInMs ?? wait, wait);
    }
  }
  return plan;
}

/** The retry counts a status records, by node. */
export function importAttemptsOf(status: PrePulledImageStatus | undefined): Map<string, number> {
  return new Map((status?.importRetries ?? []).map((r) => [r.node, r.attempts]));
}

/**
 * The counts after a pass: nodes that succeeded or no longer exist start
 * over; sorted by node, and bounded.
 */
export function importRetriesAfter(
  attempts: ReadonlyMap<string, number>,
  nodeExists: (name: string) => boolean,
): NonNullable<PrePulledImageStatus['importRetries']> {
  return [...attempts]
    .filter(([node]) => nodeExists(node))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_IMPORT_RETRY_NODES)
    .map(([node, count]) => ({ node, attempts: count }));
}
