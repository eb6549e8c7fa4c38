import { describe, expect, it } from 'vitest';
import { PendingWrites } from './pending.ts';

describe('PendingWrites', () => {
  it('is pending while the cache shows the version written over, until an event is seen', () => {
    const pending = new PendingWrites();
    expect(pending.isPending('ns/a', '5')).toBe(false);
    pending.wrote('ns/a', '5');
    expect(pending.isPending('ns/a', '5')).toBe(true);
    pending.seen('ns/a');
    expect(pending.isPending('ns/a', '5')).toBe(false);
    expect(pending.size).toBe(0);
  });

  it('treats a create as pending while the cache has no object', () => {
    const pending = new PendingWrites();
    pending.wrote('ns/a', undefined);
    expect(pending.isPending('ns/a', undefined)).toBe(true);
  });

  it('ends the wait once the cache shows another version, even without an event', () => {
    const pending = new PendingWrites();
    pending.wrote('ns/a', '5');
    expect(pending.isPending('ns/a', '9')).toBe(false);
    expect(pending.isPending('ns/a', '5')).toBe(false);
    expect(pending.size).toBe(0);
  });
});
