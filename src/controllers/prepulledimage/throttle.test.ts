import { describe, expect, it } from 'vitest';
import type { ContainerStatus, Pod } from '../../kube/objects.ts';
import { PULL_SLOT_GATE } from './labels.ts';
import { isPullFinished, podsToAdmit, resolvePullLimit } from './throttle.ts';

describe('resolvePullLimit', () => {
  it.each([
    [undefined, 10, Number.POSITIVE_INFINITY],
    [3, 10, 3],
    ['10%', 100, 10],
    ['10%', 15, 1],
    ['10%', 0, 1],
    ['33%', 10, 3],
    ['100%', 7, 7],
    ['5', 10, 5],
    ['bogus', 10, 1],
  ])('%j of %i nodes → %d', (setting, desired, expected) => {
    expect(resolvePullLimit(setting, desired)).toBe(expected);
  });
});

type Fate = 'gated' | 'pulling' | 'done' | 'failed';

function pod(
  name: string,
  fate: Fate,
  created = '2026-01-01T00:00:00Z',
  extra: Partial<Pod['metadata']> = {},
): Pod {
  const status = (imageID: string, waiting?: string): ContainerStatus => ({
    name: 'image-0',
    image: 'docker.io/library/nginx:1.27',
    imageID,
    ready: imageID !== '',
    restartCount: 0,
    state: waiting ? { waiting: { reason: waiting } } : { running: {} },
  });
  const containerStatuses =
    fate === 'done'
      ? [status('docker.io/library/nginx@sha256:0')]
      : fate === 'failed'
        ? [status('', 'ImagePullBackOff')]
        : fate === 'pulling'
          ? [status('', 'ContainerCreating')]
          : [];
  return {
    metadata: { name, creationTimestamp: created, ...extra },
    spec: {
      ...(fate === 'gated' ? { schedulingGates: [{ name: PULL_SLOT_GATE }] } : { nodeName: `node-${name}` }),
      containers: [{ name: 'image-0', image: 'docker.io/library/nginx:1.27' }],
    },
    status: { containerStatuses },
  };
}

const names = (pods: Pod[]) => pods.map((p) => p.metadata.name);

describe('isPullFinished', () => {
  it('is finished once every image is there or a pull failed', () => {
    expect(isPullFinished(pod('a', 'done'))).toBe(true);
    expect(isPullFinished(pod('a', 'failed'))).toBe(true);
    expect(isPullFinished(pod('a', 'pulling'))).toBe(false);
    expect(isPullFinished(pod('a', 'gated'))).toBe(false);
  });
});

describe('podsToAdmit', () => {
  it('admits the oldest gated pods up to the free slots', () => {
    const pods = [
      pod('c', 'gated', '2026-01-01T00:00:03Z'),
      pod('b', 'gated', '2026-01-01T00:00:01Z'),
      pod('a', 'gated', '2026-01-01T00:00:01Z'),
      pod('p', 'pulling'),
      pod('d', 'done'),
      pod('f', 'failed'),
    ];
    expect(names(podsToAdmit(pods, 3))).toEqual(['a', 'b']);
    expect(names(podsToAdmit(pods, 2))).toEqual(['a']);
    expect(podsToAdmit(pods, 1)).toEqual([]);
  });

  it('admits nothing when in-flight pods exceed the limit', () => {
    expect(podsToAdmit([pod('p', 'pulling'), pod('q', 'pulling'), pod('g', 'gated')], 1)).toEqual([]);
  });

  it('admits every gated pod without a limit', () => {
    const pods = [pod('b', 'gated'), pod('a', 'gated'), pod('p', 'pulling')];
    expect(names(podsToAdmit(pods, Number.POSITIVE_INFINITY))).toEqual(['a', 'b']);
  });

  it('ignores pods being deleted', () => {
    const deleting = { deletionTimestamp: '2026-01-01T00:01:00Z' };
    const pods = [
      pod('p', 'pulling', undefined, deleting),
      pod('g', 'gated', undefined, deleting),
      pod('h', 'gated'),
    ];
    expect(names(podsToAdmit(pods, 1))).toEqual(['h']);
  });

  it('puts pods of unknown age last', () => {
    const pods = [pod('a', 'gated', ''), pod('b', 'gated', '2026-01-01T00:00:09Z')];
    expect(names(podsToAdmit(pods, 1))).toEqual(['b']);
  });
});
