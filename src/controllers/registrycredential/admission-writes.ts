/**
 * Keeps a RegistryCredential's MutatingAdmissionPolicies and bindings as
 * rendered (admission.ts): server-side apply of what differs, deletion of
 * what is ours and no longer wanted, all read from two label-selected watch
 * caches, so a pass with nothing to change makes no request. I/O.
 */
import { Reason } from '../../api/conditions.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { Informer } from '../../kube/informer.ts';
import type { KubeObject } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import type { ConsistencyStore } from '../../runtime/consistency.ts';
import { classifyFailure, step } from '../../runtime/failure.ts';
import { owns, type Watch } from '../../runtime/object-controller.ts';
import { renderAdmissionObjects } from './admission.ts';
import { type AdmissionOutcome, planAdmissionWrites } from './admission-plan.ts';
import { credentialOwnerName, credentialOwnerUid } from './labels.ts';

/** How this operator handles admission policies, decided once at start-up. */
export type AdmissionMode =
  /** The cluster serves the API: these caches hold Prepull's policies and bindings. */
  | { state: 'enabled'; policies: Informer<KubeObject>; bindings: Informer<KubeObject> }
  /** The cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy. */
  | { state: 'unsupported' }
  /** Turned off by the operator's flag. */
  | { state: 'disabled' };

/** Policies and bindings by the UID of the RegistryCredential that owns them. */
export const ADMISSION_OWNER_INDEX = 'registrycredential-owner';

/** Adds the owner index to both caches; call once. */
export function addAdmissionIndexes(policies: Informer<KubeObject>, bindings: Informer<KubeObject>): void {
  for (const informer of [policies, bindings]) {
    informer.addIndex(ADMISSION_OWNER_INDEX, (obj) => {
      const uid = credentialOwnerUid(obj);
      return uid ? [uid] : [];
    });
  }
}

/** A change to one of our policies or bindings (an edit, a deletion) brings its RegistryCredential back. */
export function admissionWatches(mode: AdmissionMode): Watch[] {
  if (mode.state !== 'enabled') return [];
  return [
    owns(mode.policies, Resources.mutatingAdmissionPolicies, credentialOwnerName),
    owns(mode.bindings, Resources.mutatingAdmissionPolicyBindings, credentialOwnerName),
  ];
}

export interface AdmissionSyncRequest {
  rc: RegistryCredential;
  /** Namespaces that are targets through an allowed PrePulledImage request. */
  requestedBy: readonly string[];
  store: ConsistencyStore;
  fieldManager: string;
}

/**
 * Makes the cluster hold exactly the rendered policies and bindings of `rc`
 * (none without serviceAccounts) and says how that went. A refused write is
 * an outcome, not an exception: the copies are fine, and status says what
 * failed.
 */
export async function syncAdmission(
  client: KubeClient,
  mode: AdmissionMode,
  request: AdmissionSyncRequest,
): Promise<AdmissionOutcome> {
  const { rc, store, fieldManager } = request;
  const wanted = (rc.spec.serviceAccounts?.length ?? 0) > 0;
  if (mode.state !== 'enabled') return wanted ? { state: mode.state } : { state: 'none' };
  const uid = rc.metadata.uid ?? '';
  const desired = renderAdmissionObjects({ rc, requestedBy: request.requestedBy });
  const cachedOf = (informer: Informer<KubeObject>, names: Array<string | undefined>) => {
    const found = new Map(informer.byIndex(ADMISSION_OWNER_INDEX, uid).map((o) => [o.metadata.name, o]));
    for (const name of names) {
      const obj = name ? informer.get(name) : undefined;
      if (obj) found.set(name, obj);
    }
    return [...found.values()];
  };
  const cached = {
    policies: cachedOf(
      mode.policies,
      desired.policies.map((p) => p.metadata.name),
    ),
    bindings: cachedOf(
      mode.bindings,
      desired.bindings.map((b) => b.metadata.name),
    ),
  };
  const writes = planAdmissionWrites(desired, cached, uid);
  const typeOf = (obj: KubeObject) =>
    obj.kind === 'MutatingAdmissionPolicy'
      ? Resources.mutatingAdmissionPolicies
      : Resources.mutatingAdmissionPolicyBindings;
  const informerOf = (obj: KubeObject) =>
    obj.kind === 'MutatingAdmissionPolicy' ? mode.policies : mode.bindings;
  try {
    for (const obj of writes.apply) {
      const name = obj.metadata.name ?? '';
      const type = typeOf(obj);
      const before = informerOf(obj).get(name);
      // Our last apply is not in the cache yet: the cache cannot tell us to write again.
      if (store.isPending(type, name, before)) continue;
      await step(`applying ${type.kind} ${name}`, () =>
        client.apply(type, obj, { fieldManager, force: true }),
      );
      store.wrote(type, name, before?.metadata.resourceVersion);
    }
    // Bindings first: a binding whose policy is gone is ignored, but it is clutter all the same.
    for (const [type, names, informer] of [
      [Resources.mutatingAdmissionPolicyBindings, writes.delete.bindings, mode.bindings],
      [Resources.mutatingAdmissionPolicies, writes.delete.policies, mode.policies],
    ] as const) {
      for (const name of names) {
        // Only the very object the cache showed as ours: a namesake made meanwhile stays.
        const cachedObject = informer.get(name);
        if (store.isPending(type, name, cachedObject)) continue;
        const objectUid = cachedObject?.metadata.uid;
        await step(`deleting ${type.kind} ${name}`, () =>
          client.delete(type, name, undefined, objectUid ? { uid: objectUid } : {}),
        );
        store.wrote(type, name, cachedObject?.metadata.resourceVersion);
      }
    }
  } catch (err) {
    const failure = classifyFailure(err);
    const reason = failure.reason === Reason.Forbidden ? Reason.Forbidden : Reason.AdmissionPolicyFailed;
    return { state: 'failed', objects: desired, reason, message: failure.message };
  }
  return wanted ? { state: 'ready', objects: desired } : { state: 'none' };
}
