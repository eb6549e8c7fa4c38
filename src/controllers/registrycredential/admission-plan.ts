/**
 * What the controller does with a RegistryCredential's admission policies
 * and bindings, and what its status says about them. Pure: it compares the
 * rendered objects (admission.ts) with what the watch cache holds, and turns
 * the outcome into `status.admission` and the `AdmissionPolicy` condition.
 */
import { isDeepStrictEqual } from 'node:util';
import { Reason } from '../../api/conditions.ts';
import type { RegistryCredentialStatus } from '../../api/registrycredential.ts';
import type { KubeObject } from '../../kube/objects.ts';
import type { NewCondition } from '../../runtime/conditions.ts';
import { compareStrings } from '../../runtime/order.ts';
import type {
  AdmissionObjects,
  MutatingAdmissionPolicy,
  MutatingAdmissionPolicyBinding,
} from './admission.ts';
import { credentialOwnerUid } from './labels.ts';

/** Condition type on a RegistryCredential with `serviceAccounts`: are new pods given the secret at admission? */
export const ADMISSION_CONDITION = 'AdmissionPolicy';

/** The writes that make the cluster hold exactly the rendered objects. */
export interface AdmissionWrites {
  /** Missing or different: server-side apply them (policies before the bindings that name them). */
  apply: Array<MutatingAdmissionPolicy | MutatingAdmissionPolicyBinding>;
  /** Ours and no longer rendered: delete them (bindings before the policies they name). */
  delete: {
    policies: string[];
    bindings: string[];
  };
}

/** The policies and bindings the cache holds with this RegistryCredential's label. */
export interface CachedAdmissionObjects {
  policies: KubeObject[];
  bindings: KubeObject[];
}

/**
 * Compares rendered with cached. An object is rewritten when a field Prepull
 * renders differs (fields the API server defaults are left out of the
 * comparison); one is deleted only when this RegistryCredential (by UID)
 * owns it, so the leftovers of a deleted namesake are left to the garbage
 * collector.
 */
export function planAdmissionWrites(
  desired: AdmissionObjects,
  cached: CachedAdmissionObjects,
  ownerUid: string,
): AdmissionWrites {
  const byName = (list: KubeObject[]) => new Map(list.map((o) => [o.metadata.name ?? '', o]));
  const policies = byName(cached.policies);
  const bindings = byName(cached.bindings);
  const stale = (have: Map<string, KubeObject>, want: KubeObject[]) => {
    const wanted = new Set(want.map((o) => o.metadata.name));
    return [...have.values()]
      .filter((o) => !wanted.has(o.metadata.name) && credentialOwnerUid(o) === ownerUid)
      .map((o) => o.metadata.name ?? '')
      .sort(compareStrings);
  };
  return {
    apply: [
      ...desired.policies.filter((p) => !holds(policies.get(p.metadata.name ?? ''), p)),
      ...desired.bindings.filter((b) => !holds(bindings.get(b.metadata.name ?? ''), b)),
    ],
    delete: { policies: stale(policies, desired.policies), bindings: stale(bindings, desired.bindings) },
  };
}

/** Whether `existing` has every field of `rendered` with the same value. */
function holds(existing: KubeObject | undefined, rendered: KubeObject): boolean {
  if (!existing) return false;
  const labels = rendered.metadata.labels ?? {};
  if (Object.entries(labels).some(([k, v]) => existing.metadata.labels?.[k] !== v)) return false;
  if (!isDeepStrictEqual(existing.metadata.ownerReferences ?? [], rendered.metadata.ownerReferences ?? [])) {
    return false;
  }
  return contains(existing.spec, rendered.spec);
}

/**
 * Deep "has at least": objects may carry more keys (API server defaults such
 * as matchPolicy or an empty objectSelector), lists must match item by item.
 */
function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return (
      Array.isArray(have) && have.length === want.length && want.every((item, i) => contains(have[i], item))
    );
  }
  if (typeof want === 'object' && want !== null) {
    if (typeof have !== 'object' || have === null || Array.isArray(have)) return false;
    const record = have as Record<string, unknown>;
    return Object.entries(want).every(([k, v]) => contains(record[k], v));
  }
  return have === want;
}

/** How the admission objects fared in this pass. */
export type AdmissionOutcome =
  /** No serviceAccounts: no policy wanted, none left. */
  | { state: 'none' }
  /** The cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy. */
  | { state: 'unsupported' }
  /** The operator was started with the policies turned off. */
  | { state: 'disabled' }
  | { state: 'ready'; objects: AdmissionObjects }
  /** A write was refused; `reason` is Forbidden or AdmissionPolicyFailed, the message says by whom and why. */
  | { state: 'failed'; objects: AdmissionObjects; reason: string; message: string };

/** `status.admission` and the AdmissionPolicy condition (undefined: remove it) for an outcome. */
export function admissionStatus(
  outcome: AdmissionOutcome,
  secretName: string,
  serviceAccounts: readonly string[],
  generation: number,
): { admission?: RegistryCredentialStatus['admission']; condition?: NewCondition } {
  const condition = (status: 'True' | 'False', reason: string, message: string): NewCondition => ({
    type: ADMISSION_CONDITION,
    status,
    reason,
    message,
    observedGeneration: generation,
  });
  const accounts = [...serviceAccounts].sort(compareStrings).join(', ');
  const missed = `a pod created before its ServiceAccount lists ${secretName} does not get it (delete the pod to have it recreated)`;
  switch (outcome.state) {
    case 'none':
      return {};
    case 'unsupported':
      return {
        condition: condition(
          'False',
          Reason.AdmissionPolicyUnsupported,
          `the cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36 and later): ${missed}`,
        ),
      };
    case 'disabled':
      return {
        condition: condition(
          'False',
          Reason.AdmissionPolicyDisabled,
          `the operator runs with admission policies turned off: ${missed}`,
        ),
      };
    case 'ready':
    case 'failed': {
      const admission = {
        policies: outcome.objects.policies.map((p) => p.metadata.name ?? ''),
        bindings: outcome.objects.bindings.map((b) => b.metadata.name ?? ''),
      };
      if (outcome.state === 'failed') {
        return { admission, condition: condition('False', outcome.reason, `${outcome.message}: ${missed}`) };
      }
      return {
        admission,
        condition: condition(
          'True',
          Reason.AdmissionPolicyReady,
          `new pods of ServiceAccounts ${accounts} in target namespaces get ${secretName} at admission (MutatingAdmissionPolicies ${admission.policies.join(', ')})`,
        ),
      };
    }
  }
}
