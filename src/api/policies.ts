/**
 * Admission policies Prepull ships beside its CRDs, as data: rules the CRD
 * schema cannot state because they depend on who makes the request.
 * `node scripts/generate-crds.ts` writes them to deploy/policies.yaml; a test
 * fails on drift. Pure.
 */
import { stringify } from 'yaml';
import { GROUP, VERSION } from './group.ts';

const labels = { 'app.kubernetes.io/name': 'prepull', 'app.kubernetes.io/part-of': 'prepull' };

/** Name of the policy (and its binding) that guards RegistryCredential sources. */
export const SOURCE_ACCESS_POLICY = 'prepull-registrycredential-source-access';

const secretRef = 'object.spec.source.secretRef';

/**
 * A RegistryCredential copies its source secret wherever it targets, with the
 * operator's rights, not its author's. So its author must be able to `get`
 * that secret already, or a RegistryCredential would be a way to read any
 * secret of the cluster. Checked when the object is made and whenever its
 * source changes; an edit that leaves the source alone needs no such right.
 */
export function sourceAccessPolicy(): object {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: SOURCE_ACCESS_POLICY, labels },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [GROUP],
            apiVersions: [VERSION],
            resources: ['registrycredentials'],
            operations: ['CREATE', 'UPDATE'],
          },
        ],
      },
      // Only when the source is new or changed.
      matchConditions: [
        {
          name: 'source-set-or-changed',
          expression: `request.operation == 'CREATE' || oldObject.spec.source.secretRef != ${secretRef}`,
        },
      ],
      validations: [
        {
          expression: `authorizer.group('').resource('secrets').namespace(${secretRef}.namespace).name(${secretRef}.name).check('get').allowed()`,
          messageExpression: `'the source secret ' + ${secretRef}.namespace + '/' + ${secretRef}.name + ' is not one that ' + request.userInfo.username + ' may get: a RegistryCredential may only copy a secret its author can already read'`,
          reason: 'Forbidden',
        },
      ],
    },
  };
}

/** Binds {@link sourceAccessPolicy} cluster-wide, denying what it refuses. */
export function sourceAccessPolicyBinding(): object {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: SOURCE_ACCESS_POLICY, labels },
    spec: { policyName: SOURCE_ACCESS_POLICY, validationActions: ['Deny'] },
  };
}

const HEADER = '# Generated from src/api/policies.ts by `node scripts/generate-crds.ts`. Do not edit.\n';

/** deploy/policies.yaml. */
export function renderPoliciesYaml(): string {
  return (
    HEADER +
    [sourceAccessPolicy(), sourceAccessPolicyBinding()]
      .map((o) => stringify(o, { lineWidth: 0 }))
      .join('---\n')
  );
}
