import { describe, expect, it } from 'vitest';
import { decideRelease, type GateInput } from './gate.ts';

const T0 = Date.UTC(2026, 0, 1);
const gate = (key: string, progress: GateInput['progress'], timeoutMs = 60_000): GateInput => ({
  key,
  progress,
  timeoutMs,
});

describe('decideRelease', () => {
  it('releases a node no object gates, and one every gating object is ready on', () => {
    expect(decideRelease([], T0, T0)).toEqual({ release: true, why: 'ungated' });
    expect(decideRelease([gate('a/x', { state: 'ready' }), gate('b/y', { state: 'ready' })], T0, T0)).toEqual(
      {
        release: true,
        why: 'ready',
      },
    );
  });

  it('holds while one is on its way, until the earliest timeout since the node registered', () => {
    const gates = [
      gate('a/x', { state: 'ready' }),
      gate('b/y', { state: 'waiting' }, 30_000),
      gate('c/z', { state: 'waiting' }),
    ];
    expect(decideRelease(gates, T0, T0 + 10_000)).toEqual({ release: false, recheckInMs: 20_000 });
    expect(decideRelease(gates, T0, T0 + 30_000)).toEqual({
      release: true,
      why: 'timeout',
      reason: 'Timeout',
      message: 'released after waiting 30 s for b/y, c/z',
    });
  });

  it('fails open at once when an image fails on the node', () => {
    const gates = [
      gate('a/x', { state: 'waiting' }),
      gate('b/y', { state: 'failed', reason: 'Unauthorized', message: 'registry.example.com/app:1: 401' }),
    ];
    expect(decideRelease(gates, T0, T0 + 1_000)).toEqual({
      release: true,
      why: 'failed',
      reason: 'Unauthorized',
      message: 'b/y: registry.example.com/app:1: 401',
    });
  });
});
