/**
 * Whether a RegistryCredential serves a PrePulledImage's request for its
 * secret (spec.registryCredentials), kept below both kinds: the
 * RegistryCredential's targets follow it, and the PrePulledImage's status
 * says when a request is refused. Pure.
 */
import type { LabelSelector } from '../api/common.ts';
import type { RegistryCredentialSpec } from '../api/registrycredential.ts';
import type { Namespace } from '../kube/objects.ts';

/**
 * Whether `labels` match a Kubernetes label selector: every matchLabels pair
 * and every expression must hold. An empty selector matches everything, as
 * in the API.
 */
export function matchesLabelSelector(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (operator) {
      case 'In':
        if (!has || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * Whether a PrePulledImage in `namespace` may make it a target by naming the
 * RegistryCredential in spec.registryCredentials: only where
 * `target.allowRequestsFrom` selects it. Without that field no namespace may,
 * so creating a PrePulledImage never hands a team a secret the cluster admin
 * did not mean for it.
 */
export function allowsRequestFrom(spec: RegistryCredentialSpec, namespace: Namespace): boolean {
  const allowed = spec.target.allowRequestsFrom;
  return allowed !== undefined && matchesLabelSelector(allowed.namespaceSelector, namespace.metadata.labels);
}
