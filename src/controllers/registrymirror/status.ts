/**
 * RegistryMirror status from the node agents' reports: which selected nodes
 * have the mirror (Applied for this generation), which failed and why, which
 * have not reported yet; the counts, a bounded list of failing nodes, and the
 * Ready / Reconciling / Stalled conditions kstatus and Flux `wait: true`
 * read, plus which changes deserve an Event. Pure.
 */
import { Reason } from '../../api/conditions.ts';
import {
  MAX_MIRROR_STATUS_FAILURES,
  type MirrorNodeReport,
  type RegistryMirror,
  type RegistryMirrorStatus,
} from '../../api/registrymirror.ts';
import {
  applyConditions,
  failureConditions,
  READY_RECONCILING_STALLED,
  readyAndStallEvents,
  shortenMessage,
  verdict,
} from '../../runtime/conditions.ts';
import type { Failure } from '../../runtime/failure.ts';
import { compareStrings } from '../../runtime/order.ts';

/** Ready / Reconciling / Stalled, as kstatus reads them. */
export const REGISTRY_MIRROR_CONDITIONS = READY_RECONCILING_STALLED;

/** `MirrorsApplied` when every target has it; a Warning whenever a stall begins or says something new. */
export const REGISTRY_MIRROR_TRANSITIONS = readyAndStallEvents(Reason.MirrorsApplied, 'Apply');

const REASON_MAX = 64;
const FAILURE_MESSAGE_MAX = 1024;
const CONDITION_MESSAGE_MAX = 1024;
const NODES_IN_MESSAGE = 5;

/** One selected node's state for one RegistryMirror. */
export type NodeOutcome =
  | { node: string; state: 'applied' }
  | { node: string; state: 'pending' }
  | { node: string; state: 'failed'; reason: string; message: string };

/** What `report` (undefined: none from this node's agent yet) says about `rm` on `node`. */
export function nodeOutcome(
  rm: RegistryMirror,
  node: string,
  report: MirrorNodeReport | undefined,
): NodeOutcome {
  const entry = report?.mirrors.find((m) => m.uid === rm.metadata.uid);
  if (!entry || entry.generation !== (rm.metadata.generation ?? 0)) return { node, state: 'pending' };
  if (entry.reason === Reason.Applied) return { node, state: 'applied' };
  return { node, state: 'failed', reason: entry.reason, message: entry.message };
}

function names(nodes: string[]): string {
  const shown = nodes.slice(0, NODES_IN_MESSAGE).join(', ');
  return nodes.length > NODES_IN_MESSAGE ? `${shown} and ${nodes.length - NODES_IN_MESSAGE} more` : shown;
}

/** The status of one pass over the selected nodes' outcomes. */
export function mirrorStatus(rm: RegistryMirror, outcomes: NodeOutcome[], now: Date): RegistryMirrorStatus {
  const sorted = [...outcomes].sort((a, b) => compareStrings(a.node, b.node));
  const applied = sorted.filter((o) => o.state === 'applied').length;
  const pending = sorted.filter((o) => o.state === 'pending').map((o) => o.node);
  const failures = sorted.filter((o): o is Extract<NodeOutcome, { state: 'failed' }> => o.state === 'failed');
  const host = rm.spec.host;
  const counted = `${host} is mirrored on ${applied}/${sorted.length} nodes`;
  const waiting = pending.length > 0 ? `; waiting for the agent's report from ${names(pending)}` : '';

  let decided: ReturnType<typeof verdict>;
  if (sorted.length === 0) {
    const message = 'no node matches nodeSelector';
    decided = verdict(REGISTRY_MIRROR_CONDITIONS, {
      reason: Reason.NoMatchingNodes,
      message,
      ready: true,
      progressing: false,
      failing: false,
    });
  } else if (failures.length > 0) {
    const first = failures[0]!;
    const sameReason = failures.filter((f) => f.reason === first.reason).map((f) => f.node);
    const message = shortenMessage(
      `${counted}; ${failures.length} failed${waiting}. ${first.reason} on ${names(sameReason)}: ${first.message}`,
      CONDITION_MESSAGE_MAX,
    );
    decided = verdict(REGISTRY_MIRROR_CONDITIONS, {
      reason: first.reason,
      message,
      ready: false,
      progressing: pending.length > 0,
      failing: true,
      progress: { reason: Reason.AgentPending, message },
    });
  } else if (pending.length > 0) {
    const message = shortenMessage(`${counted}${waiting}`, CONDITION_MESSAGE_MAX);
    decided = verdict(REGISTRY_MIRROR_CONDITIONS, {
      reason: Reason.AgentPending,
      message,
      ready: false,
      progressing: true,
      failing: false,
    });
  } else {
    decided = verdict(REGISTRY_MIRROR_CONDITIONS, {
      reason: Reason.AllNodesApplied,
      message: counted,
      ready: true,
      progressing: false,
      failing: false,
    });
  }
  return {
    observedGeneration: rm.metadata.generation ?? 0,
    conditions: applyConditions(rm, decided, now),
    applied: `${applied}/${sorted.length}`,
    desiredNodes: sorted.length,
    appliedNodes: applied,
    failedNodes: failures.length,
    pendingNodes: pending.length,
    failures: failures.slice(0, MAX_MIRROR_STATUS_FAILURES).map((f) => ({
      node: f.node,
      reason: shortenMessage(f.reason, REASON_MAX),
      message: shortenMessage(f.message, FAILURE_MESSAGE_MAX),
    })),
  };
}

/** The status of a pass that could not go on (an invalid spec, a failed step); the counts stay. */
export function stalledStatus(rm: RegistryMirror, failure: Failure, now: Date): RegistryMirrorStatus {
  return {
    ...rm.status,
    observedGeneration: rm.metadata.generation ?? 0,
    conditions: failureConditions(rm, REGISTRY_MIRROR_CONDITIONS, failure, {
      now,
      maxMessage: CONDITION_MESSAGE_MAX,
      failingWhileRetrying: false,
    }),
  };
}
