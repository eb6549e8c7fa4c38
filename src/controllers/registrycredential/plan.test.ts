import { describe, expect, it } from 'vitest';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import { keyOf, type Secret, type ServiceAccount } from '../../kube/objects.ts';
import { type PlanInput, planCleanup, planSync } from './plan.ts';
import { renderCopy } from './render.ts';

const DATA = Buffer.from('{"auths":{"r":{"auth":"eDp5"}}}').toString('base64');
const rc: RegistryCredential = {
  metadata: { name: 'corp', uid: 'uid-1', generation: 1 },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'regcred', namespaces: ['a'] },
    serviceAccounts: ['default', 'builder'],
  },
};

function copyIn(namespace: string, name = 'regcred'): Secret {
  const copy = renderCopy(
    { ...rc, spec: { ...rc.spec, target: { ...rc.spec.target, secretName: name } } },
    namespace,
    DATA,
  );
  copy.metadata.resourceVersion = `${namespace}-${name}-1`;
  copy.metadata.uid = `${namespace}-${name}`;
  return copy;
}

function sa(namespace: string, name: string, entries: string[] = [], added?: string): ServiceAccount {
  return {
    metadata: {
      name,
      namespace,
      resourceVersion: '1',
      ...(added ? { annotations: { 'prepull.dev/added-image-pull-secrets': added } } : {}),
    },
    imagePullSecrets: entries.map((n) => ({ name: n })),
  };
}

function input(over: Partial<PlanInput> & { secrets?: Secret[]; sas?: ServiceAccount[] }): PlanInput {
  const secrets = new Map((over.secrets ?? []).map((s) => [s.metadata.namespace, s]));
  const sas = over.sas ?? [];
  return {
    rc,
    targets: ['a', 'b'],
    dockerConfigJson: DATA,
    secretAt: (namespace) => secrets.get(namespace),
    ownedCopies: (over.secrets ?? []).filter((s) => s.metadata.ownerReferences?.[0]?.uid === 'uid-1'),
    serviceAccountsIn: (namespace) => sas.filter((s) => s.metadata.namespace === namespace),
    isTerminating: () => false,
    isPending: () => false,
    ...over,
  };
}

describe('planSync', () => {
  it('creates missing copies and patches the named ServiceAccounts that exist', () => {
    const plan = planSync(input({ sas: [sa('a', 'default', ['theirs']), sa('a', 'unrelated')] }));
    expect(plan.map((w) => [w.namespace, w.target, w.copy?.action])).toEqual([
      ['a', true, 'create'],
      ['b', true, 'create'],
    ]);
    expect(plan[0]!.serviceAccounts.map((p) => p.sa.metadata.name)).toEqual(['default']);
    expect(plan[1]!.serviceAccounts).toEqual([]);
  });

  it('plans nothing at all when every copy and ServiceAccount is current', () => {
    const plan = planSync(
      input({
        secrets: [copyIn('a'), copyIn('b')],
        sas: [sa('a', 'default', ['regcred'], 'regcred'), sa('b', 'builder', ['x', 'regcred'], 'regcred')],
      }),
    );
    expect(plan.every((w) => !w.copy && w.serviceAccounts.length === 0 && w.deletions.length === 0)).toBe(
      true,
    );
    expect(plan).toHaveLength(2);
  });

  it("reports a conflict and leaves that namespace's ServiceAccounts alone", () => {
    const users: Secret = {
      metadata: { name: 'regcred', namespace: 'a', resourceVersion: '3' },
      type: 'Opaque',
    };
    const plan = planSync(input({ secrets: [users], sas: [sa('a', 'default', ['regcred'])] }));
    expect(plan[0]).toMatchObject({ namespace: 'a', conflict: true, serviceAccounts: [] });
    expect(plan[0]!.copy).toBeUndefined();
  });

  it('deletes copies in namespaces no longer targeted, and their ServiceAccount entries first', () => {
    const plan = planSync(
      input({
        targets: ['a'],
        secrets: [copyIn('a'), copyIn('c')],
        sas: [sa('c', 'default', ['theirs', 'regcred'], 'regcred')],
      }),
    );
    const c = plan.find((w) => w.namespace === 'c')!;
    expect(c.target).toBe(false);
    expect(c.deletions.map(keyOf)).toEqual(['c/regcred']);
    expect(c.serviceAccounts[0]!.ops).toContainEqual({
      op: 'add',
      path: '/imagePullSecrets',
      value: [{ name: 'theirs' }],
    });
  });

  it('deletes copies under an old name and moves the ServiceAccount entry to the new one', () => {
    const plan = planSync(
      input({
        targets: ['a'],
        secrets: [copyIn('a')],
        ownedCopies: [copyIn('a'), copyIn('a', 'old')],
        sas: [sa('a', 'default', ['old'], 'old')],
      }),
    );
    expect(plan[0]!.deletions.map(keyOf)).toEqual(['a/old']);
    expect(plan[0]!.serviceAccounts[0]!.ops).toContainEqual({
      op: 'add',
      path: '/imagePullSecrets',
      value: [{ name: 'regcred' }],
    });
  });

  it('takes its entry off a ServiceAccount that was dropped from spec.serviceAccounts', () => {
    const plan = planSync(
      input({
        targets: ['a'],
        secrets: [copyIn('a')],
        sas: [sa('a', 'ci', ['regcred'], 'regcred'), sa('a', 'default', ['regcred'], 'regcred')],
      }),
    );
    expect(plan[0]!.serviceAccounts.map((p) => p.sa.metadata.name)).toEqual(['ci']);
  });

  it('skips writes whose watch event has not arrived, and terminating namespaces', () => {
    const plan = planSync(
      input({
        targets: ['a'],
        secrets: [copyIn('gone')],
        sas: [sa('a', 'default')],
        isPending: (_, key) => key === 'a/regcred' || key === 'a/default',
        isTerminating: (namespace) => namespace === 'gone',
      }),
    );
    expect(plan).toEqual([
      { namespace: 'a', target: true, conflict: false, serviceAccounts: [], deletions: [] },
    ]);
  });

  it('updates a copy with old data, keeping the existing one for its UID', () => {
    const stale = copyIn('a');
    stale.data = { '.dockerconfigjson': 'e30=' };
    const plan = planSync(input({ targets: ['a'], secrets: [stale] }));
    expect(plan[0]!.copy).toMatchObject({ action: 'update', existing: { metadata: { uid: 'a-regcred' } } });
  });
});

describe('planCleanup', () => {
  it("removes entries where it owns a copy or the copy is already gone, never where the secret is someone else's", () => {
    const users: Secret = { metadata: { name: 'regcred', namespace: 'b' }, type: 'Opaque' };
    const out = planCleanup({
      secretName: 'regcred',
      uid: 'uid-1',
      targets: ['a', 'b', 'c'],
      secretAt: (namespace) => (namespace === 'a' ? copyIn('a') : namespace === 'b' ? users : undefined),
      ownedCopies: [copyIn('a'), copyIn('d', 'old')],
      serviceAccountsIn: (namespace) => [sa(namespace, 'default', ['regcred', 'old'], 'old,regcred')],
      isTerminating: () => false,
      isPending: () => false,
    });
    expect(out.map((c) => c.namespace)).toEqual(['a', 'c', 'd']);
    const d = out.find((c) => c.namespace === 'd')!;
    // In d only the copy named old was ours.
    expect(d.serviceAccounts[0]!.ops).toContainEqual({
      op: 'add',
      path: '/imagePullSecrets',
      value: [{ name: 'regcred' }],
    });
  });
});
