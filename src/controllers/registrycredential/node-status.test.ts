import { describe, expect, it } from 'vitest';
import type { NodeCredentialsReport } from '../../agent/nodecreds/protocol.ts';
import type { RegistryCredential, RegistryCredentialStatus } from '../../api/registrycredential.ts';
import { planNodeCopy, renderNodeCopy } from './node-copy.ts';
import { nodeCredentialOutcome, withNodeStatus } from './node-status.ts';

const now = new Date('2026-01-01T00:00:00Z');
const rc: RegistryCredential = {
  metadata: { name: 'reg', uid: 'uid-reg', generation: 3, creationTimestamp: '2025-12-01T00:00:00Z' },
  spec: {
    source: { secretRef: { name: 's', namespace: 'n' } },
    target: { secretName: 'pull', namespaces: ['a'] },
    nodes: { nodeSelector: { matchLabels: { pool: 'gpu' } } },
  },
};
const ready: RegistryCredentialStatus = {
  conditions: [
    { type: 'Ready', status: 'True', reason: 'AllNamespacesSynced', message: 'm', lastTransitionTime: 't0' },
    {
      type: 'Reconciling',
      status: 'False',
      reason: 'AllNamespacesSynced',
      message: 'm',
      lastTransitionTime: 't0',
    },
    {
      type: 'Stalled',
      status: 'False',
      reason: 'AllNamespacesSynced',
      message: 'm',
      lastTransitionTime: 't0',
    },
  ],
};
const report = (resourceVersion: string, reason = 'Applied'): NodeCredentialsReport => ({
  credentials: [{ name: 'reg', uid: 'uid-reg', resourceVersion, reason, message: 'x has y' }],
});
const conditions = (s: RegistryCredentialStatus) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));

describe('nodeCredentialOutcome', () => {
  it('counts only a result for the node copy as it is now', () => {
    expect(nodeCredentialOutcome(rc, 'n1', '5', report('5')).state).toBe('applied');
    // Rotated: the copy moved on, the agent has not written it yet.
    expect(nodeCredentialOutcome(rc, 'n1', '6', report('5')).state).toBe('pending');
    expect(nodeCredentialOutcome(rc, 'n1', '5', undefined).state).toBe('pending');
    expect(nodeCredentialOutcome(rc, 'n1', '5', report('5', 'Conflict'))).toEqual({
      node: 'n1',
      state: 'failed',
      reason: 'Conflict',
      message: 'x has y',
    });
  });
});

describe('withNodeStatus', () => {
  it('keeps Ready with every selected node applied, and counts them', () => {
    const status = withNodeStatus(ready, [{ node: 'a', state: 'applied' }], rc, now);
    expect(status.nodes).toEqual({
      applied: '1/1',
      selectedNodes: 1,
      appliedNodes: 1,
      failedNodes: 0,
      pendingNodes: 0,
      failures: [],
    });
    expect(conditions(status)).toMatchObject({
      Ready: ['True', 'AllNamespacesSynced'],
      NodeCredentials: ['True', 'AllNodesCredentialed'],
    });
  });

  it('is not Ready while a node is pending (Reconciling), nor with a failed node (Stalled), naming them', () => {
    const pending = withNodeStatus(ready, [{ node: 'a', state: 'pending' }], rc, now);
    expect(conditions(pending)).toMatchObject({
      Ready: ['False', 'AgentPending'],
      Reconciling: ['True', 'AgentPending'],
      NodeCredentials: ['False', 'AgentPending'],
    });
    const failed = withNodeStatus(
      ready,
      [
        { node: 'b', state: 'failed', reason: 'Conflict', message: 'already has an entry' },
        { node: 'a', state: 'applied' },
      ],
      rc,
      now,
    );
    expect(conditions(failed)).toMatchObject({ Ready: ['False', 'Conflict'], Stalled: ['True', 'Conflict'] });
    expect(failed.nodes?.failures).toEqual([
      { node: 'b', reason: 'Conflict', message: 'already has an entry' },
    ]);
    expect(failed.conditions?.find((c) => c.type === 'Ready')?.message).toContain(
      'the kubelet credentials are on 1/2 nodes; 1 failed. Conflict on b: already has an entry',
    );
  });

  it('keeps the transition time of a condition a pass folds the same way again', () => {
    const first = withNodeStatus(ready, [{ node: 'a', state: 'pending' }], rc, now);
    const later = new Date('2026-01-01T01:00:00Z');
    const again = withNodeStatus(ready, [{ node: 'a', state: 'pending' }], { ...rc, status: first }, later);
    expect(again.conditions).toEqual(first.conditions);
  });

  it('drops the node part when spec.nodes goes', () => {
    const withNodes = withNodeStatus(ready, [{ node: 'a', state: 'applied' }], rc, now);
    const without = withNodeStatus(withNodes, undefined, rc, now);
    expect(without.nodes).toBeUndefined();
    expect(without.conditions?.map((c) => c.type)).toEqual(['Ready', 'Reconciling', 'Stalled']);
  });
});

describe('renderNodeCopy', () => {
  it("is a labelled, owned copy in Prepull's namespace carrying the selector; none without spec.nodes", () => {
    const copy = renderNodeCopy(rc, 'prepull-system', 'e30=');
    expect(copy?.metadata).toMatchObject({
      name: 'node-credentials.reg',
      namespace: 'prepull-system',
      labels: { 'app.kubernetes.io/managed-by': 'prepull', 'prepull.dev/node-credential': 'reg' },
      annotations: {
        'prepull.dev/node-selector': '{"matchLabels":{"pool":"gpu"}}',
        'prepull.dev/registrycredential-created': '2025-12-01T00:00:00Z',
      },
      ownerReferences: [expect.objectContaining({ kind: 'RegistryCredential', uid: 'uid-reg' })],
    });
    // Not one of the namespace copies: their informer selects this label.
    expect(copy?.metadata.labels?.['prepull.dev/registrycredential']).toBeUndefined();
    expect(renderNodeCopy({ ...rc, spec: { ...rc.spec, nodes: undefined } }, 'prepull-system', 'e30=')).toBe(
      undefined,
    );
    expect(planNodeCopy(copy, copy, 'uid-reg')).toBe('keep');
    expect(planNodeCopy(copy, renderNodeCopy(rc, 'prepull-system', 'e3t9'), 'uid-reg')).toBe('apply');
    expect(planNodeCopy(copy, undefined, 'uid-reg')).toBe('delete');
    expect(planNodeCopy(copy, copy, 'someone-else')).toBe('conflict');
  });
});
