/**
 * Status conditions, the Kubernetes way: a map-list keyed by `type` whose
 * `lastTransitionTime` moves only when `status` flips, so "since when" stays
 * true across reconciles that merely refresh the reason or message.
 */
import type { Condition } from '../api/common.ts';

/** A condition as a policy function decides it; the time is filled in by {@link setCondition}. */
export interface NewCondition {
  type: string;
  status: Condition['status'];
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** RFC 3339 at whole seconds (`2026-01-01T00:00:00Z`), the precision of `metav1.Time`. */
export function isoSeconds(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * Returns a new list with `next` in place of the condition of its type, or
 * appended when there is none. Order is stable so that an unchanged status
 * serialises identically and no write is made.
 */
export function setCondition(list: Condition[] | undefined, next: NewCondition, now: Date): Condition[] {
  const current = list ?? [];
  const index = current.findIndex((c) => c.type === next.type);
  const prev = index >= 0 ? current[index] : undefined;
  const lastTransitionTime =
    prev !== undefined && prev.status === next.status ? prev.lastTransitionTime : isoSeconds(now);
  const condition: Condition = {
    type: next.type,
    status: next.status,
    ...(next.observedGeneration !== undefined && { observedGeneration: next.observedGeneration }),
    lastTransitionTime,
    reason: next.reason,
    message: next.message,
  };
  if (index < 0) return [...current, condition];
  return current.map((c, i) => (i === index ? condition : c));
}

/** The condition of `type`, if present. */
export function findCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/**
 * Whether two condition lists say the same thing, ignoring order and
 * `lastTransitionTime`: the "did anything change" test before writing status.
 * A missing list equals an empty one.
 */
export function conditionsEqualIgnoringTime(a: Condition[] | undefined, b: Condition[] | undefined): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((x) => {
    const y = findCondition(right, x.type);
    return (
      y !== undefined &&
      y.status === x.status &&
      y.reason === x.reason &&
      y.message === x.message &&
      y.observedGeneration === x.observedGeneration
    );
  });
}

/** Cuts `text` to at most `max` characters, marking the cut with `…`. */
export function shortenMessage(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
