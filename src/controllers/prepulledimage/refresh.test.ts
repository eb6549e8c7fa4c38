import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import { parseDurationMs, refreshSchedule } from './refresh.ts';

const created = Date.parse('2026-11-27T10:00:00Z');

function ppi(interval: string | undefined): PrePulledImage {
  return {
    metadata: { name: 'web', namespace: 'a', creationTimestamp: new Date(created).toISOString() },
    spec: { images: [{ image: 'nginx:1.27' }], ...(interval ? { refresh: { interval } } : {}) },
  };
}

describe('parseDurationMs', () => {
  it('reads s, m and h parts, fractions included', () => {
    expect(parseDurationMs('90s')).toBe(90_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1.5h')).toBe(5_400_000);
    expect(parseDurationMs('2m0.5s')).toBe(120_500);
  });

  it('is NaN for anything else', () => {
    for (const bad of ['', '10', '1d', 'h', '1h 30m', '-1m', '1m!']) expect(parseDurationMs(bad)).toBeNaN();
  });
});

describe('refreshSchedule', () => {
  it('is undefined without spec.refresh', () => {
    expect(refreshSchedule(ppi(undefined), created + 5_000)).toBeUndefined();
  });

  it('counts rounds from creation and says when the next begins', () => {
    expect(refreshSchedule(ppi('1h'), created)).toEqual({ round: 0, nextInMs: 3_600_000 });
    expect(refreshSchedule(ppi('1h'), created + 3_599_000)).toEqual({ round: 0, nextInMs: 1_000 });
    expect(refreshSchedule(ppi('1h'), created + 3_600_000)).toEqual({ round: 1, nextInMs: 3_600_000 });
    expect(refreshSchedule(ppi('10m'), created + 25 * 60_000)).toEqual({ round: 2, nextInMs: 5 * 60_000 });
  });

  it('holds a malformed or too short interval to the 1 minute floor', () => {
    expect(refreshSchedule(ppi('5s'), created + 61_000)).toEqual({ round: 1, nextInMs: 59_000 });
    expect(refreshSchedule(ppi('soon'), created + 30_000)).toEqual({ round: 0, nextInMs: 30_000 });
  });
});
