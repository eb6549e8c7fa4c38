import { describe, expect, it } from 'vitest';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeObject } from '../../kube/objects.ts';
import { renderAdmissionObjects } from './admission.ts';
import { ADMISSION_CONDITION, admissionStatus, planAdmissionWrites } from './admission-plan.ts';

const rc: RegistryCredential = {
  apiVersion: 'prepull.dev/v1alpha1',
  kind: 'RegistryCredential',
  metadata: { name: 'corp', uid: 'uid-1', generation: 3 },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'corp-pull', namespaceSelector: { matchLabels: { a: 'b' } } },
    serviceAccounts: ['default'],
  },
};
const desired = renderAdmissionObjects({ rc, requestedBy: [] });

/** What the API server returns for a rendered object: defaults added, metadata grown. */
function asServed(object: KubeObject): KubeObject {
  const served = structuredClone(object) as KubeObject & { spec: Record<string, unknown> };
  served.metadata = { ...served.metadata, uid: 'x', resourceVersion: '7', generation: 1 };
  if (served.kind === 'MutatingAdmissionPolicy') {
    const constraints = served.spec.matchConstraints as Record<string, unknown>;
    constraints.matchPolicy = 'Equivalent';
    constraints.namespaceSelector = {};
    constraints.objectSelector = {};
    (constraints.resourceRules as Array<Record<string, unknown>>)[0]!.scope = '*';
  } else {
    (served.spec.matchResources as Record<string, unknown>).objectSelector = {};
    (served.spec.matchResources as Record<string, unknown>).matchPolicy = 'Equivalent';
  }
  return served;
}

describe('planAdmissionWrites', () => {
  it('applies everything when nothing is there, policies first', () => {
    const writes = planAdmissionWrites(desired, { policies: [], bindings: [] }, 'uid-1');
    expect(writes.apply.map((o) => o.kind)).toEqual([
      'MutatingAdmissionPolicy',
      'MutatingAdmissionPolicy',
      'MutatingAdmissionPolicyBinding',
      'MutatingAdmissionPolicyBinding',
    ]);
    expect(writes.delete).toEqual({ policies: [], bindings: [] });
  });

  it('writes nothing when the cache holds the rendered objects with server defaults', () => {
    const cached = { policies: desired.policies.map(asServed), bindings: desired.bindings.map(asServed) };
    expect(planAdmissionWrites(desired, cached, 'uid-1')).toEqual({
      apply: [],
      delete: { policies: [], bindings: [] },
    });
  });

  it('rewrites an object whose rendered field, label or owner was changed', () => {
    const edited = desired.policies.map(asServed) as Array<KubeObject & { spec: { failurePolicy: string } }>;
    edited[0]!.spec.failurePolicy = 'Fail';
    const unlabelled = desired.bindings.map(asServed);
    unlabelled[1]!.metadata.labels = {};
    const writes = planAdmissionWrites(desired, { policies: edited, bindings: unlabelled }, 'uid-1');
    expect(writes.apply.map((o) => o.metadata.name)).toEqual([
      'prepull-rc-corp-append',
      'prepull-rc-corp-create-selector',
    ]);
    const reowned = desired.policies.map(asServed);
    reowned[1]!.metadata.ownerReferences = [{ ...reowned[1]!.metadata.ownerReferences![0]!, uid: 'old' }];
    expect(
      planAdmissionWrites(desired, { policies: reowned, bindings: desired.bindings.map(asServed) }, 'uid-1')
        .apply,
    ).toHaveLength(1);
  });

  it('deletes what is ours and no longer rendered, and leaves a namesake predecessor to the garbage collector', () => {
    const namesOnly = renderAdmissionObjects({
      rc: { ...rc, spec: { ...rc.spec, target: { secretName: 'corp-pull', namespaces: ['ci'] } } },
      requestedBy: [],
    });
    const cached = { policies: desired.policies.map(asServed), bindings: desired.bindings.map(asServed) };
    const writes = planAdmissionWrites(namesOnly, cached, 'uid-1');
    expect(writes.apply.map((o) => o.metadata.name)).toEqual([
      'prepull-rc-corp-append-namespaces',
      'prepull-rc-corp-create-namespaces',
    ]);
    expect(writes.delete).toEqual({
      policies: [],
      bindings: ['prepull-rc-corp-append-selector', 'prepull-rc-corp-create-selector'],
    });
    // Without serviceAccounts: everything of ours goes.
    expect(planAdmissionWrites({ policies: [], bindings: [] }, cached, 'uid-1').delete).toEqual({
      policies: ['prepull-rc-corp-append', 'prepull-rc-corp-create'],
      bindings: ['prepull-rc-corp-append-selector', 'prepull-rc-corp-create-selector'],
    });
    expect(planAdmissionWrites({ policies: [], bindings: [] }, cached, 'another-uid').delete).toEqual({
      policies: [],
      bindings: [],
    });
  });
});

describe('admissionStatus', () => {
  it('says nothing without serviceAccounts', () => {
    expect(admissionStatus({ state: 'none' }, 'corp-pull', [], 3)).toEqual({});
  });

  it('lists the objects and says which pods get which secret when they are in place', () => {
    const out = admissionStatus({ state: 'ready', objects: desired }, 'corp-pull', ['default', 'builder'], 3);
    expect(out.admission).toEqual({
      policies: ['prepull-rc-corp-append', 'prepull-rc-corp-create'],
      bindings: ['prepull-rc-corp-append-selector', 'prepull-rc-corp-create-selector'],
    });
    expect(out.condition).toEqual({
      type: ADMISSION_CONDITION,
      status: 'True',
      reason: 'AdmissionPolicyReady',
      observedGeneration: 3,
      message:
        'new pods of ServiceAccounts builder, default in target namespaces get corp-pull at admission (MutatingAdmissionPolicies prepull-rc-corp-append, prepull-rc-corp-create)',
    });
  });

  it('says clearly when the cluster does not serve the API, and what that means', () => {
    const out = admissionStatus({ state: 'unsupported' }, 'corp-pull', ['default'], 3);
    expect(out.admission).toBeUndefined();
    expect(out.condition).toMatchObject({ status: 'False', reason: 'AdmissionPolicyUnsupported' });
    expect(out.condition?.message).toContain(
      'the cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy',
    );
    expect(out.condition?.message).toContain(
      'a pod created before its ServiceAccount lists corp-pull does not get it',
    );
  });

  it('reports a refused write and the operator flag that turns the policies off', () => {
    const failed = admissionStatus(
      {
        state: 'failed',
        objects: desired,
        reason: 'Forbidden',
        message: 'applying prepull-rc-corp-append: 403',
      },
      'corp-pull',
      ['default'],
      3,
    );
    expect(failed.condition).toMatchObject({ status: 'False', reason: 'Forbidden' });
    expect(failed.condition?.message).toMatch(/^applying prepull-rc-corp-append: 403: a pod created before/);
    expect(admissionStatus({ state: 'disabled' }, 'corp-pull', ['default'], 3).condition).toMatchObject({
      status: 'False',
      reason: 'AdmissionPolicyDisabled',
    });
  });
});
