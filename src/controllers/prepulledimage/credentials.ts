/**
 * Whether a PrePulledImage's spec.registryCredentials are served: each name
 * must be a RegistryCredential whose target.allowRequestsFrom selects this
 * namespace, or no copy of its secret ever comes here. A refused or unknown
 * name is a warning condition naming it; it never fails Ready, since the
 * images may pull without it (public ones, or another pull secret). Pure.
 */
import { Reason } from '../../api/conditions.ts';
import type { PrePulledImage, PrePulledImageStatus } from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Namespace } from '../../kube/objects.ts';
import { type NewCondition, setCondition, shortenMessage } from '../../runtime/conditions.ts';
import { allowsRequestFrom } from '../requests.ts';

/** Condition type, present when spec.registryCredentials names any. */
export const CREDENTIALS_CONDITION = 'CredentialsResolved';

const MESSAGE_MAX = 1024;

/** One name of spec.registryCredentials that gives this namespace nothing. */
export interface CredentialProblem {
  name: string;
  reason: typeof Reason.RegistryCredentialNotFound | typeof Reason.RegistryCredentialNotAllowed;
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

/** The CredentialsResolved condition for `problems`; undefined when the spec names no RegistryCredential. */
export function credentialsCondition(
  ppi: PrePulledImage,
  problems: readonly CredentialProblem[],
): NewCondition | undefined {
  const names = (ppi.spec.registryCredentials ?? []).map((ref) => ref.name);
  if (names.length === 0) return undefined;
  const generation = ppi.metadata.generation;
  const base = generation === undefined ? {} : { observedGeneration: generation };
  if (problems.length === 0) {
    return {
      type: CREDENTIALS_CONDITION,
      status: 'True',
      reason: Reason.CredentialsResolved,
      message: `RegistryCredentials ${names.join(', ')} serve this namespace`,
      ...base,
    };
  }
  const namespace = ppi.metadata.namespace ?? '';
  const parts = problems.map((p) =>
    p.reason === Reason.RegistryCredentialNotFound
      ? `RegistryCredential ${p.name} does not exist`
      : `RegistryCredential ${p.name} does not allow requests from namespace ${namespace} (its spec.target.allowRequestsFrom)`,
  );
  return {
    type: CREDENTIALS_CONDITION,
    status: 'False',
    reason: problems[0]!.reason,
    message: shortenMessage(
      `${parts.join('; ')}: its secret is not copied here, and images that need it cannot be pulled`,
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
