/**
 * The informers the RegistryCredential controller reads, their indexes, and
 * the watches that turn their events into RegistryCredential keys. The
 * runtime enqueues those keys (and marks our own writes as seen); the
 * reconcile reads the caches.
 */
import { reportAnnotation } from '../../agent/node/report.ts';
import { NODECREDS_AGENT_MODULE } from '../../agent/nodecreds/protocol.ts';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Informer } from '../../kube/informer.ts';
import {
  isTerminating,
  keyOf,
  type Namespace,
  type Node,
  type Secret,
  type ServiceAccount,
} from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import type { WatchState } from '../../kube/secret-watches.ts';
import { owns, type Watch, watch } from '../../runtime/object-controller.ts';
import { type AgentPod, reportChanged } from '../agent-reports.ts';
import { prePulledImagesNaming } from '../indexes.ts';
import { addedPullSecrets, credentialOwnerName, credentialOwnerUid } from './labels.ts';
import { isOwnedBy } from './render.ts';

export interface RegistryCredentialInformers {
  registryCredentials: Informer<RegistryCredential>;
  /** Secrets labelled as Prepull's copies (COPIES_SELECTOR). */
  copies: Informer<Secret>;
  namespaces: Informer<Namespace>;
  serviceAccounts: Informer<ServiceAccount>;
  prePulledImages: Informer<PrePulledImage>;
  /** spec.nodes: the node copies in Prepull's namespace (NODE_COPIES_SELECTOR). */
  nodeCopies: Informer<Secret>;
  nodes: Informer<Node>;
  /** The node agents' pods, with their reports (indexed by node: addAgentPodIndexes). */
  agentPods: Informer<AgentPod>;
}

/** Copies by the UID of the RegistryCredential that owns them. */
export const COPY_OWNER_INDEX = 'registrycredential-owner';
/** ServiceAccounts carrying entries Prepull added, by namespace. */
export const MARKED_SERVICE_ACCOUNT_INDEX = 'prepull-added-pull-secrets';

/** Adds the indexes {@link registryCredentialReconciler} reads; call once, before or after the informers start. */
export function addRegistryCredentialIndexes(informers: RegistryCredentialInformers): void {
  informers.copies.addIndex(COPY_OWNER_INDEX, (secret) => {
    const uid = credentialOwnerUid(secret);
    return uid ? [uid] : [];
  });
  informers.serviceAccounts.addIndex(MARKED_SERVICE_ACCOUNT_INDEX, (sa) =>
    addedPullSecrets(sa).length > 0 && sa.metadata.namespace ? [sa.metadata.namespace] : [],
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
  for (const ppi of prePulledImagesNaming(informers.prePulledImages, name)) {
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
 * What the RegistryCredential kind watches besides its own objects, as keys
 * of the RegistryCredentials each change concerns. A namespace that appears,
 * leaves or is relabelled may change any RegistryCredential's targets; a
 * ServiceAccount matters to those naming it or whose entry it carries; a copy
 * to its owner; a PrePulledImage to the RegistryCredentials it names, and
 * only when those names change or it goes.
 */
export function registryCredentialWatches(informers: RegistryCredentialInformers): Watch[] {
  const all = () => informers.registryCredentials.list().map(keyOf);
  const namespaceMatters = (ns: Namespace, previous: Namespace | undefined) =>
    previous === undefined ||
    JSON.stringify(previous.metadata.labels) !== JSON.stringify(ns.metadata.labels) ||
    isTerminating(previous) !== isTerminating(ns);
  const byServiceAccount = (sa: ServiceAccount) => {
    const name = sa.metadata.name ?? '';
    const marked = new Set(addedPullSecrets(sa));
    return informers.registryCredentials
      .list()
      .filter((rc) => rc.spec.serviceAccounts?.includes(name) || marked.has(rc.spec.target.secretName))
      .map(keyOf);
  };
  // spec.nodes: a node's labels and an agent's report matter to every object with it (they are few).
  const withNodes = () =>
    informers.registryCredentials
      .list()
      .filter((rc) => rc.spec.nodes)
      .map(keyOf);
  const nodeReport = reportAnnotation(NODECREDS_AGENT_MODULE);
  const references = (ppi: PrePulledImage) => (ppi.spec.registryCredentials ?? []).map((ref) => ref.name);
  return [
    watch(informers.namespaces, Resources.namespaces, (ns, previous) =>
      namespaceMatters(ns, previous) ? all() : [],
    ),
    // The previous version too: an entry removed by someone else was marked there.
    watch(informers.serviceAccounts, Resources.serviceAccounts, (sa, previous) => [
      ...new Set([...(previous ? byServiceAccount(previous) : []), ...byServiceAccount(sa)]),
    ]),
    owns(informers.copies, Resources.secrets, credentialOwnerName),
    owns(informers.nodeCopies, Resources.secrets, credentialOwnerName),
    watch(informers.nodes, Resources.nodes, (node, previous) =>
      previous === undefined ||
      JSON.stringify(previous.metadata.labels) !== JSON.stringify(node.metadata.labels)
        ? withNodes()
        : [],
    ),
    watch(informers.agentPods, Resources.pods, (pod, previous) =>
      reportChanged(previous, pod, nodeReport) ||
      previous?.metadata.deletionTimestamp !== pod.metadata.deletionTimestamp
        ? withNodes()
        : [],
    ),
    // PrePulledImage status changes often; only its references and its deletion matter here.
    watch(informers.prePulledImages, Resources.prePulledImages, (ppi, previous) => {
      const unchanged =
        previous !== undefined &&
        JSON.stringify(references(previous)) === JSON.stringify(references(ppi)) &&
        !previous.metadata.deletionTimestamp === !ppi.metadata.deletionTimestamp;
      return unchanged ? [] : [...new Set([...(previous ? references(previous) : []), ...references(ppi)])];
    }),
  ];
}
