/**
 * spec.refresh.interval: every interval, the puller pods are replaced (a
 * DaemonSet rollout, throttled like any other) and pull their tags again with
 * imagePullPolicy Always. The kubelet asks the registry for each tag and
 * downloads only when the tag moved; status then shows the new digest per
 * node. Rounds count from the object's creation, so objects created apart do
 * not all roll at once.
 *
 * Pure: the controller renders the round and comes back when the next begins.
 */
import type { PrePulledImage } from '../../api/prepulledimage.ts';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** A Go-style duration of s, m and h parts (`90s`, `1h30m`, `1.5h`) in milliseconds; NaN if malformed. */
export function parseDurationMs(text: string): number {
  const parts = [...text.matchAll(/([0-9]+(?:\.[0-9]+)?)(s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return Number.NaN;
  return parts.reduce((ms, [, n, unit]) => ms + Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS], 0);
}

/** The schema's floor: the CRD rejects less, and an object from before is held to it too. */
export const MIN_REFRESH_MS = 60_000;

export interface RefreshSchedule {
  /** How many intervals have passed since the object was created. */
  round: number;
  /** Until the next round begins. */
  nextInMs: number;
}

/** The refresh round now, or undefined when the object asks for no refresh. */
export function refreshSchedule(ppi: PrePulledImage, now: number): RefreshSchedule | undefined {
  const interval = ppi.spec.refresh?.interval;
  if (!interval) return undefined;
  const ms = Math.max(MIN_REFRESH_MS, parseDurationMs(interval) || MIN_REFRESH_MS);
  const created = Date.parse(ppi.metadata.creationTimestamp ?? '') || now;
  const elapsed = Math.max(0, now - created);
  const round = Math.floor(elapsed / ms);
  return { round, nextInMs: (round + 1) * ms - elapsed };
}
