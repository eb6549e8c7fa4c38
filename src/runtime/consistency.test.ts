import { describe, expect, it } from 'vitest';
import { Resources } from '../kube/resources.ts';
import { ConsistencyStore } from './consistency.ts';

const at = (resourceVersion: string) => ({ metadata: { resourceVersion } });

describe('ConsistencyStore', () => {
  it('is pending while the cache shows the version written over, until an event is seen', () => {
    const store = new ConsistencyStore();
    expect(store.isPending(Resources.secrets, 'ns/a', at('5'))).toBe(false);
    store.wrote(Resources.secrets, 'ns/a', '5');
    expect(store.isPending(Resources.secrets, 'ns/a', at('5'))).toBe(true);
    store.seen(Resources.secrets, 'ns/a', false);
    expect(store.isPending(Resources.secrets, 'ns/a', at('5'))).toBe(false);
    expect(store.size).toBe(0);
  });

  it('treats a create as pending while the cache has no object', () => {
    const store = new ConsistencyStore();
    store.wrote(Resources.secrets, 'ns/a', undefined);
    expect(store.isPending(Resources.secrets, 'ns/a', undefined)).toBe(true);
    expect(store.isPending(Resources.secrets, 'ns/a', at('1'))).toBe(false);
  });

  it('ends the wait when the cache moved on by another path (a relist)', () => {
    const store = new ConsistencyStore();
    store.wrote(Resources.secrets, 'ns/a', '5');
    expect(store.isPending(Resources.secrets, 'ns/a', at('9'))).toBe(false);
    expect(store.isPending(Resources.secrets, 'ns/a', at('5'))).toBe(false);
    expect(store.size).toBe(0);
  });

  it('keeps objects of different types apart', () => {
    const store = new ConsistencyStore();
    store.wrote(Resources.serviceAccounts, 'ns/default', '4');
    expect(store.isPending(Resources.secrets, 'ns/default', at('4'))).toBe(false);
    expect(store.isPending(Resources.serviceAccounts, 'ns/default', at('4'))).toBe(true);
  });

  it('returns what was written while it is pending', () => {
    const store = new ConsistencyStore();
    store.wrote(Resources.prePulledImages, 'ns/x', '7', { value: { ready: '1/1' } });
    expect(store.written(Resources.prePulledImages, 'ns/x', at('7'))).toEqual({ ready: '1/1' });
    expect(store.written(Resources.prePulledImages, 'ns/x', at('8'))).toBeUndefined();
  });

  it('waits for an effect, whatever else changes, until the object passes the test or is deleted', () => {
    const store = new ConsistencyStore();
    const pod = (rv: string, gated: boolean) => ({ metadata: { resourceVersion: rv }, gated });
    store.wrote<{ gated: boolean }>(Resources.pods, 'ns/p', '3', { until: (cached) => !cached.gated });
    // The kubelet wrote the pod meanwhile: a newer version, still gated in the cache.
    store.seen(Resources.pods, 'ns/p', false);
    expect(store.isPending(Resources.pods, 'ns/p', pod('4', true))).toBe(true);
    expect(store.isPending(Resources.pods, 'ns/p', pod('5', false))).toBe(false);
    store.wrote<{ gated: boolean }>(Resources.pods, 'ns/p', '5', { until: () => false });
    store.seen(Resources.pods, 'ns/p', true);
    expect(store.size).toBe(0);
  });
});
