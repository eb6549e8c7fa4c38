import { describe, expect, it } from 'vitest';
import type { RegistryCredentialStatus } from '../../api/registrycredential.ts';
import { MAX_STATUS_FAILURES, type RegistryCredential } from '../../api/registrycredential.ts';
import { transitionEvents as conditionEvents } from '../../runtime/conditions.ts';
import { REGISTRY_CREDENTIAL_TRANSITIONS, stalledStatus, syncedStatus } from './status.ts';

/** The Events the runtime records for this kind between two statuses. */
function transitionEvents(before: RegistryCredentialStatus | undefined, after: RegistryCredentialStatus) {
  return conditionEvents(before?.conditions, after.conditions, REGISTRY_CREDENTIAL_TRANSITIONS).map(
    ({ type, reason, note }) => ({ type, reason, note }),
  );
}

const now = new Date('2026-01-01T00:00:00Z');
const later = new Date('2026-01-01T00:05:00Z');
const rc: RegistryCredential = {
  metadata: { name: 'corp', uid: 'uid-1', generation: 3 },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'regcred', namespaces: ['a'] },
  },
};
const condition = (status: ReturnType<typeof syncedStatus>, type: string) =>
  status.conditions?.find((c) => c.type === type);

describe('syncedStatus', () => {
  it('is Ready with every namespace synced, and counts them', () => {
    const status = syncedStatus(
      rc,
      { desired: 3, synced: 3, failures: [], sourceResourceVersion: '42' },
      now,
    );
    expect(status).toMatchObject({
      observedGeneration: 3,
      synced: '3/3',
      desiredNamespaces: 3,
      syncedNamespaces: 3,
      failedNamespaces: 0,
      failures: [],
      sourceResourceVersion: '42',
    });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllNamespacesSynced',
      observedGeneration: 3,
    });
    expect(condition(status, 'Reconciling')).toMatchObject({ status: 'False', observedGeneration: 3 });
    expect(condition(status, 'Stalled')).toMatchObject({ status: 'False', observedGeneration: 3 });
    expect(condition(status, 'Ready')?.message).toBe('secret regcred is in 3/3 namespaces');
  });

  it('is Stalled on a Conflict, naming the namespaces', () => {
    const failures = ['b', 'a'].map((namespace) => ({
      namespace,
      reason: 'Conflict',
      message: 'not ours',
      retrying: false,
    }));
    const status = syncedStatus(rc, { desired: 5, synced: 3, failures, sourceResourceVersion: '42' }, now);
    expect(status.synced).toBe('3/5');
    expect(status.failures?.map((f) => f.namespace)).toEqual(['a', 'b']);
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'Conflict' });
    expect(condition(status, 'Stalled')).toMatchObject({ status: 'True', reason: 'Conflict' });
    expect(condition(status, 'Reconciling')?.status).toBe('False');
    expect(condition(status, 'Stalled')?.message).toContain('Conflict in a, b: not ours');
  });

  it('is Reconciling while failures are retried', () => {
    const failures = [
      { namespace: 'a', reason: 'Conflict', message: 'not ours', retrying: false },
      {
        namespace: 'b',
        reason: 'SyncFailed',
        message: 'creating the secret: 500 InternalError',
        retrying: true,
      },
    ];
    const status = syncedStatus(rc, { desired: 2, synced: 0, failures, sourceResourceVersion: '42' }, now);
    expect(condition(status, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Progressing' });
    expect(condition(status, 'Stalled')?.status).toBe('False');
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'SyncFailed' });
  });

  it(`lists at most ${MAX_STATUS_FAILURES} failures and counts all of them`, () => {
    const failures = Array.from({ length: 300 }, (_, i) => ({
      namespace: `ns-${String(i).padStart(3, '0')}`,
      reason: 'Conflict',
      message: 'x'.repeat(2000),
      retrying: false,
    }));
    const status = syncedStatus(rc, { desired: 300, synced: 0, failures, sourceResourceVersion: '1' }, now);
    expect(status.failures).toHaveLength(MAX_STATUS_FAILURES);
    expect(status.failedNamespaces).toBe(300);
    expect(status.failures?.[0]?.message.length).toBeLessThanOrEqual(512);
    expect(condition(status, 'Stalled')?.message).toContain('and 295 more');
    expect(JSON.stringify(status).length).toBeLessThan(16_000);
  });

  it('keeps lastTransitionTime while the verdict holds', () => {
    const first = syncedStatus(rc, { desired: 1, synced: 1, failures: [], sourceResourceVersion: '1' }, now);
    const second = syncedStatus(
      { ...rc, status: first },
      { desired: 2, synced: 2, failures: [], sourceResourceVersion: '2' },
      later,
    );
    expect(condition(second, 'Ready')?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });
});

describe('stalledStatus', () => {
  it('keeps the counts and the last propagated source version, with Stalled and the reason', () => {
    const synced = syncedStatus(
      rc,
      { desired: 2, synced: 2, failures: [], sourceResourceVersion: '42' },
      now,
    );
    const status = stalledStatus(
      { ...rc, status: synced },
      { reason: 'SourceNotFound', message: 'source secret vault/pull not found', retry: false },
      later,
    );
    expect(status).toMatchObject({ synced: '2/2', sourceResourceVersion: '42', observedGeneration: 3 });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'SourceNotFound',
      lastTransitionTime: '2026-01-01T00:05:00Z',
    });
    expect(condition(status, 'Stalled')).toMatchObject({ status: 'True', reason: 'SourceNotFound' });
    expect(condition(status, 'Reconciling')?.status).toBe('False');
  });
});

describe('transitionEvents', () => {
  const ready = syncedStatus(rc, { desired: 1, synced: 1, failures: [], sourceResourceVersion: '1' }, now);
  const missing = stalledStatus(
    { ...rc, status: ready },
    { reason: 'SourceNotFound', message: 'source secret vault/pull not found', retry: false },
    now,
  );

  it('records Synced when the secret reaches every namespace, once', () => {
    expect(transitionEvents(undefined, ready)).toEqual([
      { type: 'Normal', reason: 'Synced', note: 'secret regcred is in 1/1 namespaces' },
    ]);
    expect(transitionEvents(ready, ready)).toEqual([]);
  });

  it('records a Warning when a stall begins or says something new, not while it stays', () => {
    expect(transitionEvents(ready, missing)).toEqual([
      { type: 'Warning', reason: 'SourceNotFound', note: 'source secret vault/pull not found' },
    ]);
    expect(transitionEvents(missing, missing)).toEqual([]);
    const invalid = stalledStatus(
      { ...rc, status: missing },
      { reason: 'SourceInvalid', message: 'bad', retry: false },
      now,
    );
    expect(transitionEvents(missing, invalid)).toEqual([
      { type: 'Warning', reason: 'SourceInvalid', note: 'bad' },
    ]);
    // And Synced again once it recovers.
    expect(transitionEvents(invalid, ready).map((e) => e.reason)).toEqual(['Synced']);
  });
});
