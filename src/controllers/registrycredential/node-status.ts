/**
 * RegistryCredential status for `spec.nodes`: per selected node, whether its
 * agent reports the current node copy applied to the kubelet's config.json,
 * a failure with its reason, or nothing yet; the counts, a bounded list of
 * failing nodes, the `NodeCredentials` condition, and Ready / Reconciling /
 * Stalled folded with it (an object whose nodes lack the credentials is not
 * Ready). Pure. Messages name nodes, hosts and files, never credentials.
 */

import type { NodeCredentialsReport } from '../../agent/nodecreds/protocol.ts';
import { ConditionType, Reason } from '../../api/conditions.ts';
import {
  MAX_NODE_FAILURES,
  type RegistryCredential,
  type RegistryCredentialStatus,
} from '../../api/registrycredential.ts';
import { findCondition, type NewCondition, setCondition, shortenMessage } from '../../runtime/conditions.ts';
import { compareStrings } from '../../runtime/order.ts';

/** The condition that says how far the credentials reached the selected nodes. */
export const NODE_CREDENTIALS_CONDITION = 'NodeCredentials';

/** One selected node's state for one RegistryCredential. */
export type NodeCredentialOutcome =
  | { node: string; state: 'applied' }
  | { node: string; state: 'pending' }
  | { node: string; state: 'failed'; reason: string; message: string };

/**
 * What `report` (undefined: none from this node's agent yet) says about `rc`
 * on `node`: only a result for the node copy as it is now (its
 * resourceVersion) counts, so a rotation shows as pending until each agent
 * has written the new credentials.
 */
export function nodeCredentialOutcome(
  rc: RegistryCredential,
  node: string,
  copyResourceVersion: string | undefined,
  report: NodeCredentialsReport | undefined,
): NodeCredentialOutcome {
  const entry = report?.credentials.find((c) => c.uid === rc.metadata.uid);
  if (!entry || !copyResourceVersion || entry.resourceVersion !== copyResourceVersion) {
    return { node, state: 'pending' };
  }
  if (entry.reason === Reason.Applied) return { node, state: 'applied' };
  return { node, state: 'failed', reason: entry.reason, message: entry.message };
}

const REASON_MAX = 64;
const FAILURE_MESSAGE_MAX = 512;
const CONDITION_MESSAGE_MAX = 1024;
const NODES_IN_MESSAGE = 5;

function names(nodes: string[]): string {
  const shown = nodes.slice(0, NODES_IN_MESSAGE).join(', ');
  return nodes.length > NODES_IN_MESSAGE ? `${shown} and ${nodes.length - NODES_IN_MESSAGE} more` : shown;
}

/**
 * `status` with the node part of this pass: `outcomes` undefined means the
 * object has no `spec.nodes`, and the node part goes.
 */
export function withNodeStatus(
  status: RegistryCredentialStatus,
  outcomes: NodeCredentialOutcome[] | undefined,
  rc: RegistryCredential,
  now: Date,
): RegistryCredentialStatus {
  const { nodes: _dropped, ...rest } = status;
  if (!outcomes) {
    return {
      ...rest,
      conditions: (status.conditions ?? []).filter((c) => c.type !== NODE_CREDENTIALS_CONDITION),
    };
  }
  const sorted = [...outcomes].sort((a, b) => compareStrings(a.node, b.node));
  const applied = sorted.filter((o) => o.state === 'applied').length;
  const pending = sorted.filter((o) => o.state === 'pending').map((o) => o.node);
  const failures = sorted.filter(
    (o): o is Extract<NodeCredentialOutcome, { state: 'failed' }> => o.state === 'failed',
  );
  const counted = `the kubelet credentials are on ${applied}/${sorted.length} nodes`;
  const waiting = pending.length > 0 ? `; waiting for the agent's report from ${names(pending)}` : '';
  const generation = rc.metadata.generation ?? 0;

  let condition: NewCondition;
  if (failures.length > 0) {
    const first = failures[0]!;
    const sameReason = failures.filter((f) => f.reason === first.reason).map((f) => f.node);
    condition = {
      type: NODE_CREDENTIALS_CONDITION,
      status: 'False',
      reason: first.reason,
      message: shortenMessage(
        `${counted}; ${failures.length} failed${waiting}. ${first.reason} on ${names(sameReason)}: ${first.message}`,
        CONDITION_MESSAGE_MAX,
      ),
      observedGeneration: generation,
    };
  } else if (pending.length > 0) {
    condition = {
      type: NODE_CREDENTIALS_CONDITION,
      status: 'False',
      reason: Reason.AgentPending,
      message: shortenMessage(`${counted}${waiting}`, CONDITION_MESSAGE_MAX),
      observedGeneration: generation,
    };
  } else {
    condition = {
      type: NODE_CREDENTIALS_CONDITION,
      status: 'True',
      reason: sorted.length === 0 ? Reason.NoMatchingNodes : Reason.AllNodesCredentialed,
      message: sorted.length === 0 ? 'no node matches spec.nodes.nodeSelector' : counted,
      observedGeneration: generation,
    };
  }

  let conditions = setCondition(status.conditions, condition, now);
  // Ready only when the namespaces and the nodes both are; a node failure stalls, a pending node reconciles.
  if (condition.status === 'False' && findCondition(conditions, ConditionType.Ready)?.status === 'True') {
    const failing = failures.length > 0;
    const fold = (type: string, value: 'True' | 'False') =>
      setCondition(
        conditions,
        {
          type,
          status: value,
          reason: condition.reason,
          message: condition.message,
          observedGeneration: generation,
        },
        now,
      );
    conditions = fold(ConditionType.Ready, 'False');
    conditions = fold(failing ? ConditionType.Stalled : ConditionType.Reconciling, 'True');
  }
  // The fold above may flip a condition and back within this pass: its time moves only if the stored one differs.
  const stored = rc.status?.conditions ?? [];
  conditions = conditions.map((c) => {
    const before = stored.find((p) => p.type === c.type);
    return before && before.status === c.status ? { ...c, lastTransitionTime: before.lastTransitionTime } : c;
  });
  return {
    ...rest,
    conditions,
    nodes: {
      applied: `${applied}/${sorted.length}`,
      selectedNodes: sorted.length,
      appliedNodes: applied,
      failedNodes: failures.length,
      pendingNodes: pending.length,
      failures: failures.slice(0, MAX_NODE_FAILURES).map((f) => ({
        node: f.node,
        reason: shortenMessage(f.reason, REASON_MAX),
        message: shortenMessage(f.message, FAILURE_MESSAGE_MAX),
      })),
    },
  };
}
