import { describe, expect, it } from 'vitest';
import type { RegistryCredential, RegistryCredentialSpec } from '../../api/registrycredential.ts';
import { admissionObjectName, admissionObjectsSelector, renderAdmissionObjects } from './admission.ts';

function rc(spec: Partial<RegistryCredentialSpec>, name = 'corp'): RegistryCredential {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryCredential',
    metadata: { name, uid: 'uid-1', generation: 1 },
    spec: {
      source: { secretRef: { namespace: 'vault', name: 'pull' } },
      target: { secretName: 'corp-pull', namespaceSelector: { matchLabels: { pulls: 'corp' } } },
      serviceAccounts: ['default', 'builder'],
      ...spec,
    },
  };
}

const render = (r: RegistryCredential, requestedBy: string[] = []) =>
  renderAdmissionObjects({ rc: r, requestedBy });

describe('renderAdmissionObjects', () => {
  it('renders nothing without serviceAccounts', () => {
    expect(render(rc({ serviceAccounts: undefined }))).toEqual({ policies: [], bindings: [] });
    expect(render(rc({ serviceAccounts: [] }))).toEqual({ policies: [], bindings: [] });
  });

  it("renders two policies owned by the RegistryCredential and labelled as Prepull's", () => {
    const { policies } = render(rc({}));
    expect(policies.map((p) => p.metadata.name)).toEqual([
      'prepull-rc-corp-append',
      'prepull-rc-corp-create',
    ]);
    for (const p of policies) {
      expect(p.apiVersion).toBe('admissionregistration.k8s.io/v1');
      expect(p.kind).toBe('MutatingAdmissionPolicy');
      expect(p.metadata.labels).toEqual({
        'app.kubernetes.io/managed-by': 'prepull',
        'prepull.dev/registrycredential': 'corp',
      });
      expect(p.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'prepull.dev/v1alpha1',
          kind: 'RegistryCredential',
          name: 'corp',
          uid: 'uid-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
      expect(p.spec.failurePolicy).toBe('Ignore');
      expect(p.spec.reinvocationPolicy).toBe('IfNeeded');
      expect(p.spec.matchConstraints).toEqual({
        resourceRules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        ],
      });
    }
  });

  it('uses exactly the two JSONPatch forms checked on the API server, split by matchConditions', () => {
    const [append, create] = render(rc({})).policies;
    expect(append?.spec.mutations).toEqual([
      {
        patchType: 'JSONPatch',
        jsonPatch: {
          expression:
            '[JSONPatch{op: "add", path: "/spec/imagePullSecrets/-", value: Object.spec.imagePullSecrets{name: "corp-pull"}}]',
        },
      },
    ]);
    expect(create?.spec.mutations).toEqual([
      {
        patchType: 'JSONPatch',
        jsonPatch: {
          expression:
            '[JSONPatch{op: "add", path: "/spec/imagePullSecrets", value: [{"name": "corp-pull"}]}]',
        },
      },
    ]);
    const conditions = (i: 0 | 1) =>
      Object.fromEntries(
        (i === 0 ? append : create)!.spec.matchConditions.map((c) => [c.name, c.expression]),
      );
    expect(conditions(0)['pull-secrets-listed-without-this-one']).toBe(
      'has(object.spec.imagePullSecrets) && !object.spec.imagePullSecrets.exists(s, has(s.name) && s.name == "corp-pull")',
    );
    expect(conditions(1)['no-pull-secrets-listed']).toBe('!has(object.spec.imagePullSecrets)');
    // The typed-list form that panics the API server appears nowhere.
    for (const p of [append, create]) {
      expect(JSON.stringify(p)).not.toContain('[Object.');
      expect(JSON.stringify(p)).not.toContain('ApplyConfiguration');
    }
  });

  it('matches only the listed ServiceAccounts (default when unset), sorted, and never mirror pods', () => {
    for (const p of render(rc({ serviceAccounts: ['default', 'builder', 'default'] })).policies) {
      const byName = Object.fromEntries(p.spec.matchConditions.map((c) => [c.name, c.expression]));
      expect(byName['service-account-listed']).toBe(
        '(has(object.spec.serviceAccountName) && object.spec.serviceAccountName != "" ? object.spec.serviceAccountName : "default") in ["builder", "default"]',
      );
      expect(byName['not-a-mirror-pod']).toBe(
        '!has(object.metadata.annotations) || !("kubernetes.io/config.mirror" in object.metadata.annotations)',
      );
    }
  });

  it('binds each policy to the namespace selector, minus the exclusions', () => {
    const { bindings } = render(
      rc({
        target: {
          secretName: 'corp-pull',
          namespaceSelector: {
            matchLabels: { pulls: 'corp' },
            matchExpressions: [{ key: 'tier', operator: 'Exists' }],
          },
          excludeNamespaces: ['kube-system', 'b-ns'],
        },
      }),
    );
    expect(bindings.map((b) => [b.metadata.name, b.spec.policyName])).toEqual([
      ['prepull-rc-corp-append-selector', 'prepull-rc-corp-append'],
      ['prepull-rc-corp-create-selector', 'prepull-rc-corp-create'],
    ]);
    for (const b of bindings) {
      expect(b.apiVersion).toBe('admissionregistration.k8s.io/v1');
      expect(b.kind).toBe('MutatingAdmissionPolicyBinding');
      expect(b.metadata.ownerReferences?.[0]?.uid).toBe('uid-1');
      expect(b.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('prepull');
      expect(b.spec.matchResources).toEqual({
        namespaceSelector: {
          matchLabels: { pulls: 'corp' },
          matchExpressions: [
            { key: 'tier', operator: 'Exists' },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['b-ns', 'kube-system'] },
          ],
        },
      });
    }
  });

  it('passes a selector without exclusions through as it is', () => {
    const [b] = render(rc({})).bindings;
    expect(b?.spec.matchResources).toEqual({ namespaceSelector: { matchLabels: { pulls: 'corp' } } });
  });

  it('binds listed and requesting namespaces by name, leaving out the excluded ones', () => {
    const { bindings } = render(
      rc({
        target: { secretName: 'corp-pull', namespaces: ['ci', 'a', 'gone'], excludeNamespaces: ['gone'] },
      }),
      ['team-x', 'a'],
    );
    expect(bindings.map((b) => b.metadata.name)).toEqual([
      'prepull-rc-corp-append-namespaces',
      'prepull-rc-corp-create-namespaces',
    ]);
    for (const b of bindings) {
      expect(b.spec.matchResources).toEqual({
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['a', 'ci', 'team-x'] },
          ],
        },
      });
    }
  });

  it('has a binding per policy for each half when both a selector and names are given', () => {
    const { bindings } = render(
      rc({ target: { secretName: 'corp-pull', namespaceSelector: {}, namespaces: ['ci'] } }),
    );
    expect(bindings.map((b) => b.metadata.name)).toEqual([
      'prepull-rc-corp-append-selector',
      'prepull-rc-corp-append-namespaces',
      'prepull-rc-corp-create-selector',
      'prepull-rc-corp-create-namespaces',
    ]);
    // An empty selector matches every namespace, as the target's does.
    expect(bindings[0]?.spec.matchResources).toEqual({ namespaceSelector: {} });
  });

  it("leaves out the source's namespace when the copy would have the source's name", () => {
    const { bindings } = render(
      rc({
        target: { secretName: 'pull', namespaceSelector: { matchLabels: { a: 'b' } }, namespaces: ['vault'] },
      }),
    );
    expect(bindings.map((b) => b.metadata.name)).toEqual([
      'prepull-rc-corp-append-selector',
      'prepull-rc-corp-create-selector',
    ]);
    expect(bindings[0]?.spec.matchResources.namespaceSelector?.matchExpressions).toEqual([
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['vault'] },
    ]);
  });

  it('is deterministic', () => {
    const r = rc({ target: { secretName: 'x', namespaces: ['b', 'a'] } });
    expect(render(r, ['d', 'c'])).toEqual(render(r, ['c', 'd']));
  });
});

describe('admissionObjectName', () => {
  it('keeps names within 253 characters, distinct for distinct long names', () => {
    const long = `${'a'.repeat(240)}.example.com`;
    const other = `${'a'.repeat(240)}.example.org`;
    const name = admissionObjectName(long, 'create-namespaces');
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-create-namespaces$/);
    expect(name).not.toBe(admissionObjectName(other, 'create-namespaces'));
  });
});

describe('admissionObjectsSelector', () => {
  it("selects one RegistryCredential's objects by Prepull's labels", () => {
    expect(admissionObjectsSelector('corp')).toBe(
      'app.kubernetes.io/managed-by=prepull,prepull.dev/registrycredential=corp',
    );
  });
});
