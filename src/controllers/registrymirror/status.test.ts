import { describe, expect, it } from 'vitest';
import type { MirrorNodeReport, RegistryMirror, RegistryMirrorStatus } from '../../api/registrymirror.ts';
import { transitionEvents } from '../../runtime/conditions.ts';
import { mirrorStatus, nodeOutcome, REGISTRY_MIRROR_TRANSITIONS, stalledStatus } from './status.ts';

const now = new Date('2026-01-01T00:00:00Z');
const rm: RegistryMirror = {
  metadata: { name: 'hub', uid: 'uid-hub', generation: 2 },
  spec: { host: 'docker.io', mirrors: [{ url: 'https://m.local' }] },
};
const report = (reason: string, generation = 2, message = 'm'): MirrorNodeReport => ({
  mirrors: [{ name: 'hub', uid: 'uid-hub', generation, reason, message }],
});
const conditions = (s: RegistryMirrorStatus) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));
const events = (before: RegistryMirrorStatus | undefined, after: RegistryMirrorStatus) =>
  transitionEvents(before?.conditions, after.conditions, REGISTRY_MIRROR_TRANSITIONS).map((e) => [
    e.type,
    e.reason,
  ]);

describe('nodeOutcome', () => {
  it('counts a report only for this object and generation', () => {
    expect(nodeOutcome(rm, 'n1', report('Applied')).state).toBe('applied');
    expect(nodeOutcome(rm, 'n1', report('Applied', 1)).state).toBe('pending');
    expect(nodeOutcome(rm, 'n1', undefined).state).toBe('pending');
    expect(
      nodeOutcome({ ...rm, metadata: { ...rm.metadata, uid: 'other' } }, 'n1', report('Applied')).state,
    ).toBe('pending');
    expect(nodeOutcome(rm, 'n1', report('Conflict', 2, 'file x'))).toEqual({
      node: 'n1',
      state: 'failed',
      reason: 'Conflict',
      message: 'file x',
    });
  });
});

describe('mirrorStatus', () => {
  it('is Ready with every selected node applied, and records the Event once', () => {
    const status = mirrorStatus(
      rm,
      [
        { node: 'a', state: 'applied' },
        { node: 'b', state: 'applied' },
      ],
      now,
    );
    expect(status).toMatchObject({
      applied: '2/2',
      desiredNodes: 2,
      appliedNodes: 2,
      failedNodes: 0,
      observedGeneration: 2,
    });
    expect(conditions(status)).toEqual({
      Ready: ['True', 'AllNodesApplied'],
      Reconciling: ['False', 'AllNodesApplied'],
      Stalled: ['False', 'AllNodesApplied'],
    });
    expect(events(undefined, status)).toEqual([['Normal', 'MirrorsApplied']]);
    expect(events(status, mirrorStatus({ ...rm, status }, [{ node: 'a', state: 'applied' }], now))).toEqual(
      [],
    );
  });

  it('is Reconciling while agents have not reported, naming the nodes', () => {
    const status = mirrorStatus(
      rm,
      [
        { node: 'a', state: 'applied' },
        { node: 'b', state: 'pending' },
      ],
      now,
    );
    expect(conditions(status)).toMatchObject({
      Ready: ['False', 'AgentPending'],
      Reconciling: ['True', 'AgentPending'],
    });
    expect(status.conditions?.[0]?.message).toBe(
      "docker.io is mirrored on 1/2 nodes; waiting for the agent's report from b",
    );
  });

  it('is Stalled with the failing nodes, their reason and message, bounded', () => {
    const outcomes = Array.from({ length: 30 }, (_, i) => ({
      node: `n${String(i).padStart(2, '0')}`,
      state: 'failed' as const,
      reason: 'ConfigPathNotSet',
      message: 'add config_path',
    }));
    const status = mirrorStatus(rm, outcomes, now);
    expect(status.failedNodes).toBe(30);
    expect(status.failures).toHaveLength(20);
    expect(status.failures?.[0]).toEqual({
      node: 'n00',
      reason: 'ConfigPathNotSet',
      message: 'add config_path',
    });
    expect(conditions(status)).toMatchObject({
      Ready: ['False', 'ConfigPathNotSet'],
      Stalled: ['True', 'ConfigPathNotSet'],
    });
    expect(status.conditions?.[0]?.message).toContain(
      'ConfigPathNotSet on n00, n01, n02, n03, n04 and 25 more: add config_path',
    );
    expect(events(undefined, status)).toEqual([['Warning', 'ConfigPathNotSet']]);
  });

  it('is Ready with no matching node', () => {
    expect(conditions(mirrorStatus(rm, [], now)).Ready).toEqual(['True', 'NoMatchingNodes']);
  });

  it('keeps the counts of the last pass when a pass stalls', () => {
    const status = mirrorStatus(rm, [{ node: 'a', state: 'applied' }], now);
    const stalled = stalledStatus(
      { ...rm, status },
      { reason: 'InvalidSpec', message: 'bad', retry: false },
      now,
    );
    expect(stalled.applied).toBe('1/1');
    expect(conditions(stalled).Stalled).toEqual(['True', 'InvalidSpec']);
  });
});
