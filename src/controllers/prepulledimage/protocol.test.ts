import { describe, expect, it } from 'vitest';
import { holdContainerName, holdIndexOf, podCreatedAt } from './protocol.ts';

describe('container names', () => {
  it('round-trip through their index, and nothing else parses', () => {
    expect(holdIndexOf(holdContainerName(12))).toBe(12);
    expect(holdIndexOf('install-hold')).toBeUndefined();
    expect(holdIndexOf('image-')).toBeUndefined();
    expect(holdIndexOf('image-1x')).toBeUndefined();
  });
});

describe('podCreatedAt', () => {
  it('is undefined when unknown, so each caller decides what that means', () => {
    expect(podCreatedAt({ metadata: {} })).toBeUndefined();
    expect(podCreatedAt({ metadata: { creationTimestamp: 'nonsense' } })).toBeUndefined();
    expect(podCreatedAt({ metadata: { creationTimestamp: '2026-01-01T00:00:00Z' } })).toBe(
      Date.UTC(2026, 0, 1),
    );
  });
});
