/**
 * The informers the RegistryCredential controller reads, their indexes, and
 * the handlers that turn their events into RegistryCredential keys. Handlers
 * only enqueue (and mark our own writes as seen); the reconcile reads the
 * caches.
 */
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Informer } from '../../kube/informer.ts';
import { keyOf, type Namespace, type Secret, type ServiceAccount } from '../../kube/objects.ts';
import type { WorkQueue } from '../../runtime/queue.ts';
import { addedPullSecrets, credentialOwnerName, credentialOwnerUid } from './labels.ts';
import type { PendingWrites } from './pending.ts';
import { isOwnedBy } from './render.ts';
import type { WatchState } from './watches.ts';

export interface RegistryCredentialInformers {
  registryCredentials: Informer<RegistryCredential>;
  /** Secrets labelled as Prepull's copies (COPIES_SELECTOR). */
  copies: Informer<Secret>;
  namespaces: Informer<Namespace>;
  serviceAccounts: Informer<ServiceAccount>;
  prePulledImages: Informer<PrePulledImage>;
}

/** Copies by the UID of the RegistryCredential that owns them. */
export const COPY_OWNER_INDEX = 'registrycredential-owner';
/** ServiceAccounts carrying entries Prepull added, by namespace. */
export const MARKED_SERVICE_ACCOUNT_INDEX = 'prepull-added-pull-secrets';
/** PrePulledImages by the RegistryCredential names in spec.registryCredentials. */
export const PPI_CREDENTIAL_INDEX = 'registrycredential';

/** Adds the indexes {@link registryCredentialReconciler} reads; call once, before or after the informers start. */
export function addRegistryCredentialIndexes(informers: RegistryCredentialInformers): void {
  informers.copies.addIndex(COPY_OWNER_INDEX, (secret) => {
    const uid = credentialOwnerUid(secret);
    return uid ? [uid] : [];
  });
  informers.serviceAccounts.addIndex(MARKED_SERVICE_ACCOUNT_INDEX, (sa) =>
    addedPullSecrets(sa).length > 0 && sa.metadata.namespace ? [sa.metadata.namespace] : [],
  );
  informers.prePulledImages.addIndex(PPI_CREDENTIAL_INDEX, (ppi) =>
    (ppi.spec.registryCredentials ?? []).map((ref) => ref.name),
  );
}

/** The ServiceAccounts of `namespace` named in `names`, and those carrying Prepull's entries. */
export function serviceAccountsIn(
  informers: RegistryCredentialInformers,
  namespace: string,
  names: readonly string[],
): ServiceAccount[] {
  const found = new Map<string, ServiceAccount>();
  for (const name of names) {
    const sa = informers.serviceAccounts.get(`${namespace}/${name}`);
    if (sa) found.set(keyOf(sa), sa);
  }
  for (const sa of informers.serviceAccounts.byIndex(MARKED_SERVICE_ACCOUNT_INDEX, namespace)) {
    found.set(keyOf(sa), sa);
  }
  return [...found.values()];
}

/** Namespaces whose PrePulledImages name the RegistryCredential `name`. */
export function requestingNamespaces(informers: RegistryCredentialInformers, name: string): Set<string> {
  const out = new Set<string>();
  for (const ppi of informers.prePulledImages.byIndex(PPI_CREDENTIAL_INDEX, name)) {
    if (!ppi.metadata.deletionTimestamp && ppi.metadata.namespace) out.add(ppi.metadata.namespace);
  }
  return out;
}

/**
 * Every copy owned by the RegistryCredential with `uid`: labelled ones, and
 * those at the current copy name (whose label someone may have removed).
 */
export function ownedCopies(
  informers: RegistryCredentialInformers,
  uid: string,
  byName: WatchState,
): Secret[] {
  const found = new Map<string, Secret>();
  for (const copy of informers.copies.byIndex(COPY_OWNER_INDEX, uid)) found.set(keyOf(copy), copy);
  for (const secret of byName.informer.list()) if (isOwnedBy(secret, uid)) found.set(keyOf(secret), secret);
  return [...found.values()];
}

/**
 * Informer events → RegistryCredential keys. A namespace that appears,
 * leaves or is relabelled may change any RegistryCredential's targets; a
 * ServiceAccount matters to those naming it or whose entry it carries; a copy
 * to its owner; a PrePulledImage to the RegistryCredentials it names.
 */
export function enqueueRegistryCredentialEvents(
  informers: RegistryCredentialInformers,
  queue: WorkQueue<string>,
  pending: PendingWrites,
): void {
  const all = () => {
    for (const rc of informers.registryCredentials.list()) queue.add(keyOf(rc));
  };
  informers.registryCredentials.addHandler({
    add: (rc) => queue.add(keyOf(rc)),
    update: (_, rc) => queue.add(keyOf(rc)),
    delete: (rc) => queue.add(keyOf(rc)),
  });
  informers.namespaces.addHandler({
    add: all,
    delete: all,
    update: (previous, ns) => {
      const terminating = (n: Namespace) =>
        Boolean(n.metadata.deletionTimestamp) || n.status?.phase === 'Terminating';
      const labelsChanged = JSON.stringify(previous.metadata.labels) !== JSON.stringify(ns.metadata.labels);
      if (labelsChanged || terminating(previous) !== terminating(ns)) all();
    },
  });

  const byServiceAccount = (sa: ServiceAccount) => {
    pending.seen(keyOf(sa));
    const name = sa.metadata.name ?? '';
    const marked = new Set(addedPullSecrets(sa));
    for (const rc of informers.registryCredentials.list()) {
      if (rc.spec.serviceAccounts?.includes(name) || marked.has(rc.spec.target.secretName))
        queue.add(keyOf(rc));
    }
  };
  informers.serviceAccounts.addHandler({
    add: byServiceAccount,
    // The previous version too: an entry removed by someone else was marked there.
    update: (previous, sa) => {
      byServiceAccount(previous);
      byServiceAccount(sa);
    },
    delete: byServiceAccount,
  });

  const byOwner = (secret: Secret) => {
    pending.seen(keyOf(secret));
    const owner = credentialOwnerName(secret);
    if (owner) queue.add(owner);
  };
  informers.copies.addHandler({ add: byOwner, update: (_, secret) => byOwner(secret), delete: byOwner });

  const byReference = (ppi: PrePulledImage) => {
    for (const ref of ppi.spec.registryCredentials ?? []) queue.add(ref.name);
  };
  informers.prePulledImages.addHandler({
    add: byReference,
    // PrePulledImage status changes often; only its references and its deletion matter here.
    update: (previous, ppi) => {
      const refs = (p: PrePulledImage) => JSON.stringify(p.spec.registryCredentials ?? []);
      if (
        refs(previous) === refs(ppi) &&
        !previous.metadata.deletionTimestamp === !ppi.metadata.deletionTimestamp
      ) {
        return;
      }
      byReference(previous);
      byReference(ppi);
    },
    delete: byReference,
  });
}
