/**
 * The writes one pass needs, computed from the caches: per namespace, what to
 * do with the copy, which ServiceAccounts to patch, and which stale copies of
 * ours to delete. Pure; the controller only carries the plan out, so a
 * namespace that is already right costs no request at all.
 */
import type { RegistryCredential } from '../../api/registrycredential.ts';
import { keyOf, type Secret, type ServiceAccount } from '../../kube/objects.ts';
import { Resources, type ResourceType } from '../../kube/resources.ts';
import { compareStrings } from '../../runtime/order.ts';
import { type JsonPatchOperation, planCopy, renderCopy, serviceAccountPatch } from './render.ts';

/** What the planner reads; the controller answers from its informers. */
export interface PlanInput {
  rc: RegistryCredential;
  /** Namespaces that get the copy (see selectTargetNamespaces). */
  targets: readonly string[];
  /** base64 `.dockerconfigjson`, from readSource. */
  dockerConfigJson: string;
  /** The secret with the copy's name in `namespace`, whoever owns it. */
  secretAt(namespace: string): Secret | undefined;
  /** Every copy the RegistryCredential owns, of any name, in any namespace. */
  ownedCopies: readonly Secret[];
  /** ServiceAccounts of `namespace` to look at: those in spec.serviceAccounts and those Prepull marked. */
  serviceAccountsIn(namespace: string): readonly ServiceAccount[];
  isTerminating(namespace: string): boolean;
  /** Whether our last write of an object (a secret or a ServiceAccount) has not reached the cache yet. */
  isPending(
    type: ResourceType,
    key: string,
    cached: { metadata: { resourceVersion?: string } } | undefined,
  ): boolean;
}

/** A ServiceAccount and the JSON patch it needs. */
export interface ServiceAccountWork {
  sa: ServiceAccount;
  ops: JsonPatchOperation[];
}

/** The work in one namespace. */
export interface NamespaceWork {
  namespace: string;
  /** A target namespace: counted in desired and synced. */
  target: boolean;
  /** Write of the copy; absent when it is current or our write of it is still on its way. */
  copy?: { action: 'create' | 'update' | 'recreate'; desired: Secret; existing?: Secret };
  /** Someone else's secret has the copy's name here: nothing is written. */
  conflict: boolean;
  /** Patches, run after the copy exists (so no pod ever names a missing secret for long). */
  serviceAccounts: ServiceAccountWork[];
  /** Copies of ours that no longer belong here, deleted after their ServiceAccount entries. */
  deletions: Secret[];
}

/** Whether a namespace's work needs any request. */
export function hasWrites(work: NamespaceWork): boolean {
  return work.copy !== undefined || work.serviceAccounts.length > 0 || work.deletions.length > 0;
}

/**
 * One entry per target namespace (so it can be counted) and per namespace
 * holding a stale copy of ours, sorted by namespace.
 */
export function planSync(input: PlanInput): NamespaceWork[] {
  const { rc } = input;
  const secretName = rc.spec.target.secretName;
  const uid = rc.metadata.uid ?? '';
  const wanted = new Set(rc.spec.serviceAccounts ?? []);
  const works = new Map<string, NamespaceWork>();
  const workIn = (namespace: string, target: boolean): NamespaceWork => {
    let work = works.get(namespace);
    if (!work) {
      work = { namespace, target, conflict: false, serviceAccounts: [], deletions: [] };
      works.set(namespace, work);
    }
    return work;
  };

  for (const namespace of input.targets) {
    const work = workIn(namespace, true);
    const desired = renderCopy(rc, namespace, input.dockerConfigJson);
    const existing = input.secretAt(namespace);
    if (input.isPending(Resources.secrets, `${namespace}/${secretName}`, existing)) continue;
    const action = planCopy(existing, desired, uid);
    if (action === 'conflict') work.conflict = true;
    else if (action !== 'keep') work.copy = { action, desired, ...(existing ? { existing } : {}) };
  }

  const targets = new Set(input.targets);
  for (const copy of input.ownedCopies) {
    const namespace = copy.metadata.namespace ?? '';
    // A terminating namespace deletes its own secrets.
    if (input.isTerminating(namespace)) continue;
    if (targets.has(namespace) && copy.metadata.name === secretName) continue;
    if (input.isPending(Resources.secrets, keyOf(copy), copy)) continue;
    workIn(namespace, false).deletions.push(copy);
  }

  for (const work of works.values()) {
    const keep = work.target && !work.conflict;
    const stale = work.deletions.map((copy) => copy.metadata.name ?? '');
    for (const sa of input.serviceAccountsIn(work.namespace)) {
      if (sa.metadata.deletionTimestamp) continue;
      if (input.isPending(Resources.serviceAccounts, keyOf(sa), sa)) continue;
      const name = sa.metadata.name ?? '';
      // In a conflicting namespace the secret of that name is someone else's:
      // its ServiceAccount entries are left alone too.
      const add = keep && wanted.has(name) ? [secretName] : [];
      const remove = keep && !wanted.has(name) ? [...stale, secretName] : stale;
      const ops = serviceAccountPatch(sa, { add, remove });
      if (ops) work.serviceAccounts.push({ sa, ops });
    }
  }

  return [...works.values()].sort((a, b) => compareStrings(a.namespace, b.namespace));
}

/** What cleanup on deletion reads; a subset of {@link PlanInput}. */
export type CleanupInput = Pick<
  PlanInput,
  'targets' | 'secretAt' | 'ownedCopies' | 'serviceAccountsIn' | 'isTerminating' | 'isPending'
> & { secretName: string; uid: string };

/**
 * The ServiceAccount patches that take a deleted RegistryCredential's
 * entries off again, everywhere it may have put them: where it owns a copy,
 * and (the garbage collector may already have taken copies with a foreground
 * deletion) in its target namespaces unless the secret there is someone
 * else's.
 */
export function planCleanup(
  input: CleanupInput,
): Array<{ namespace: string; serviceAccounts: ServiceAccountWork[] }> {
  const names = new Map<string, Set<string>>();
  const nameIn = (namespace: string, name: string) => {
    const set = names.get(namespace) ?? new Set<string>();
    set.add(name);
    names.set(namespace, set);
  };
  for (const copy of input.ownedCopies) nameIn(copy.metadata.namespace ?? '', copy.metadata.name ?? '');
  for (const namespace of input.targets) {
    const existing = input.secretAt(namespace);
    if (!existing || existing.metadata.ownerReferences?.some((r) => r.uid === input.uid)) {
      nameIn(namespace, input.secretName);
    }
  }
  const out: Array<{ namespace: string; serviceAccounts: ServiceAccountWork[] }> = [];
  for (const [namespace, remove] of names) {
    if (input.isTerminating(namespace)) continue;
    const serviceAccounts: ServiceAccountWork[] = [];
    for (const sa of input.serviceAccountsIn(namespace)) {
      if (input.isPending(Resources.serviceAccounts, keyOf(sa), sa)) continue;
      const ops = serviceAccountPatch(sa, { add: [], remove: [...remove] });
      if (ops) serviceAccounts.push({ sa, ops });
    }
    if (serviceAccounts.length > 0) out.push({ namespace, serviceAccounts });
  }
  return out.sort((a, b) => compareStrings(a.namespace, b.namespace));
}
