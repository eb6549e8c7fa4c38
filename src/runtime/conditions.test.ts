import { describe, expect, it } from 'vitest';
import type { Condition } from '../api/common.ts';
import {
  conditionsEqualIgnoringTime,
  failureConditions,
  findCondition,
  isoSeconds,
  setCondition,
  shortenMessage,
} from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T01:00:00.999Z');

describe('isoSeconds', () => {
  it('drops the milliseconds', () => {
    expect(isoSeconds(t0)).toBe('2026-01-01T00:00:00Z');
  });
});

describe('setCondition', () => {
  it('appends a new condition with the current time', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'A', message: 'm' }, t0);
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'True',
        lastTransitionTime: '2026-01-01T00:00:00Z',
        reason: 'A',
        message: 'm',
      },
    ]);
    expect(Object.keys(list[0] ?? {})).not.toContain('observedGeneration');
  });

  it('keeps lastTransitionTime when the status does not flip', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
    const second = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 2 },
      t1,
    );
    expect(second).toEqual([
      {
        type: 'Ready',
        status: 'False',
        observedGeneration: 2,
        lastTransitionTime: '2026-01-01T00:00:00Z',
        reason: 'B',
        message: 'b',
      },
    ]);
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: '' }, t0);
    const second = setCondition(first, { type: 'Ready', status: 'True', reason: 'A', message: '' }, t1);
    expect(second[0]?.lastTransitionTime).toBe('2026-01-01T01:00:00Z');
  });

  it('replaces in place, keeps order, and does not mutate its input', () => {
    let list: Condition[] = [];
    for (const type of ['Ready', 'Progressing', 'Degraded']) {
      list = setCondition(list, { type, status: 'False', reason: 'A', message: '' }, t0);
    }
    const frozen = structuredClone(list);
    const next = setCondition(list, { type: 'Progressing', status: 'True', reason: 'B', message: '' }, t1);
    expect(next.map((c) => c.type)).toEqual(['Ready', 'Progressing', 'Degraded']);
    expect(next[1]?.status).toBe('True');
    expect(list).toEqual(frozen);
  });
});

describe('findCondition', () => {
  it('finds by type', () => {
    const list = setCondition([], { type: 'Ready', status: 'True', reason: 'A', message: '' }, t0);
    expect(findCondition(list, 'Ready')?.reason).toBe('A');
    expect(findCondition(list, 'Degraded')).toBeUndefined();
    expect(findCondition(undefined, 'Ready')).toBeUndefined();
  });
});

describe('conditionsEqualIgnoringTime', () => {
  const a = setCondition([], { type: 'Ready', status: 'True', reason: 'A', message: 'm' }, t0);
  const b = setCondition([], { type: 'Degraded', status: 'False', reason: 'A', message: 'm' }, t0);

  it('ignores lastTransitionTime and order', () => {
    const later = setCondition(
      setCondition([], { type: 'Degraded', status: 'False', reason: 'A', message: 'm' }, t1),
      { type: 'Ready', status: 'True', reason: 'A', message: 'm' },
      t1,
    );
    expect(conditionsEqualIgnoringTime([...a, ...b], later)).toBe(true);
    expect(conditionsEqualIgnoringTime(undefined, [])).toBe(true);
  });

  it.each([
    ['status', { status: 'False' as const }],
    ['reason', { reason: 'B' }],
    ['message', { message: 'other' }],
    ['observedGeneration', { observedGeneration: 3 }],
  ])('sees a change of %s', (_field, change) => {
    const changed = setCondition(
      a,
      { type: 'Ready', status: 'True', reason: 'A', message: 'm', ...change },
      t0,
    );
    expect(conditionsEqualIgnoringTime(a, changed)).toBe(false);
  });

  it('sees an added or different condition', () => {
    expect(conditionsEqualIgnoringTime(a, [...a, ...b])).toBe(false);
    expect(conditionsEqualIgnoringTime(a, b)).toBe(false);
  });
});

describe('shortenMessage', () => {
  it('leaves short text alone and cuts long text to the limit', () => {
    expect(shortenMessage('abc', 3)).toBe('abc');
    expect(shortenMessage('abcdef', 4)).toBe('abc…');
  });
});

describe('failureConditions', () => {
  const object = { metadata: { generation: 3 } };
  const options = { now: new Date('2026-01-01T00:00:00Z'), maxMessage: 100, failingWhileRetrying: true };
  const rows = (conditions: { type: string; status: string }[]) => conditions.map((c) => [c.type, c.status]);

  it('adds a Stalled condition for a set that names one: True only when the failure is not retried', () => {
    const set = { ready: 'Ready', progressing: 'Progressing', failing: 'Degraded', stalled: 'Stalled' };
    const terminal = failureConditions(
      object,
      set,
      { reason: 'InvalidSpec', message: 'bad', retry: false },
      options,
    );
    expect(rows(terminal)).toEqual([
      ['Ready', 'False'],
      ['Progressing', 'False'],
      ['Degraded', 'True'],
      ['Stalled', 'True'],
    ]);
    const retried = failureConditions(
      object,
      set,
      { reason: 'Forbidden', message: 'quota', retry: true },
      options,
    );
    expect(rows(retried)).toEqual([
      ['Ready', 'False'],
      ['Progressing', 'True'],
      ['Degraded', 'True'],
      ['Stalled', 'False'],
    ]);
  });

  it('gives a set without one its three conditions', () => {
    const set = { ready: 'Ready', progressing: 'Reconciling', failing: 'Stalled' };
    const failure = { reason: 'Conflict', message: 'not ours', retry: false };
    expect(
      rows(failureConditions(object, set, failure, { ...options, failingWhileRetrying: false })),
    ).toEqual([
      ['Ready', 'False'],
      ['Reconciling', 'False'],
      ['Stalled', 'True'],
    ]);
  });
});
