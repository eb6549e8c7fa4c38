/**
 * RegistryCredential status: counts of namespaces, a bounded list of the
 * failing ones, and the Ready / Reconciling / Stalled conditions (the shape
 * Flux `wait: true` and kstatus read), plus which changes of them deserve an
 * Event. Pure. Messages name namespaces and secrets, never their content.
 */
import { Reason } from '../../api/conditions.ts';
import {
  MAX_STATUS_FAILURES,
  type RegistryCredential,
  type RegistryCredentialStatus,
} from '../../api/registrycredential.ts';
import {
  applyConditions,
  failureConditions,
  type NewCondition,
  READY_RECONCILING_STALLED,
  readyAndStallEvents,
  shortenMessage,
  verdict,
} from '../../runtime/conditions.ts';
import type { Failure } from '../../runtime/failure.ts';
import { compareStrings } from '../../runtime/order.ts';

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

/** Ready / Reconciling / Stalled, as kstatus reads them. */
export const REGISTRY_CREDENTIAL_CONDITIONS = READY_RECONCILING_STALLED;

/** `Synced` when every target has it; a Warning whenever a stall begins or says something new. */
export const REGISTRY_CREDENTIAL_TRANSITIONS = readyAndStallEvents(Reason.Synced, 'Sync');

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
    decided = verdict(REGISTRY_CREDENTIAL_CONDITIONS, {
      reason: Reason.AllNamespacesSynced,
      message,
      ready: true,
      progressing: false,
      failing: false,
    });
  } else {
    const retrying = failures.some((f) => f.retrying);
    const first = failures.find((f) => f.retrying === retrying) ?? failures[0]!;
    const message = failureMessage(secret, outcome, failures, first);
    decided = verdict(REGISTRY_CREDENTIAL_CONDITIONS, {
      reason: first.reason,
      message,
      ready: false,
      progressing: retrying,
      failing: !retrying,
      progress: { reason: Reason.Progressing, message },
    });
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
 * unreadable, the spec is invalid, or a step failed. The copies are left as
 * they are, so the counts and the last propagated source version stay those
 * of the last pass that wrote. A failure that is retried is Reconciling; one
 * that waits for a human is Stalled.
 */
export function stalledStatus(rc: RegistryCredential, failure: Failure, now: Date): RegistryCredentialStatus {
  return {
    ...rc.status,
    observedGeneration: rc.metadata.generation ?? 0,
    conditions: failureConditions(rc, REGISTRY_CREDENTIAL_CONDITIONS, failure, {
      now,
      maxMessage: CONDITION_MESSAGE_MAX,
      failingWhileRetrying: false,
    }),
  };
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
