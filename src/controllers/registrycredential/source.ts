/**
 * Reads a RegistryCredential's source secret into the `.dockerconfigjson` its
 * copies carry. Pure. A problem comes back as a reason and a message that say
 * what is wrong, never what the secret holds: no value, no decoded text, not
 * even a JSON parser's error (it quotes the input).
 */
import { Reason } from '../../api/conditions.ts';
import type { RegistryCredentialSpec } from '../../api/registrycredential.ts';
import type { Secret } from '../../kube/objects.ts';
import { DOCKER_CONFIG_JSON_KEY, DOCKER_CONFIG_JSON_TYPE } from './labels.ts';

export const BASIC_AUTH_TYPE = 'kubernetes.io/basic-auth';

/** A usable source: the base64 `.dockerconfigjson` for the copies. */
export interface SourceCredentials {
  ok: true;
  /** base64, exactly as it goes into the copies' `data`. */
  dockerConfigJson: string;
  resourceVersion: string;
}

/** A source that cannot be used, and why. */
export interface SourceProblem {
  ok: false;
  reason: typeof Reason.SourceNotFound | typeof Reason.SourceInvalid;
  message: string;
}

export type SourceResult = SourceCredentials | SourceProblem;

/**
 * The credentials of `secret` (undefined when it does not exist): a
 * `kubernetes.io/dockerconfigjson` is taken as is once it parses; a
 * `kubernetes.io/basic-auth` becomes a dockerconfigjson for
 * `source.registry`.
 */
export function readSource(
  secret: Secret | undefined,
  source: RegistryCredentialSpec['source'],
): SourceResult {
  const ref = `${source.secretRef.namespace}/${source.secretRef.name}`;
  if (!secret) return problem(Reason.SourceNotFound, `source secret ${ref} not found`);
  const resourceVersion = secret.metadata.resourceVersion ?? '';
  const data = secret.data ?? {};
  if (secret.type === DOCKER_CONFIG_JSON_TYPE) {
    const encoded = data[DOCKER_CONFIG_JSON_KEY];
    if (!encoded) return invalid(`source secret ${ref} has no ${DOCKER_CONFIG_JSON_KEY} key`);
    const shape = checkDockerConfig(decode(encoded));
    if (shape) return invalid(`source secret ${ref}: ${DOCKER_CONFIG_JSON_KEY} ${shape}`);
    return { ok: true, dockerConfigJson: encoded, resourceVersion };
  }
  if (secret.type === BASIC_AUTH_TYPE) {
    if (!source.registry) {
      return invalid(
        `source secret ${ref} is ${BASIC_AUTH_TYPE}: spec.source.registry must name the registry host it is for`,
      );
    }
    const username = data.username ? decode(data.username) : '';
    const password = data.password ? decode(data.password) : '';
    if (!username) return invalid(`source secret ${ref} has no username`);
    if (!password) return invalid(`source secret ${ref} has no password`);
    // Basic auth joins the two with a colon; a colon in the username cannot round-trip.
    if (username.includes(':')) return invalid(`source secret ${ref}: the username must not contain ':'`);
    return {
      ok: true,
      dockerConfigJson: encodeBasicAuth(source.registry, username, password),
      resourceVersion,
    };
  }
  return invalid(
    `source secret ${ref} has type ${secret.type ?? 'Opaque'}; use ${DOCKER_CONFIG_JSON_TYPE}, or ${BASIC_AUTH_TYPE} with spec.source.registry`,
  );
}

/** The base64 `.dockerconfigjson` for one registry, with `auth` as the kubelet and docker write it. */
export function encodeBasicAuth(registry: string, username: string, password: string): string {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const config = { auths: { [registry]: { username, password, auth } } };
  return Buffer.from(JSON.stringify(config)).toString('base64');
}

/**
 * What is wrong with a dockerconfigjson, or undefined when the kubelet can
 * use it: every entry under `auths` must carry credentials the kubelet reads
 * (`auth` as base64 `username:password`, or both `username` and `password`).
 * A workstation's `~/.docker/config.json` with a `credsStore` or
 * `credHelpers` keeps its credentials in a helper program the kubelet never
 * runs: its `auths` entries are empty.
 */
function checkDockerConfig(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'is not valid JSON';
  }
  if (!isObject(parsed)) return 'is not a JSON object';
  const helpers = 'credsStore' in parsed || 'credHelpers' in parsed;
  const auths = parsed.auths;
  if (!isObject(auths) || Object.keys(auths).length === 0) {
    if (helpers) return `holds only credsStore/credHelpers: ${HELPER_NOTE}`;
    return isObject(auths) ? 'lists no registry under "auths"' : 'has no "auths" object';
  }
  const entries = Object.values(auths);
  // Not even the registry key is quoted: whatever the secret holds stays out of status.
  if (entries.some((entry) => !isObject(entry))) return 'has an "auths" entry that is not an object';
  const problems = entries.map((entry) => entryProblem(entry as Record<string, unknown>));
  const bad = problems.filter((p) => p !== undefined);
  if (bad.length === 0) return undefined;
  const which = `${bad.length} of ${entries.length} entries under "auths"`;
  if (bad.every((p) => p === NO_CREDENTIALS) && helpers) {
    return `${which} carry no credentials: ${HELPER_NOTE}`;
  }
  const reasons = [...new Set(bad)].join('; ');
  return `${which} cannot be used: ${reasons}`;
}

/** Why a file with credsStore/credHelpers cannot work, and what to do instead. */
const HELPER_NOTE =
  "the credentials are in a workstation's credential helper (credsStore/credHelpers), which the kubelet never runs; put them in the file itself (kubectl create secret docker-registry --docker-server … --docker-username … --docker-password …)";
const NO_CREDENTIALS = 'an entry has neither "auth" nor "username" and "password"';

/** Why the kubelet cannot use one `auths` entry, or undefined. */
function entryProblem(entry: Record<string, unknown>): string | undefined {
  const auth = entry.auth;
  if (typeof auth === 'string' && auth !== '') {
    // The kubelet splits the decoded auth at the first colon, and rejects the whole file without one.
    return /^[A-Za-z0-9+/]*={0,2}$/.test(auth) && decode(auth).includes(':')
      ? undefined
      : 'an entry\'s "auth" is not base64 of username:password';
  }
  const username = typeof entry.username === 'string' ? entry.username : '';
  const password = typeof entry.password === 'string' ? entry.password : '';
  if (username && password) return undefined;
  if (username) return 'an entry has a "username" but no "password"';
  if (password) return 'an entry has a "password" but no "username"';
  return NO_CREDENTIALS;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decode(base64: string): string {
  return Buffer.from(base64, 'base64').toString('utf8');
}

function problem(reason: SourceProblem['reason'], message: string): SourceProblem {
  return { ok: false, reason, message };
}

function invalid(message: string): SourceProblem {
  return problem(Reason.SourceInvalid, message);
}
