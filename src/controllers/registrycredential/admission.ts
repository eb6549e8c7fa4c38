/**
 * The MutatingAdmissionPolicies (admissionregistration.k8s.io/v1) and
 * bindings that add a RegistryCredential's copied secret to
 * `spec.imagePullSecrets` of every new pod in its target namespaces, when the
 * pod's ServiceAccount is one of `spec.serviceAccounts`. Pure: same input,
 * deep-equal output.
 *
 * Why at admission: the ServiceAccount admission plugin copies a
 * ServiceAccount's imagePullSecrets into a pod once, when the pod is created.
 * A pod created in the same apply as its namespace (a bare Pod, or a
 * Deployment's first pod) is usually created before the controller has
 * patched the ServiceAccount, and never gets the secret. The policy runs in
 * the API server itself, so no pod is created without it.
 *
 * Two shapes were checked on a real kube-apiserver 1.36 (see
 * HARNESS-NOTES.md) and only they are used:
 * - `imagePullSecrets` is atomic for server-side apply, so an
 *   ApplyConfiguration mutation of it is refused (silently, under
 *   failurePolicy Ignore): JSONPatch it is.
 * - A JSONPatch whose value is a list of typed objects makes the API server
 *   panic, and the pod create then fails despite Ignore. So one policy appends
 *   a typed object to an existing list, and another adds a whole list of
 *   plain maps where there is none; matchConditions keep them apart.
 */
import { createHash } from 'node:crypto';
import type { LabelSelector } from '../../api/common.ts';
import { API_VERSION } from '../../api/group.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeObject, OwnerReference } from '../../kube/objects.ts';
import { compareStrings } from '../../runtime/order.ts';
import { CREDENTIAL_LABEL, credentialLabelValue, MANAGED_BY_LABEL, MANAGER_NAME } from './labels.ts';

export const ADMISSION_API_VERSION = 'admissionregistration.k8s.io/v1';
/** The label the API server puts on every namespace: its name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** The annotation of a static pod's mirror: such pods may not reference secrets (NodeRestriction). */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
/** A pod without `spec.serviceAccountName` runs as this one. */
export const DEFAULT_SERVICE_ACCOUNT = 'default';

/** One match condition: a name and a CEL expression that must be true. */
export interface MatchCondition {
  name: string;
  expression: string;
}

/** The part of `admissionregistration.k8s.io/v1` MatchResources Prepull sets. */
export interface MatchResources {
  namespaceSelector?: LabelSelector;
  resourceRules?: Array<{
    apiGroups: string[];
    apiVersions: string[];
    operations: string[];
    resources: string[];
  }>;
}

/** A MutatingAdmissionPolicy as Prepull renders it. */
export interface MutatingAdmissionPolicy extends KubeObject {
  spec: {
    failurePolicy: 'Ignore' | 'Fail';
    reinvocationPolicy: 'Never' | 'IfNeeded';
    matchConstraints: MatchResources;
    matchConditions: MatchCondition[];
    mutations: Array<{ patchType: 'JSONPatch'; jsonPatch: { expression: string } }>;
  };
}

/** A MutatingAdmissionPolicyBinding as Prepull renders it. */
export interface MutatingAdmissionPolicyBinding extends KubeObject {
  spec: { policyName: string; matchResources: MatchResources };
}

/** Everything one RegistryCredential wants at admission. */
export interface AdmissionObjects {
  policies: MutatingAdmissionPolicy[];
  bindings: MutatingAdmissionPolicyBinding[];
}

/** What the rendering needs besides the RegistryCredential itself. */
export interface AdmissionInput {
  rc: RegistryCredential;
  /**
   * Namespaces that are targets because a PrePulledImage there asks for this
   * RegistryCredential and the RegistryCredential allows it: they are matched
   * by name, like `target.namespaces`.
   */
  requestedBy: Iterable<string>;
}

/**
 * The two policies (append to a list, or add the list) and their bindings:
 * one per policy for the namespace selector, one for the namespaces matched by
 * name; none for a RegistryCredential without `serviceAccounts`.
 */
export function renderAdmissionObjects(input: AdmissionInput): AdmissionObjects {
  const { rc } = input;
  const serviceAccounts = [...new Set(rc.spec.serviceAccounts ?? [])].sort(compareStrings);
  if (serviceAccounts.length === 0) return { policies: [], bindings: [] };
  const secretName = rc.spec.target.secretName;
  const selectors = bindingSelectors(input);
  const policies = [
    renderPolicy(
      rc,
      'append',
      serviceAccounts,
      [
        {
          name: 'pull-secrets-listed-without-this-one',
          expression: `has(object.spec.imagePullSecrets) && !object.spec.imagePullSecrets.exists(s, has(s.name) && s.name == ${celString(secretName)})`,
        },
      ],
      `[JSONPatch{op: "add", path: "/spec/imagePullSecrets/-", value: Object.spec.imagePullSecrets{name: ${celString(secretName)}}}]`,
    ),
    renderPolicy(
      rc,
      'create',
      serviceAccounts,
      [{ name: 'no-pull-secrets-listed', expression: '!has(object.spec.imagePullSecrets)' }],
      `[JSONPatch{op: "add", path: "/spec/imagePullSecrets", value: [{"name": ${celString(secretName)}}]}]`,
    ),
  ];
  const bindings = policies.flatMap(({ kind, policy }) =>
    selectors.map(({ suffix, namespaceSelector }) =>
      binding(rc, policy, `${kind}-${suffix}`, namespaceSelector),
    ),
  );
  return { policies: policies.map((p) => p.policy), bindings };
}

/** The name of the policy or binding `suffix` of a RegistryCredential, within a DNS subdomain's 253 characters. */
export function admissionObjectName(rcName: string, suffix: string): string {
  const base = `prepull-rc-${rcName}`;
  const max = 253 - suffix.length - 1;
  if (base.length <= max) return `${base}-${suffix}`;
  const hash = createHash('sha256').update(rcName).digest('hex').slice(0, 16);
  return `${base.slice(0, max - hash.length - 1)}-${hash}-${suffix}`;
}

/** The label selector of every policy and binding of one RegistryCredential: what the controller lists and prunes. */
export function admissionObjectsSelector(rcName: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGER_NAME},${CREDENTIAL_LABEL}=${credentialLabelValue(rcName)}`;
}

interface BindingSelector {
  suffix: 'selector' | 'namespaces';
  namespaceSelector: LabelSelector;
}

/**
 * One label selector cannot say "matches the selector or is one of these
 * names", so there is one binding for each half of the union. Exclusions (and
 * the source's own namespace, when the copy would be the source) are a NotIn
 * on the selector half and left out of the names.
 */
function bindingSelectors({ rc, requestedBy }: AdmissionInput): BindingSelector[] {
  const { target, source } = rc.spec;
  const excluded = new Set(target.excludeNamespaces ?? []);
  if (target.secretName === source.secretRef.name) excluded.add(source.secretRef.namespace);
  const out: BindingSelector[] = [];
  if (target.namespaceSelector) {
    const exclusions = [...excluded].sort(compareStrings);
    out.push({
      suffix: 'selector',
      namespaceSelector: {
        ...(target.namespaceSelector.matchLabels
          ? { matchLabels: target.namespaceSelector.matchLabels }
          : {}),
        ...(target.namespaceSelector.matchExpressions || exclusions.length > 0
          ? {
              matchExpressions: [
                ...(target.namespaceSelector.matchExpressions ?? []),
                ...(exclusions.length > 0
                  ? [{ key: NAMESPACE_NAME_LABEL, operator: 'NotIn' as const, values: exclusions }]
                  : []),
              ],
            }
          : {}),
      },
    });
  }
  const named = [...new Set([...(target.namespaces ?? []), ...requestedBy])]
    .filter((name) => !excluded.has(name))
    .sort(compareStrings);
  if (named.length > 0) {
    out.push({
      suffix: 'namespaces',
      namespaceSelector: {
        matchExpressions: [{ key: NAMESPACE_NAME_LABEL, operator: 'In', values: named }],
      },
    });
  }
  return out;
}

type PolicyKind = 'append' | 'create';

function renderPolicy(
  rc: RegistryCredential,
  kind: PolicyKind,
  serviceAccounts: string[],
  listConditions: MatchCondition[],
  patch: string,
): { kind: PolicyKind; policy: MutatingAdmissionPolicy } {
  const policy: MutatingAdmissionPolicy = {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'MutatingAdmissionPolicy',
    metadata: admissionMetadata(rc, admissionObjectName(rc.metadata.name ?? '', kind)),
    spec: {
      // An error here must never block a pod; the cluster test proves the
      // expressions themselves work.
      failurePolicy: 'Ignore',
      // Another policy (this one's twin, another RegistryCredential's) may
      // add the list after this one looked: look again, then.
      reinvocationPolicy: 'IfNeeded',
      matchConstraints: {
        resourceRules: [
          { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
        ],
      },
      matchConditions: [
        {
          name: 'not-a-mirror-pod',
          expression: `!has(object.metadata.annotations) || !(${celString(MIRROR_POD_ANNOTATION)} in object.metadata.annotations)`,
        },
        {
          name: 'service-account-listed',
          expression: `(has(object.spec.serviceAccountName) && object.spec.serviceAccountName != "" ? object.spec.serviceAccountName : ${celString(DEFAULT_SERVICE_ACCOUNT)}) in [${serviceAccounts.map(celString).join(', ')}]`,
        },
        ...listConditions,
      ],
      mutations: [{ patchType: 'JSONPatch', jsonPatch: { expression: patch } }],
    },
  };
  return { kind, policy };
}

function binding(
  rc: RegistryCredential,
  bound: MutatingAdmissionPolicy,
  suffix: string,
  namespaceSelector: LabelSelector,
): MutatingAdmissionPolicyBinding {
  return {
    apiVersion: ADMISSION_API_VERSION,
    kind: 'MutatingAdmissionPolicyBinding',
    metadata: admissionMetadata(rc, admissionObjectName(rc.metadata.name ?? '', suffix)),
    spec: { policyName: bound.metadata.name ?? '', matchResources: { namespaceSelector } },
  };
}

function admissionMetadata(rc: RegistryCredential, name: string): KubeObject['metadata'] {
  const owner: OwnerReference = {
    apiVersion: API_VERSION,
    kind: 'RegistryCredential',
    name: rc.metadata.name ?? '',
    uid: rc.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
  return {
    name,
    labels: {
      [MANAGED_BY_LABEL]: MANAGER_NAME,
      [CREDENTIAL_LABEL]: credentialLabelValue(rc.metadata.name ?? ''),
    },
    ownerReferences: [owner],
  };
}

/**
 * A CEL string literal. The names that go in are DNS subdomains (checked by
 * the CRD schema), but quoting through JSON keeps any character harmless.
 */
function celString(value: string): string {
  return JSON.stringify(value);
}
