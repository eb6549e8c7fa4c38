/**
 * Whether a PrePulledImage's credentials are there: every spec.imagePullSecrets
 * entry must be a secret in its namespace, and every spec.registryCredentials
 * name a RegistryCredential whose target.allowRequestsFrom selects this
 * namespace, or no copy of its secret ever comes here. A missing, refused or
 * unknown name is a warning condition naming it; it never fails Ready, since
 * the images may pull without it (public ones, or another pull secret). Pure.
 */
import { Reason } from '../../api/conditions.ts';
import type { PrePulledImage, PrePulledImageStatus } from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Namespace } from '../../kube/objects.ts';
import { type NewCondition, setCondition, shortenMessage } from '../../runtime/conditions.ts';
import { allowsRequestFrom } from '../requests.ts';

/** Condition type, present when the spec names any pull secret or RegistryCredential. */
export const CREDENTIALS_CONDITION = 'CredentialsResolved';

const MESSAGE_MAX = 1024;

/** One name of spec.imagePullSecrets or spec.registryCredentials that gives this namespace nothing. */
export interface CredentialProblem {
  name: string;
  reason:
    | typeof Reason.PullSecretNotFound
    | typeof Reason.RegistryCredentialNotFound
    | typeof Reason.RegistryCredentialNotAllowed;
}

/**
 * The spec.imagePullSecrets entries that do not exist. `exists` answers
 * undefined while it cannot tell (its watch has not listed, or may not read
 * the namespace): such an entry is not reported.
 */
export function pullSecretProblems(
  ppi: PrePulledImage,
  exists: (name: string) => boolean | undefined,
): CredentialProblem[] {
  return (ppi.spec.imagePullSecrets ?? [])
    .filter(({ name }) => exists(name) === false)
    .map(({ name }) => ({ name, reason: Reason.PullSecretNotFound }));
}

/** The names of spec.registryCredentials that are unknown, or whose RegistryCredential refuses this namespace. */
export function registryCredentialProblems(
  ppi: PrePulledImage,
  namespace: Namespace | undefined,
  registryCredential: (name: string) => RegistryCredential | undefined,
): CredentialProblem[] {
  const problems: CredentialProblem[] = [];
  for (const { name } of ppi.spec.registryCredentials ?? []) {
    const rc = registryCredential(name);
    if (!rc) problems.push({ name, reason: Reason.RegistryCredentialNotFound });
    else if (!namespace || !allowsRequestFrom(rc.spec, namespace)) {
      problems.push({ name, reason: Reason.RegistryCredentialNotAllowed });
    }
  }
  return problems;
}

/** The CredentialsResolved condition for `problems`; undefined when the spec names no credentials. */
export function credentialsCondition(
  ppi: PrePulledImage,
  problems: readonly CredentialProblem[],
): NewCondition | undefined {
  const names = (ppi.spec.registryCredentials ?? []).map((ref) => ref.name);
  const secrets = (ppi.spec.imagePullSecrets ?? []).map((ref) => ref.name);
  if (names.length === 0 && secrets.length === 0) return undefined;
  const generation = ppi.metadata.generation;
  const base = generation === undefined ? {} : { observedGeneration: generation };
  if (problems.length === 0) {
    return {
      type: CREDENTIALS_CONDITION,
      status: 'True',
      reason: Reason.CredentialsResolved,
      message: [
        ...(secrets.length > 0 ? [`pull secrets ${secrets.join(', ')} exist`] : []),
        ...(names.length > 0 ? [`RegistryCredentials ${names.join(', ')} serve this namespace`] : []),
      ].join('; '),
      ...base,
    };
  }
  const namespace = ppi.metadata.namespace ?? '';
  const parts = problems.map((p) => describeProblem(p, namespace));
  return {
    type: CREDENTIALS_CONDITION,
    status: 'False',
    reason: problems[0]!.reason,
    message: shortenMessage(
      `${parts.join('; ')}: images that need these credentials cannot be pulled`,
      MESSAGE_MAX,
    ),
    ...base,
  };
}

/** `status` with the CredentialsResolved condition set, or removed when `condition` is undefined. */
export function withCredentialsCondition(
  status: PrePulledImageStatus,
  condition: NewCondition | undefined,
  now: Date,
): PrePulledImageStatus {
  const conditions = condition
    ? setCondition(status.conditions, condition, now)
    : (status.conditions ?? []).filter((c) => c.type !== CREDENTIALS_CONDITION);
  return { ...status, conditions };
}

function describeProblem(problem: CredentialProblem, namespace: string): string {
  if (problem.reason === Reason.PullSecretNotFound) {
    return `pull secret ${problem.name} (spec.imagePullSecrets) does not exist in namespace ${namespace}`;
  }
  if (problem.reason === Reason.RegistryCredentialNotFound) {
    return `RegistryCredential ${problem.name} does not exist`;
  }
  return `RegistryCredential ${problem.name} does not allow requests from namespace ${namespace} (its spec.target.allowRequestsFrom)`;
}
