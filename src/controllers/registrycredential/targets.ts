/**
 * Which namespaces a RegistryCredential's secret belongs in. Pure: the
 * controller passes what its caches hold.
 */
import type { LabelSelector } from '../../api/common.ts';
import type { RegistryCredentialSpec } from '../../api/registrycredential.ts';
import { isTerminating, type Namespace } from '../../kube/objects.ts';
import { compareStrings } from '../../runtime/order.ts';

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

export interface TargetInput {
  spec: RegistryCredentialSpec;
  /** Every namespace that exists. */
  namespaces: Iterable<Namespace>;
  /** Namespaces holding a PrePulledImage that names this RegistryCredential. */
  requestedBy: ReadonlySet<string>;
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

/**
 * The namespaces of `requestedBy` whose request the RegistryCredential
 * allows, sorted; excluded and terminating namespaces left out, as in
 * {@link selectTargetNamespaces}.
 */
export function allowedRequesters(input: TargetInput): string[] {
  const excluded = new Set(input.spec.target.excludeNamespaces ?? []);
  const out: string[] = [];
  for (const namespace of input.namespaces) {
    const name = namespace.metadata.name ?? '';
    if (!input.requestedBy.has(name) || excluded.has(name) || isTerminating(namespace)) continue;
    if (allowsRequestFrom(input.spec, namespace)) out.push(name);
  }
  return out.sort(compareStrings);
}

/**
 * The namespaces that get the copy, sorted: those the selector matches, those
 * listed, and those whose PrePulledImages ask for it where
 * `allowRequestsFrom` allows them. Exclusions win over all three;
 * terminating namespaces are skipped; and the source's own namespace is
 * skipped when the copy would have the source's name (it would be the source).
 */
export function selectTargetNamespaces(input: TargetInput): string[] {
  const { target, source } = input.spec;
  const listed = new Set(target.namespaces ?? []);
  const excluded = new Set(target.excludeNamespaces ?? []);
  const out: string[] = [];
  for (const namespace of input.namespaces) {
    const name = namespace.metadata.name ?? '';
    if (excluded.has(name) || isTerminating(namespace)) continue;
    if (name === source.secretRef.namespace && target.secretName === source.secretRef.name) continue;
    const selected =
      listed.has(name) ||
      (input.requestedBy.has(name) && allowsRequestFrom(input.spec, namespace)) ||
      (target.namespaceSelector !== undefined &&
        matchesLabelSelector(target.namespaceSelector, namespace.metadata.labels));
    if (selected) out.push(name);
  }
  return out.sort(compareStrings);
}
