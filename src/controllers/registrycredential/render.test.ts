import { describe, expect, it } from 'vitest';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Secret, ServiceAccount } from '../../kube/objects.ts';
import { credentialLabelValue } from './labels.ts';
import { type JsonPatchOperation, planCopy, renderCopy, serviceAccountPatch } from './render.ts';

const rc: RegistryCredential = {
  apiVersion: 'prepull.dev/v1alpha1',
  kind: 'RegistryCredential',
  metadata: { name: 'corp', uid: 'uid-1', generation: 1 },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'regcred', namespaces: ['a'] },
  },
};
const DATA = Buffer.from('{"auths":{"r":{"auth":"eDp5"}}}').toString('base64');

describe('renderCopy', () => {
  it("is a dockerconfigjson with Prepull's labels, a hash, and the RegistryCredential as controlling owner", () => {
    const copy = renderCopy(rc, 'team-a', DATA);
    expect(copy).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': DATA },
      metadata: {
        name: 'regcred',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'prepull', 'prepull.dev/registrycredential': 'corp' },
        ownerReferences: [
          {
            apiVersion: 'prepull.dev/v1alpha1',
            kind: 'RegistryCredential',
            name: 'corp',
            uid: 'uid-1',
            controller: true,
          },
        ],
      },
    });
    // Nothing but ours: no GitOps tracking label or annotation can come along.
    expect(Object.keys(copy.metadata.labels ?? {})).toHaveLength(2);
    expect(Object.keys(copy.metadata.annotations ?? {})).toEqual(['prepull.dev/content-hash']);
  });

  it('has the same hash in every namespace, and another one when the data changes', () => {
    const hash = (c: Secret) => c.metadata.annotations?.['prepull.dev/content-hash'];
    expect(hash(renderCopy(rc, 'a', DATA))).toBe(hash(renderCopy(rc, 'b', DATA)));
    expect(hash(renderCopy(rc, 'a', DATA))).not.toBe(hash(renderCopy(rc, 'a', `${DATA}x`)));
  });
});

describe('credentialLabelValue', () => {
  it('keeps names that fit a label value and shortens longer ones uniquely to 63 characters', () => {
    expect(credentialLabelValue('corp')).toBe('corp');
    const long = `${'a'.repeat(60)}.example.com`;
    const other = `${'a'.repeat(60)}.example.org`;
    expect(credentialLabelValue(long)).toHaveLength(63);
    expect(credentialLabelValue(long)).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
    expect(credentialLabelValue(long)).not.toBe(credentialLabelValue(other));
  });
});

describe('planCopy', () => {
  const desired = renderCopy(rc, 'a', DATA);
  const ours = (): Secret =>
    structuredClone({ ...desired, metadata: { ...desired.metadata, resourceVersion: '7', uid: 's-1' } });

  it('creates a missing copy and keeps a current one', () => {
    expect(planCopy(undefined, desired, 'uid-1')).toBe('create');
    expect(planCopy(ours(), desired, 'uid-1')).toBe('keep');
  });

  it("never touches a secret that is not this RegistryCredential's", () => {
    const users: Secret = { metadata: { name: 'regcred', namespace: 'a' }, type: 'Opaque', data: {} };
    expect(planCopy(users, desired, 'uid-1')).toBe('conflict');
    // A copy of another RegistryCredential (or of a deleted one of the same name) is not ours either.
    expect(planCopy(ours(), desired, 'uid-2')).toBe('conflict');
  });

  it('updates a copy whose data was edited, whose hash is old, or whose label was removed', () => {
    const edited = ours();
    edited.data = { '.dockerconfigjson': 'e30=' };
    expect(planCopy(edited, desired, 'uid-1')).toBe('update');
    const old = ours();
    old.metadata.annotations = { 'prepull.dev/content-hash': 'old' };
    expect(planCopy(old, desired, 'uid-1')).toBe('update');
    const extraKey = ours();
    extraKey.data = { ...extraKey.data, more: 'eA==' };
    expect(planCopy(extraKey, desired, 'uid-1')).toBe('update');
    const unlabelled = ours();
    unlabelled.metadata.labels = {};
    expect(planCopy(unlabelled, desired, 'uid-1')).toBe('update');
  });

  it('recreates a copy of ours with another type (type is immutable)', () => {
    const opaque = ours();
    opaque.type = 'Opaque';
    expect(planCopy(opaque, desired, 'uid-1')).toBe('recreate');
  });

  it('leaves labels and annotations that others added alone', () => {
    const decorated = ours();
    decorated.metadata.labels = { ...decorated.metadata.labels, extra: 'x' };
    decorated.metadata.annotations = { ...decorated.metadata.annotations, note: 'y' };
    expect(planCopy(decorated, desired, 'uid-1')).toBe('keep');
  });
});

/** Applies the operations the way the API server does, enough for these patches. */
function applyPatch(sa: ServiceAccount, ops: JsonPatchOperation[]): ServiceAccount {
  const out = structuredClone(sa) as unknown as Record<string, unknown>;
  for (const op of ops) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop()!;
    let parent = out;
    for (const part of parts) parent = parent[part] as Record<string, unknown>;
    if (op.op === 'test') expect(parent[last]).toEqual(op.value);
    else if (op.op === 'remove') delete parent[last];
    else parent[last] = op.value;
  }
  return out as unknown as ServiceAccount;
}

describe('serviceAccountPatch', () => {
  const sa = (imagePullSecrets?: string[], added?: string, annotations = true): ServiceAccount => ({
    metadata: {
      name: 'default',
      namespace: 'a',
      resourceVersion: '5',
      ...(annotations
        ? {
            annotations: {
              other: 'keep',
              ...(added ? { 'prepull.dev/added-image-pull-secrets': added } : {}),
            },
          }
        : {}),
    },
    ...(imagePullSecrets ? { imagePullSecrets: imagePullSecrets.map((name) => ({ name })) } : {}),
  });

  it('adds the secret after the entries others put there, marks it, and tests the resourceVersion first', () => {
    const ops = serviceAccountPatch(sa(['theirs']), { add: ['regcred'], remove: [] })!;
    expect(ops[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '5' });
    const after = applyPatch(sa(['theirs']), ops);
    expect(after.imagePullSecrets).toEqual([{ name: 'theirs' }, { name: 'regcred' }]);
    expect(after.metadata.annotations).toEqual({
      other: 'keep',
      'prepull.dev/added-image-pull-secrets': 'regcred',
    });
  });

  it('works on a ServiceAccount without imagePullSecrets or annotations', () => {
    const after = applyPatch(
      sa(undefined, undefined, false),
      serviceAccountPatch(sa(undefined, undefined, false), { add: ['regcred'], remove: [] })!,
    );
    expect(after.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(after.metadata.annotations).toEqual({ 'prepull.dev/added-image-pull-secrets': 'regcred' });
  });

  it('does nothing when the entry is there, and leaves an entry someone else added unmarked', () => {
    expect(serviceAccountPatch(sa(['regcred'], 'regcred'), { add: ['regcred'], remove: [] })).toBeUndefined();
    expect(serviceAccountPatch(sa(['regcred']), { add: ['regcred'], remove: [] })).toBeUndefined();
  });

  it('removes only entries it added, keeping the others', () => {
    const marked = sa(['theirs', 'regcred', 'other'], 'other,regcred');
    const after = applyPatch(marked, serviceAccountPatch(marked, { add: [], remove: ['regcred'] })!);
    expect(after.imagePullSecrets).toEqual([{ name: 'theirs' }, { name: 'other' }]);
    expect(after.metadata.annotations?.['prepull.dev/added-image-pull-secrets']).toBe('other');
    // The same name put there by someone else is never removed.
    expect(serviceAccountPatch(sa(['regcred']), { add: [], remove: ['regcred'] })).toBeUndefined();
  });

  it('drops the annotation with its last entry', () => {
    const marked = sa(['regcred'], 'regcred');
    const after = applyPatch(marked, serviceAccountPatch(marked, { add: [], remove: ['regcred'] })!);
    expect(after.imagePullSecrets).toEqual([]);
    expect(after.metadata.annotations).toEqual({ other: 'keep' });
  });

  it('puts back an entry of ours that someone removed, without marking it twice', () => {
    const removed = sa(['theirs'], 'regcred');
    const after = applyPatch(removed, serviceAccountPatch(removed, { add: ['regcred'], remove: [] })!);
    expect(after.imagePullSecrets).toEqual([{ name: 'theirs' }, { name: 'regcred' }]);
    expect(after.metadata.annotations?.['prepull.dev/added-image-pull-secrets']).toBe('regcred');
  });

  it('adds and removes in one patch (a renamed copy)', () => {
    const before = sa(['old'], 'old');
    const after = applyPatch(before, serviceAccountPatch(before, { add: ['new'], remove: ['old'] })!);
    expect(after.imagePullSecrets).toEqual([{ name: 'new' }]);
    expect(after.metadata.annotations?.['prepull.dev/added-image-pull-secrets']).toBe('new');
  });
});
