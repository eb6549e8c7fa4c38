import { describe, expect, it } from 'vitest';
import { parseImageReference } from '../../image/reference.ts';
import { PULL_SLOT_GATE } from './labels.ts';
import type { PullerPod } from './pods.ts';
import { failedCheck, resolvedImage } from './resolution.ts';
import { planStaleNodes } from './stale-nodes.ts';

const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;
const IMAGE = 'registry.test/app:v1';
const CREATED = '2026-01-01T00:00:00Z';
const CHECKED = new Date('2026-01-01T01:00:00Z');
const refs = [parseImageReference(IMAGE)];
const resolved = [resolvedImage(NEW, [], CHECKED)];

type Fate = { digest: string } | 'pulling' | 'gated' | 'failed' | 'kwok';

function pod(node: string, fate: Fate, created = CREATED): PullerPod {
  const running = { name: 'image-0', image: IMAGE, ready: true, restartCount: 0, state: { running: {} } };
  const containerStatuses =
    typeof fate === 'object'
      ? [{ ...running, imageID: `registry.test/app@${fate.digest}` }]
      : fate === 'kwok'
        ? [{ ...running, imageID: '' }]
        : fate === 'failed'
          ? [{ ...running, imageID: '', state: { waiting: { reason: 'ImagePullBackOff' } } }]
          : [];
  return {
    metadata: { name: `ppi-x-${node}`, namespace: 'ns', uid: `uid-${node}`, creationTimestamp: created },
    spec: {
      nodeName: node,
      containers: [{ name: 'image-0', image: IMAGE }],
      ...(fate === 'gated' ? { schedulingGates: [{ name: PULL_SLOT_GATE }] } : {}),
    },
    status: { phase: 'Running', containerStatuses },
  };
}

const nodes = (n: number, fate: Fate) =>
  Array.from({ length: n }, (_, i) => pod(`n${String(i).padStart(3, '0')}`, fate));

describe('planStaleNodes', () => {
  it('with nothing moved, replaces no pod', () => {
    const plan = planStaleNodes({
      pods: nodes(300, { digest: NEW }),
      refs,
      resolutions: resolved,
      desiredNodes: 300,
      limit: 10,
    });
    expect(plan).toEqual({ stale: [], replace: [], inFlight: 0 });
  });

  it('replaces only the stale nodes, no more at once than the limit', () => {
    const pods = [...nodes(5, { digest: OLD }), pod('fresh', { digest: NEW })];
    const plan = planStaleNodes({ pods, refs, resolutions: resolved, desiredNodes: 6, limit: 2 });
    expect(plan.stale.map((s) => s.node)).toEqual(['n000', 'n001', 'n002', 'n003', 'n004']);
    expect(plan.replace.map((s) => s.node)).toEqual(['n000', 'n001']);
    expect(plan.replace[0]).toMatchObject({ image: IMAGE, held: OLD, resolved: NEW });
  });

  it('counts pods still pulling or waiting, deleted pods, and nodes without a pod against the limit', () => {
    const stale = nodes(4, { digest: OLD });
    const base = { refs, resolutions: resolved, limit: 3 };
    // One pulling, one gated: one slot left.
    let plan = planStaleNodes({
      ...base,
      pods: [...stale, pod('p', 'pulling'), pod('g', 'gated')],
      desiredNodes: 6,
    });
    expect(plan.inFlight).toBe(2);
    expect(plan.replace).toHaveLength(1);
    // Two nodes whose pod is gone and not yet made again: one slot left.
    plan = planStaleNodes({ ...base, pods: stale, desiredNodes: 6 });
    expect(plan.inFlight).toBe(2);
    expect(plan.replace).toHaveLength(1);
    // Pods this controller deleted are not stale any more, and their nodes take a slot.
    plan = planStaleNodes({
      ...base,
      pods: stale,
      desiredNodes: 4,
      deleting: (p) => p.spec.nodeName === 'n000' || p.spec.nodeName === 'n001',
    });
    expect(plan.stale.map((s) => s.node)).toEqual(['n002', 'n003']);
    expect(plan.replace.map((s) => s.node)).toEqual(['n002']);
    // A failed pull takes no slot: it only retries with back-off.
    plan = planStaleNodes({ ...base, pods: [...stale, pod('f', 'failed')], desiredNodes: 5 });
    expect(plan.inFlight).toBe(0);
    expect(plan.replace).toHaveLength(3);
  });

  it('without a limit, replaces every stale node at once, and still no other', () => {
    const pods = [...nodes(3, { digest: OLD }), pod('fresh', { digest: NEW })];
    const plan = planStaleNodes({
      pods,
      refs,
      resolutions: resolved,
      desiredNodes: 4,
      limit: Number.POSITIVE_INFINITY,
    });
    expect(plan.replace.map((s) => s.node)).toEqual(['n000', 'n001', 'n002']);
  });

  it('tears nothing down while the check fails or before one resolved the tag', () => {
    const pods = nodes(3, { digest: OLD });
    const down = [failedCheck('RegistryUnavailable', 'connection refused', CHECKED)];
    for (const resolutions of [down, [undefined]]) {
      expect(planStaleNodes({ pods, refs, resolutions, desiredNodes: 3, limit: 1 }).stale).toEqual([]);
    }
  });

  it('never resolves digest references, and keeps the digest of tag+digest references', () => {
    const pods = nodes(2, { digest: OLD });
    for (const image of [`registry.test/app@${OLD}`, `registry.test/app:v1@${OLD}`]) {
      const plan = planStaleNodes({
        pods,
        refs: [parseImageReference(image)],
        resolutions: resolved,
        desiredNodes: 2,
        limit: 5,
      });
      expect(plan.stale).toEqual([]);
    }
  });

  it('a pod made after the check is left until the next check, so a node that still pulls another digest is no loop', () => {
    const pods = [pod('late', { digest: OLD }, '2026-01-01T01:00:01Z'), pod('early', { digest: OLD })];
    const plan = planStaleNodes({ pods, refs, resolutions: resolved, desiredNodes: 2, limit: 5 });
    expect(plan.stale.map((s) => s.node)).toEqual(['early']);
  });

  it('a pod without a registry digest (kwok, an image ID alone) is never stale', () => {
    const idOnly = pod('id', 'kwok');
    idOnly.status!.containerStatuses![0]!.imageID = OLD;
    const pods = [...nodes(3, 'kwok'), idOnly];
    expect(planStaleNodes({ pods, refs, resolutions: resolved, desiredNodes: 4, limit: 5 }).stale).toEqual(
      [],
    );
  });

  it('judges a node by its newest pod: a surge replacement that pulled the new digest is not stale', () => {
    const pods = [pod('n', { digest: OLD }), pod('n', { digest: NEW }, '2026-01-01T00:30:00Z')];
    pods[1]!.metadata.name = 'ppi-x-n-new';
    expect(planStaleNodes({ pods, refs, resolutions: resolved, desiredNodes: 1, limit: 5 }).stale).toEqual(
      [],
    );
  });
});
