import { describe, expect, it } from 'vitest';
import type { ContainerStatus, Pod } from '../../kube/objects.ts';
import { importRetryDelayMs, importSteps, planImportRetries } from './retry.ts';

const policy = { baseMs: 30_000, maxMs: 600_000 };
const T0 = Date.parse('2026-11-27T10:00:00Z');

type Step = 'running' | { ok: boolean; at?: number } | { exitCode: number; message?: string };

/** A puller pod with images a (index 0) and b (index 1), both from tarballs. */
function pod(
  steps: [Step, Step],
  options: { node?: string; holdRunning?: number[]; deleting?: boolean } = {},
): Pod {
  const initContainerStatuses: ContainerStatus[] = steps.map((step, i) => {
    const base = { name: `import-${i}`, image: 'agent', imageID: '', ready: false, restartCount: 0 };
    if (step === 'running') return { ...base, state: { running: {} } };
    if ('ok' in step) {
      return {
        ...base,
        state: {
          terminated: {
            exitCode: 0,
            message: JSON.stringify(
              step.ok ? { ok: true } : { ok: false, reason: 'ImportFailed', message: 'bad' },
            ),
            finishedAt: new Date(step.at ?? T0).toISOString(),
          },
        },
      };
    }
    return { ...base, state: { terminated: { ...step, finishedAt: new Date(T0).toISOString() } } };
  });
  return {
    metadata: {
      name: `puller-${options.node ?? 'n1'}`,
      uid: `uid-${options.node ?? 'n1'}`,
      ...(options.deleting ? { deletionTimestamp: new Date(T0).toISOString() } : {}),
    },
    spec: {
      nodeName: options.node ?? 'n1',
      containers: [
        { name: 'image-0', image: 'example.com/a:1' },
        { name: 'image-1', image: 'example.com/b:1' },
      ],
    },
    status: {
      initContainerStatuses,
      containerStatuses: (options.holdRunning ?? []).map((i) => ({
        name: `image-${i}`,
        image: '',
        imageID: '',
        ready: true,
        restartCount: 0,
        state: { running: {} },
      })),
    },
  };
}

describe('importRetryDelayMs', () => {
  it('doubles from the base and stops at the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 100].map((a) => importRetryDelayMs(a, policy) / 1000)).toEqual([
      30, 60, 120, 240, 480, 600, 600, 600,
    ]);
  });
});

describe('importSteps', () => {
  it('none for a pod without import steps (pull mode)', () => {
    const p = pod([{ ok: true }, { ok: true }]);
    p.status = {};
    expect(importSteps(p)).toEqual({ state: 'none' });
  });

  it('running while any step has not finished', () => {
    expect(importSteps(pod([{ ok: false }, 'running'])).state).toBe('running');
  });

  it('ok when every step says ok', () => {
    expect(importSteps(pod([{ ok: true }, { ok: true }]))).toEqual({ state: 'ok' });
  });

  it('failed names the images whose import failed, with the time of the last failure', () => {
    expect(importSteps(pod([{ ok: true }, { ok: false, at: T0 + 5_000 }]))).toEqual({
      state: 'failed',
      finishedAt: T0 + 5_000,
      images: ['example.com/b:1'],
    });
  });

  it('a failed step whose image runs anyway (loaded by hand meanwhile) is not a failure', () => {
    expect(importSteps(pod([{ ok: false }, { ok: true }], { holdRunning: [0] }))).toEqual({ state: 'ok' });
  });

  it('a step that ended without its JSON outcome is a failure, even with exit 0', () => {
    expect(importSteps(pod([{ exitCode: 2, message: 'panic' }, { ok: true }])).state).toBe('failed');
    // What status reports as ImportFailed is retried too: one reading of the result (protocol.ts).
    expect(importSteps(pod([{ exitCode: 0 }, { ok: true }])).state).toBe('failed');
  });
});

describe('planImportRetries', () => {
  const failedAt = (at: number, node = 'n1') => pod([{ ok: false, at }, { ok: true }], { node });

  it('waits out the back-off, then picks the pod for retry 1', () => {
    const waiting = planImportRetries([failedAt(T0)], new Map(), T0 + 10_000, policy);
    expect(waiting.due).toEqual([]);
    expect(waiting.nextInMs).toBe(20_000);
    const due = planImportRetries([failedAt(T0)], new Map(), T0 + 30_000, policy);
    expect(due.due.map((d) => [d.node, d.attempt, d.images])).toEqual([['n1', 1, ['example.com/a:1']]]);
    expect(due.nextInMs).toBeUndefined();
  });

  it('waits twice as long after each retry made on that node, and each node counts for itself', () => {
    const attempts = new Map([['n1', 2]]);
    const plan = planImportRetries([failedAt(T0, 'n1'), failedAt(T0, 'n2')], attempts, T0 + 60_000, policy);
    expect(plan.due.map((d) => d.node)).toEqual(['n2']);
    expect(plan.nextInMs).toBe(60_000); // 120 s after the failure for the third retry
  });

  it('leaves pods being deleted, unscheduled or still importing alone', () => {
    const deleting = pod([{ ok: false }, { ok: true }], { deleting: true });
    const running = pod([{ ok: false }, 'running'], { node: 'n2' });
    const unscheduled = failedAt(T0, 'n3');
    delete unscheduled.spec.nodeName;
    const plan = planImportRetries([deleting, running, unscheduled], new Map(), T0 + 3_600_000, policy);
    expect(plan).toEqual({ due: [], nextInMs: undefined, succeeded: [] });
  });

  it('reports nodes whose imports now succeed, so their count starts over', () => {
    const ok = pod([{ ok: true }, { ok: true }]);
    expect(planImportRetries([ok], new Map([['n1', 3]]), T0, policy).succeeded).toEqual(['n1']);
    expect(planImportRetries([ok], new Map(), T0, policy).succeeded).toEqual([]);
  });
});
