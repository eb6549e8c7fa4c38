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

/** What is wrong with a dockerconfigjson's shape, or undefined when the kubelet can use it. */
function checkDockerConfig(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'is not valid JSON';
  }
  if (!isObject(parsed)) return 'is not a JSON object';
  const auths = parsed.auths;
  if (!isObject(auths)) return 'has no "auths" object';
  const registries = Object.keys(auths);
  if (registries.length === 0) return 'lists no registry under "auths"';
  // Not even the registry key is quoted: whatever the secret holds stays out of status.
  if (registries.some((host) => !isObject(auths[host]))) return 'has an "auths" entry that is not an object';
  return undefined;
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
