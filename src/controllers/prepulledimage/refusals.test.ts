import { describe, expect, it } from 'vitest';
import type { CoreEvent, DaemonSet } from '../../kube/objects.ts';
import type { PullerPod } from './pods.ts';
import { currentRefusal, currentRefusalOfAny, refusedDaemonSetKey, slimRefusal } from './refusals.ts';

const ds = { metadata: { name: 'ppi-web', namespace: 'team' }, spec: {} } as unknown as DaemonSet;

function refusal(at: string, message: string, name = 'ppi-web'): CoreEvent {
  return {
    metadata: { name: `${name}.${at}`, namespace: 'team', managedFields: [{}] },
    involvedObject: { kind: 'DaemonSet', name, namespace: 'team', uid: 'u' },
    reason: 'FailedCreate',
    message,
    lastTimestamp: at,
    count: 3,
  };
}

function pod(created: string): PullerPod {
  return { metadata: { name: 'p', namespace: 'team', creationTimestamp: created }, spec: { containers: [] } };
}

describe('pod refusals', () => {
  it('keeps what it needs of an Event', () => {
    expect(slimRefusal(refusal('2026-01-01T00:00:05Z', 'exceeded quota'))).toEqual({
      metadata: { name: 'ppi-web.2026-01-01T00:00:05Z', namespace: 'team' },
      involvedObject: { kind: 'DaemonSet', name: 'ppi-web', namespace: 'team' },
      message: 'exceeded quota',
      lastTimestamp: '2026-01-01T00:00:05Z',
    });
    expect(refusedDaemonSetKey(refusal('2026-01-01T00:00:05Z', 'x'))).toBe('team/ppi-web');
  });

  it('names the latest refusal of this DaemonSet, newer than any pod it has', () => {
    const events = [
      refusal('2026-01-01T00:00:05Z', 'old: exceeded quota'),
      refusal('2026-01-01T00:00:09Z', 'pods "ppi-web-x" is forbidden: exceeded quota: pods'),
      refusal('2026-01-01T00:00:30Z', 'someone else', 'other'),
    ];
    expect(currentRefusal(events, ds, [pod('2026-01-01T00:00:01Z')])).toBe(
      'pods "ppi-web-x" is forbidden: exceeded quota: pods',
    );
  });

  it('forgets refusals once a pod could be created after them', () => {
    const events = [refusal('2026-01-01T00:00:09Z', 'exceeded quota')];
    expect(currentRefusal(events, ds, [pod('2026-01-01T00:00:20Z')])).toBeUndefined();
    expect(currentRefusal(events, undefined, [])).toBeUndefined();
  });

  it("names an architecture DaemonSet's refusal, judged by its own pods, when the object's own has none", () => {
    const arch = { metadata: { name: 'ppa-web-1', namespace: 'team' }, spec: {} } as unknown as DaemonSet;
    const own = { daemonSet: ds, events: [], pods: [pod('2026-01-01T00:00:20Z')] };
    const refused = {
      daemonSet: arch,
      events: [refusal('2026-01-01T00:00:09Z', 'exceeded quota', 'ppa-web-1')],
      pods: [],
    };
    expect(currentRefusalOfAny([own, refused])).toBe('exceeded quota');
    // The own DaemonSet's newer pod does not make the other's refusal history.
    expect(currentRefusal(refused.events, arch, own.pods)).toBeUndefined();
    expect(currentRefusalOfAny([own, { ...refused, pods: [pod('2026-01-01T00:00:10Z')] }])).toBeUndefined();
  });
});
