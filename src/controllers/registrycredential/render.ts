/**
 * What a RegistryCredential wants written: the copy of its secret in a
 * namespace, how an existing secret there compares with it, and the JSON
 * patches that add its name to (or take it off) a ServiceAccount's
 * imagePullSecrets. Pure: same input, deep-equal output.
 */
import { createHash } from 'node:crypto';
import { API_VERSION } from '../../api/group.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Secret, ServiceAccount } from '../../kube/objects.ts';
import {
  ADDED_PULL_SECRETS_ANNOTATION,
  addedPullSecrets,
  CONTENT_HASH_ANNOTATION,
  CREDENTIAL_LABEL,
  credentialLabelValue,
  credentialOwnerUid,
  DOCKER_CONFIG_JSON_KEY,
  DOCKER_CONFIG_JSON_TYPE,
  MANAGED_BY_LABEL,
  MANAGER_NAME,
} from './labels.ts';

const HASH_LENGTH = 16;

/**
 * The copy of the credentials in `namespace`. Its metadata is entirely
 * Prepull's: nothing of the source's labels or annotations (GitOps tracking
 * marks would make Argo CD or Flux prune or fight over the copies), and an
 * owner reference so the garbage collector removes it with the
 * RegistryCredential.
 */
export function renderCopy(rc: RegistryCredential, namespace: string, dockerConfigJson: string): Secret {
  const rendered = {
    labels: {
      [MANAGED_BY_LABEL]: MANAGER_NAME,
      [CREDENTIAL_LABEL]: credentialLabelValue(rc.metadata.name ?? ''),
    },
    ownerReferences: [
      {
        apiVersion: API_VERSION,
        kind: 'RegistryCredential',
        name: rc.metadata.name ?? '',
        uid: rc.metadata.uid ?? '',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
    type: DOCKER_CONFIG_JSON_TYPE,
    data: { [DOCKER_CONFIG_JSON_KEY]: dockerConfigJson },
  };
  const hash = createHash('sha256').update(JSON.stringify(rendered)).digest('hex').slice(0, HASH_LENGTH);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: rc.spec.target.secretName,
      namespace,
      labels: rendered.labels,
      annotations: { [CONTENT_HASH_ANNOTATION]: hash },
      ownerReferences: rendered.ownerReferences,
    },
    type: rendered.type,
    data: rendered.data,
  };
}

/** Whether `secret` is owned by the RegistryCredential with `uid`: only then may it be written or deleted. */
export function isOwnedBy(secret: Secret, uid: string): boolean {
  return credentialOwnerUid(secret) === uid;
}

/** What to do with the secret at a copy's place. */
export type CopyAction =
  /** Nothing there: create it (a create, so a secret someone made meanwhile is never overwritten). */
  | 'create'
  /** Ours and current. */
  | 'keep'
  /** Ours but edited, stale, or from an older source: apply the rendered copy. */
  | 'update'
  /** Ours with another type, which is immutable: delete it, then create it. */
  | 'recreate'
  /** Someone else's secret: never touched, reported as a Conflict. */
  | 'conflict';

/**
 * Compares the secret at the copy's place with the rendered copy. The hash
 * annotation covers what Prepull rendered; the data is compared too, because
 * an edit of the data leaves the annotation as it was.
 */
export function planCopy(existing: Secret | undefined, desired: Secret, ownerUid: string): CopyAction {
  if (!existing) return 'create';
  if (!isOwnedBy(existing, ownerUid)) return 'conflict';
  if (existing.type !== desired.type) return 'recreate';
  const hash = desired.metadata.annotations?.[CONTENT_HASH_ANNOTATION];
  if (existing.metadata.annotations?.[CONTENT_HASH_ANNOTATION] !== hash) return 'update';
  if (!sameData(existing.data, desired.data)) return 'update';
  for (const [key, value] of Object.entries(desired.metadata.labels ?? {})) {
    if (existing.metadata.labels?.[key] !== value) return 'update';
  }
  return 'keep';
}

function sameData(a: Record<string, string> = {}, b: Record<string, string> = {}): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** One operation of an RFC 6902 JSON patch. */
export interface JsonPatchOperation {
  op: 'test' | 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** Pull-secret names to add to a ServiceAccount, and names to take off it again. */
export interface PullSecretChanges {
  add: readonly string[];
  remove: readonly string[];
}

/**
 * The JSON patch that makes `sa` list every name of `changes.add` and no
 * longer list those of `changes.remove` that Prepull added, or undefined when
 * nothing is to change.
 *
 * `imagePullSecrets` of a ServiceAccount is an atomic list for server-side
 * apply and has no merge key for a strategic merge, so both would replace
 * what others put there. The patch sends the whole merged list instead,
 * guarded by a `test` of the resourceVersion it was computed from: a
 * concurrent writer makes it fail, and it is computed again from a fresh
 * cache. Prepull remembers the entries it added in an annotation, and only
 * those are ever removed.
 */
export function serviceAccountPatch(
  sa: ServiceAccount,
  changes: PullSecretChanges,
): JsonPatchOperation[] | undefined {
  const before = sa.imagePullSecrets ?? [];
  const addedBefore = addedPullSecrets(sa);
  let entries = before;
  let added = addedBefore;
  for (const name of changes.remove) {
    if (!added.includes(name) || changes.add.includes(name)) continue;
    if (entries.some((e) => e.name === name)) entries = entries.filter((e) => e.name !== name);
    added = added.filter((n) => n !== name);
  }
  for (const name of changes.add) {
    // Listed already, by us or by someone else: either way the pods get it, and
    // an entry we did not add stays unmarked, so it is never removed.
    if (entries.some((e) => e.name === name)) continue;
    entries = [...entries, { name }];
    if (!added.includes(name)) added = [...added, name].sort();
  }
  if (entries === before && added === addedBefore) return undefined;
  const ops: JsonPatchOperation[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: sa.metadata.resourceVersion },
  ];
  if (entries !== before) ops.push({ op: 'add', path: '/imagePullSecrets', value: entries });
  const annotationPath = `/metadata/annotations/${escapePointer(ADDED_PULL_SECRETS_ANNOTATION)}`;
  if (added.length > 0) {
    const value = added.join(',');
    if (sa.metadata.annotations) ops.push({ op: 'add', path: annotationPath, value });
    else
      ops.push({
        op: 'add',
        path: '/metadata/annotations',
        value: { [ADDED_PULL_SECRETS_ANNOTATION]: value },
      });
  } else if (sa.metadata.annotations?.[ADDED_PULL_SECRETS_ANNOTATION] !== undefined) {
    ops.push({ op: 'remove', path: annotationPath });
  }
  return ops;
}

/** RFC 6901: `~` and `/` in a key. */
function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
