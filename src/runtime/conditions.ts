/**
 * Status conditions, the Kubernetes way: a map-list keyed by `type` whose
 * `lastTransitionTime` moves only when `status` flips, so "since when" stays
 * true across reconciles that merely refresh the reason or message. Also the
 * two things every kind does with them: one reason turned into the three
 * kstatus-shaped conditions ({@link verdict}), and the Events a change of
 * them deserves ({@link transitionEvents}). Pure.
 */
import type { Condition } from '../api/common.ts';
import { ConditionType } from '../api/conditions.ts';

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

/**
 * The names of a kind's three conditions: `Ready`, then the one that is True
 * while work goes on (`Progressing`, or kstatus's `Reconciling`), then the one
 * that is True when the object needs a human (`Degraded`, or `Stalled`).
 */
export interface ConditionSet {
  ready: string;
  progressing: string;
  failing: string;
  /**
   * kstatus's `Stalled`, for a kind whose failing condition is another
   * (`Degraded`): True only when the failure waits for a human, so Flux and
   * kstatus call the object Failed instead of waiting for it.
   */
  stalled?: string;
}

/** What one pass concluded, before it is spelled out as three conditions. */
export interface Verdict {
  reason: string;
  message: string;
  ready: boolean;
  progressing: boolean;
  failing: boolean;
  /** Reason and message of the progressing condition while it is True (default: those of the verdict). */
  progress?: { reason: string; message: string };
  /** With a set's `stalled` condition: whether the failure waits for a human (default: no). */
  stalled?: boolean;
}

/**
 * The three conditions of a pass that could not go on, from its failure:
 * not Ready; progressing while the failure is retried; failing when it waits
 * for a human, or always when `failingWhileRetrying` (a kind whose failing
 * condition is `Degraded` rather than kstatus's `Stalled`).
 */
export function failureConditions(
  object: { metadata: { generation?: number }; status?: { conditions?: Condition[] } },
  set: ConditionSet,
  failure: { reason: string; message: string; retry: boolean },
  options: { now: Date; maxMessage: number; failingWhileRetrying: boolean },
): Condition[] {
  const message = shortenMessage(failure.message, options.maxMessage);
  const decided = verdict(set, {
    reason: failure.reason,
    message,
    ready: false,
    progressing: failure.retry,
    failing: !failure.retry || options.failingWhileRetrying,
    progress: { reason: failure.reason, message },
    stalled: !failure.retry,
  });
  return applyConditions(object, decided, options.now);
}

/** The conditions of one verdict (three, or four with `stalled`), in the set's order. */
export function verdict(set: ConditionSet, v: Verdict): NewCondition[] {
  const status = (value: boolean): Condition['status'] => (value ? 'True' : 'False');
  const progress = v.progressing && v.progress ? v.progress : { reason: v.reason, message: v.message };
  return [
    { type: set.ready, status: status(v.ready), reason: v.reason, message: v.message },
    { type: set.progressing, status: status(v.progressing), ...progress },
    { type: set.failing, status: status(v.failing), reason: v.reason, message: v.message },
    ...(set.stalled
      ? [{ type: set.stalled, status: status(v.stalled ?? false), reason: v.reason, message: v.message }]
      : []),
  ];
}

/**
 * `decided` merged into the object's current conditions, each stamped with
 * the generation it was decided for (when the object has one).
 */
export function applyConditions(
  object: { metadata: { generation?: number }; status?: { conditions?: Condition[] } },
  decided: NewCondition[],
  now: Date,
): Condition[] {
  const observedGeneration = object.metadata.generation;
  let conditions = object.status?.conditions ?? [];
  for (const condition of decided) {
    const next = observedGeneration === undefined ? condition : { ...condition, observedGeneration };
    conditions = setCondition(conditions, next, now);
  }
  return conditions;
}

/**
 * When a change of one condition deserves an Event: `becameTrue` the moment it
 * turns True, `trueAndNew` whenever it is True and says something it did not
 * say before (a stall that begins, or whose reason or message changes).
 */
export interface TransitionRule {
  condition: string;
  when: 'becameTrue' | 'trueAndNew';
  type: 'Normal' | 'Warning';
  /** The Event's reason; by default the condition's. */
  reason?: string;
  /** The Event's action, e.g. `Pull`. */
  action: string;
}

/**
 * The conditions of a kind that kstatus reads directly, Ready, Reconciling
 * and Stalled (RegistryCredential, RegistryMirror).
 */
export const READY_RECONCILING_STALLED: ConditionSet = {
  ready: ConditionType.Ready,
  progressing: ConditionType.Reconciling,
  failing: ConditionType.Stalled,
};

/**
 * The Events of such a kind: `readyReason` (Normal) when Ready becomes True,
 * and a Warning whenever a stall begins or says something new.
 */
export function readyAndStallEvents(readyReason: string, action: string): readonly TransitionRule[] {
  return [
    { condition: ConditionType.Ready, when: 'becameTrue', type: 'Normal', reason: readyReason, action },
    { condition: ConditionType.Stalled, when: 'trueAndNew', type: 'Warning', action },
  ];
}

/**
 * Whether a condition appears, goes or changes its status between two lists:
 * a transition, which the status throttle lets through at once (a waiter on
 * Ready learns it when it happens). Reasons, messages and times alone are not.
 */
export function conditionsTransitioned(
  before: Condition[] | undefined,
  after: Condition[] | undefined,
): boolean {
  const statusOf = (list: Condition[] | undefined) => new Map((list ?? []).map((c) => [c.type, c.status]));
  const was = statusOf(before);
  const now = statusOf(after);
  if (was.size !== now.size) return true;
  for (const [type, status] of now) if (was.get(type) !== status) return true;
  return false;
}

/** An Event to record for a change of conditions. */
export interface TransitionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  action: string;
  note: string;
}

/** The Events `rules` ask for between two condition lists; a list that stays the same records nothing. */
export function transitionEvents(
  before: Condition[] | undefined,
  after: Condition[] | undefined,
  rules: readonly TransitionRule[],
): TransitionEvent[] {
  const events: TransitionEvent[] = [];
  for (const rule of rules) {
    const now = findCondition(after, rule.condition);
    if (now?.status !== 'True') continue;
    const was = findCondition(before, rule.condition);
    const fire =
      rule.when === 'becameTrue'
        ? was?.status !== 'True'
        : was?.status !== 'True' || was.reason !== now.reason || was.message !== now.message;
    if (fire) {
      events.push({
        type: rule.type,
        reason: rule.reason ?? now.reason,
        action: rule.action,
        note: now.message,
      });
    }
  }
  return events;
}
