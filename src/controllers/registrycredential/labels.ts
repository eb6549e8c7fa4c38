/**
 * The names Prepull stamps on the secret copies and ServiceAccounts it
 * manages for RegistryCredentials. The controller's informers select on them,
 * so they change only with a migration.
 */
import { createHash } from 'node:crypto';
import { GROUP } from '../../api/group.ts';
import type { KubeObject } from '../../kube/objects.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME } from '../labels.ts';

export { MANAGED_BY_LABEL, MANAGER_NAME };

/** Label on every copy: which RegistryCredential it is for (see {@link credentialLabelValue}). */
export const CREDENTIAL_LABEL = `${GROUP}/registrycredential`;
/** Selects every copy of every RegistryCredential: the copies informer's label selector. */
export const COPIES_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGER_NAME},${CREDENTIAL_LABEL}`;
/**
 * Hash of everything the controller renders into a copy. With the data
 * itself it tells an up-to-date copy from one to rewrite without a request.
 */
export const CONTENT_HASH_ANNOTATION = `${GROUP}/content-hash`;
/**
 * On a ServiceAccount: the imagePullSecrets entries Prepull added, comma
 * separated. Only these are ever removed again, so entries that others put
 * there (even with the same name) are never dropped.
 */
export const ADDED_PULL_SECRETS_ANNOTATION = `${GROUP}/added-image-pull-secrets`;
/**
 * Finalizer on a RegistryCredential with `serviceAccounts`: ServiceAccount
 * entries are not owned objects, so the garbage collector cannot remove them.
 */
export const CLEANUP_FINALIZER = `${GROUP}/cleanup`;
/** The only type a copy has: what the kubelet reads for imagePullSecrets. */
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';

const MAX_LABEL_VALUE = 63;
const LABEL_HASH_LENGTH = 16;

/**
 * The {@link CREDENTIAL_LABEL} value for a RegistryCredential name. Names may
 * be 253 characters, label values only 63: a long name is cut and suffixed
 * with a hash of the whole name, so two long names never share a value.
 */
export function credentialLabelValue(name: string): string {
  if (name.length <= MAX_LABEL_VALUE) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, LABEL_HASH_LENGTH);
  return `${name.slice(0, MAX_LABEL_VALUE - LABEL_HASH_LENGTH - 1)}-${hash}`;
}

/** The UID of the RegistryCredential that owns `obj` through an owner reference, if any. */
export function credentialOwnerUid(obj: KubeObject): string | undefined {
  return obj.metadata.ownerReferences?.find(
    (ref) => ref.kind === 'RegistryCredential' && ref.apiVersion.startsWith(`${GROUP}/`),
  )?.uid;
}

/** The name of the RegistryCredential that owns `obj`, if any: the work-queue key of its events. */
export function credentialOwnerName(obj: KubeObject): string | undefined {
  return obj.metadata.ownerReferences?.find(
    (ref) => ref.kind === 'RegistryCredential' && ref.apiVersion.startsWith(`${GROUP}/`),
  )?.name;
}

/** The pull-secret names listed in {@link ADDED_PULL_SECRETS_ANNOTATION}. */
export function addedPullSecrets(obj: KubeObject): string[] {
  const value = obj.metadata.annotations?.[ADDED_PULL_SECRETS_ANNOTATION];
  return value ? value.split(',').filter(Boolean) : [];
}
