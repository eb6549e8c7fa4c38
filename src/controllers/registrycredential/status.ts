/**
 * RegistryCredential status: counts of namespaces, a bounded list of the
 * failing ones, and the Ready / Reconciling / Stalled conditions (the shape
 * Flux `wait: true` and kstatus read), plus the Events a change of them
 * deserves. Pure. Messages name namespaces and secrets, never their content.
 */
import { ConditionType, Reason } from '../../api/conditions.ts';
import {
  MAX_STATUS_FAILURES,
  type RegistryCredential,
  type RegistryCredentialStatus,
} from '../../api/registrycredential.ts';
import type { EventType } from '../../kube/events.ts';
import { findCondition, type NewCondition, setCondition, shortenMessage } from '../conditions.ts';
import { compareStrings } from './targets.ts';

/** Why one namespace does not have an up-to-date copy. */
export interface NamespaceFailure {
  namespace: string;
  reason: string;
  message: string;
  /** Retried with backoff; otherwise it waits for someone to change something (a Conflict). */
  retrying: boolean;
}

/** The result of one pass over the target namespaces. */
export interface SyncOutcome {
  desired: number;
  /** Namespaces whose copy (and ServiceAccount entries) are current. */
  synced: number;
  failures: NamespaceFailure[];
  /** The source version now in every synced copy. */
  sourceResourceVersion: string;
}

const REASON_MAX = 64;
const FAILURE_MESSAGE_MAX = 512;
const CONDITION_MESSAGE_MAX = 1024;
const NAMESPACES_IN_MESSAGE = 5;

/** The status after a pass that could write: counts, failures and conditions. */
export function syncedStatus(
  rc: RegistryCredential,
  outcome: SyncOutcome,
  now: Date,
): RegistryCredentialStatus {
  const failures = [...outcome.failures].sort((a, b) => compareStrings(a.namespace, b.namespace));
  const secret = rc.spec.target.secretName;
  let decided: NewCondition[];
  if (failures.length === 0) {
    const message = `secret ${secret} is in ${outcome.synced}/${outcome.desired} namespaces`;
    decided = verdict(
      Reason.AllNamespacesSynced,
      { ready: true, reconciling: false, stalled: false },
      message,
    );
  } else {
    const retrying = failures.some((f) => f.retrying);
    const first = failures.find((f) => f.retrying === retrying) ?? failures[0]!;
    const message = failureMessage(secret, outcome, failures, first);
    decided = verdict(first.reason, { ready: false, reconciling: retrying, stalled: !retrying }, message);
  }
  return {
    observedGeneration: rc.metadata.generation ?? 0,
    conditions: applyConditions(rc, decided, now),
    synced: `${outcome.synced}/${outcome.desired}`,
    desiredNamespaces: outcome.desired,
    syncedNamespaces: outcome.synced,
    failedNamespaces: failures.length,
    failures: failures.slice(0, MAX_STATUS_FAILURES).map((f) => ({
      namespace: f.namespace,
      reason: shortenMessage(f.reason, REASON_MAX),
      message: shortenMessage(f.message, FAILURE_MESSAGE_MAX),
    })),
    sourceResourceVersion: outcome.sourceResourceVersion,
  };
}

/**
 * The status when nothing can be written: the source is missing, malformed or
 * unreadable, or the spec is invalid. The copies are left as they are, so
 * the counts and the last propagated source version stay those of the last
 * pass that wrote.
 */
export function stalledStatus(
  rc: RegistryCredential,
  reason: string,
  message: string,
  now: Date,
): RegistryCredentialStatus {
  const decided = verdict(
    reason,
    { ready: false, reconciling: false, stalled: true },
    shortenMessage(message, CONDITION_MESSAGE_MAX),
  );
  return {
    ...rc.status,
    observedGeneration: rc.metadata.generation ?? 0,
    conditions: applyConditions(rc, decided, now),
  };
}

/** An Event to record for a change of status. */
export interface StatusEvent {
  type: EventType;
  reason: string;
  note: string;
}

/**
 * Events for what changed between two statuses: `Synced` when the secret
 * reaches every namespace, and a Warning with the stall's reason whenever a
 * stall begins or says something new. A status that merely stays the same
 * records nothing.
 */
export function transitionEvents(
  before: RegistryCredentialStatus | undefined,
  after: RegistryCredentialStatus,
): StatusEvent[] {
  const events: StatusEvent[] = [];
  const ready = findCondition(after.conditions, ConditionType.Ready);
  const wasReady = findCondition(before?.conditions, ConditionType.Ready)?.status === 'True';
  if (ready?.status === 'True' && !wasReady) {
    events.push({ type: 'Normal', reason: Reason.Synced, note: ready.message });
  }
  const stalled = findCondition(after.conditions, ConditionType.Stalled);
  const stalledBefore = findCondition(before?.conditions, ConditionType.Stalled);
  const news =
    stalledBefore?.status !== 'True' ||
    stalledBefore.reason !== stalled?.reason ||
    stalledBefore.message !== stalled?.message;
  if (stalled?.status === 'True' && news) {
    events.push({ type: 'Warning', reason: stalled.reason, note: stalled.message });
  }
  return events;
}

function verdict(
  reason: string,
  state: { ready: boolean; reconciling: boolean; stalled: boolean },
  message: string,
): NewCondition[] {
  const status = (value: boolean) => (value ? 'True' : 'False');
  return [
    { type: ConditionType.Ready, status: status(state.ready), reason, message },
    {
      type: ConditionType.Reconciling,
      status: status(state.reconciling),
      reason: state.reconciling ? Reason.Progressing : reason,
      message,
    },
    { type: ConditionType.Stalled, status: status(state.stalled), reason, message },
  ];
}

/** Names the first failures, so `kubectl get -o wide` shows what to fix without reading `failures`. */
function failureMessage(
  secret: string,
  outcome: SyncOutcome,
  failures: NamespaceFailure[],
  first: NamespaceFailure,
): string {
  const sameReason = failures.filter((f) => f.reason === first.reason).map((f) => f.namespace);
  const named = sameReason.slice(0, NAMESPACES_IN_MESSAGE).join(', ');
  const more =
    sameReason.length > NAMESPACES_IN_MESSAGE ? ` and ${sameReason.length - NAMESPACES_IN_MESSAGE} more` : '';
  const message =
    `secret ${secret} is in ${outcome.synced}/${outcome.desired} namespaces; ` +
    `${failures.length} failed. ${first.reason} in ${named}${more}: ${first.message}`;
  return shortenMessage(message, CONDITION_MESSAGE_MAX);
}

function applyConditions(rc: RegistryCredential, decided: NewCondition[], now: Date) {
  const observedGeneration = rc.metadata.generation ?? 0;
  let conditions = rc.status?.conditions ?? [];
  for (const condition of decided)
    conditions = setCondition(conditions, { ...condition, observedGeneration }, now);
  return conditions;
}
