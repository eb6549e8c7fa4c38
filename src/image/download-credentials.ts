/**
 * The protocol of tarball download credentials (`tarball.credentialsSecretRef`):
 * a tenant's Secret, in the PrePulledImage's namespace, is read by the
 * controller and kept as a copy in Prepull's namespace, where the node agent
 * (which reads secrets of its own namespace only) finds it by a name derived
 * from the source's namespace and name. The copy holds only the HTTP
 * `Authorization` value the importer sends, or, when the source is missing or
 * unusable, no data and an annotation saying why, so the agent reports a
 * clear reason instead of a bare 401. The controller writes copies
 * (src/controllers/prepulledimage/download-credentials-controller.ts); the
 * agent reads them (src/agent/node/imports/credentials.ts). Pure.
 */
import { createHash } from 'node:crypto';
import type { ImageEntry } from '../api/prepulledimage.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME } from '../controllers/labels.ts';
import type { Secret } from '../kube/objects.ts';

/** Label every copy carries: the controller's informer selects on it. */
export const DOWNLOAD_CREDENTIALS_LABEL = 'prepull.dev/download-credentials';
/** Its value on copies. */
export const DOWNLOAD_CREDENTIALS_COPY = 'copy';
/** Label selector of the copies. */
export const DOWNLOAD_CREDENTIALS_SELECTOR = `${DOWNLOAD_CREDENTIALS_LABEL}=${DOWNLOAD_CREDENTIALS_COPY}`;
/** Annotations naming the source: `namespace` and `name` of the tenant's Secret. */
export const SOURCE_NAMESPACE_ANNOTATION = 'prepull.dev/source-namespace';
export const SOURCE_NAME_ANNOTATION = 'prepull.dev/source-name';
/** Annotation on a copy without data: why the source gives no credential (no secret value in it). */
export const PROBLEM_ANNOTATION = 'prepull.dev/credentials-problem';
/** Annotation with a hash of what the copy was rendered from, so an unchanged source costs no write. */
export const CONTENT_HASH_ANNOTATION = 'prepull.dev/content-hash';
/** The copy's one data key: the `Authorization` header value. */
export const AUTHORIZATION_KEY = 'authorization';

const NAME_PREFIX = 'prepull-download-';

/** The copy's name in Prepull's namespace for the Secret `name` of `namespace`. */
export function downloadCredentialsCopyName(namespace: string, name: string): string {
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 32);
  return `${NAME_PREFIX}${hash}`;
}

/** The Secret names an entry's tarball source takes its credentials from (zero or one). */
export function credentialsSecretOf(entry: Pick<ImageEntry, 'tarball'>): string | undefined {
  return entry.tarball?.url !== undefined ? entry.tarball.credentialsSecretRef?.name : undefined;
}

/** What a source Secret gives: an `Authorization` value, or why it gives none (never a secret value). */
export type CredentialFromSource = { ok: true; authorization: string } | { ok: false; problem: string };

function decoded(data: Record<string, string> | undefined, key: string): string | undefined {
  const value = data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

/**
 * The credential a source Secret holds: `username` and `password` (as in a
 * kubernetes.io/basic-auth Secret) give HTTP Basic, `token` gives a Bearer
 * token. `source` undefined: the Secret does not exist.
 */
export function credentialFromSource(
  source: Pick<Secret, 'data'> | undefined,
  namespace: string,
  name: string,
): CredentialFromSource {
  const where = `the Secret ${name} (tarball.credentialsSecretRef) in namespace ${namespace}`;
  if (!source) return { ok: false, problem: `${where} does not exist` };
  const username = decoded(source.data, 'username');
  const password = decoded(source.data, 'password');
  const token = decoded(source.data, 'token');
  if (username !== undefined && password !== undefined && token !== undefined) {
    return { ok: false, problem: `${where} has both username/password and token: keep one` };
  }
  if (username !== undefined && password !== undefined) {
    if (username.includes(':'))
      return { ok: false, problem: `${where} has a username with a colon, which HTTP Basic cannot carry` };
    if (/[\r\n]/.test(username + password))
      return { ok: false, problem: `${where} has a line break in its username or password` };
    return {
      ok: true,
      authorization: `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`,
    };
  }
  if (token !== undefined) {
    const trimmed = token.trim();
    if (trimmed === '' || /[\s]/.test(trimmed))
      return { ok: false, problem: `${where} has a token that is empty or contains white space` };
    return { ok: true, authorization: `Bearer ${trimmed}` };
  }
  return {
    ok: false,
    problem: `${where} has neither the keys username and password (HTTP Basic) nor the key token (Bearer)`,
  };
}

/** The copy of the Secret `name` of `namespace` in `prepullNamespace`, from what the source gives. */
export function renderCredentialsCopy(
  prepullNamespace: string,
  namespace: string,
  name: string,
  credential: CredentialFromSource,
): Secret {
  const hash = createHash('sha256')
    .update(credential.ok ? `ok\n${credential.authorization}` : `problem\n${credential.problem}`)
    .digest('hex')
    .slice(0, 32);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: downloadCredentialsCopyName(namespace, name),
      namespace: prepullNamespace,
      labels: { [DOWNLOAD_CREDENTIALS_LABEL]: DOWNLOAD_CREDENTIALS_COPY, [MANAGED_BY_LABEL]: MANAGER_NAME },
      annotations: {
        [SOURCE_NAMESPACE_ANNOTATION]: namespace,
        [SOURCE_NAME_ANNOTATION]: name,
        [CONTENT_HASH_ANNOTATION]: hash,
        ...(credential.ok ? {} : { [PROBLEM_ANNOTATION]: credential.problem }),
      },
    },
    data: credential.ok
      ? { [AUTHORIZATION_KEY]: Buffer.from(credential.authorization, 'utf8').toString('base64') }
      : {},
  };
}

/** The source a copy is for, `namespace/name`, from its annotations; undefined when it names none. */
export function sourceKeyOfCopy(copy: Pick<Secret, 'metadata'>): string | undefined {
  const namespace = copy.metadata.annotations?.[SOURCE_NAMESPACE_ANNOTATION];
  const name = copy.metadata.annotations?.[SOURCE_NAME_ANNOTATION];
  return namespace && name ? `${namespace}/${name}` : undefined;
}

/** What the agent reads from a copy: the `Authorization` value, or why there is none. */
export function credentialFromCopy(
  copy: Pick<Secret, 'metadata' | 'data'> | undefined,
  namespace: string,
  name: string,
): CredentialFromSource {
  const where = `the Secret ${name} (tarball.credentialsSecretRef) in namespace ${namespace}`;
  if (!copy) return { ok: false, problem: `${where} has not been copied for the node agents yet` };
  // The name is derived from the source, but the annotations are checked too: a
  // copy answers for exactly one namespace's Secret.
  if (sourceKeyOfCopy(copy) !== `${namespace}/${name}`) {
    return { ok: false, problem: `the copy of ${where} names another source` };
  }
  const problem = copy.metadata.annotations?.[PROBLEM_ANNOTATION];
  if (problem) return { ok: false, problem };
  const authorization = decoded(copy.data, AUTHORIZATION_KEY);
  if (!authorization) return { ok: false, problem: `the copy of ${where} holds no credential` };
  return { ok: true, authorization };
}
