/**
 * Whether a PrePulledImage's puller DaemonSet would run a pod on a node, as
 * the DaemonSet controller decides it: Linux only, the node selector, the
 * required node affinity, and the node's NoSchedule/NoExecute taints against
 * the pods' tolerations. The node gate needs this before any pod exists: a
 * node that just joined has none yet, and must not be released for that.
 * Pure.
 */
import { IMAGES_NOT_READY_TAINT, type PrePulledImage } from '../../api/prepulledimage.ts';
import type { Node, NodeSelectorRequirement, NodeSelectorTerm } from '../../kube/objects.ts';

type Taint = NonNullable<NonNullable<Node['spec']>['taints']>[number];
type Toleration = NonNullable<PrePulledImage['spec']['tolerations']>[number];

/**
 * Taints the DaemonSet controller tolerates for every DaemonSet pod (it adds
 * these tolerations itself), and the startup taint the puller pods tolerate.
 */
const ALWAYS_TOLERATED: ReadonlySet<string> = new Set([
  'node.kubernetes.io/not-ready',
  'node.kubernetes.io/unreachable',
  'node.kubernetes.io/disk-pressure',
  'node.kubernetes.io/memory-pressure',
  'node.kubernetes.io/pid-pressure',
  'node.kubernetes.io/unschedulable',
  IMAGES_NOT_READY_TAINT,
]);

/** Whether `ppi`'s puller pods would be scheduled to `node`. */
export function selectsNode(ppi: PrePulledImage, node: Node): boolean {
  const labels = node.metadata.labels ?? {};
  if (labels['kubernetes.io/os'] !== undefined && labels['kubernetes.io/os'] !== 'linux') return false;
  for (const [key, value] of Object.entries(ppi.spec.nodeSelector ?? {})) {
    if (labels[key] !== value) return false;
  }
  const terms = ppi.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
    ?.nodeSelectorTerms as NodeSelectorTerm[] | undefined;
  // Terms are ORed; an empty list of terms selects nothing, as in the API.
  if (terms !== undefined && !terms.some((term) => termMatches(term, node))) return false;
  const tolerations = ppi.spec.tolerations ?? [];
  return (node.spec?.taints ?? []).every(
    (taint) =>
      taint.effect === 'PreferNoSchedule' ||
      ALWAYS_TOLERATED.has(taint.key) ||
      tolerations.some((toleration) => tolerates(toleration, taint)),
  );
}

function termMatches(term: NodeSelectorTerm, node: Node): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  // A term with no requirement at all matches nothing.
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  return (
    expressions.every((r) => requirementMatches(r, labels[r.key])) &&
    fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, node.metadata.name))
  );
}

function requirementMatches(r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      const [limit] = values;
      if (value === undefined || limit === undefined) return false;
      const [a, b] = [Number.parseInt(value, 10), Number.parseInt(limit, 10)];
      if (Number.isNaN(a) || Number.isNaN(b)) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/** The scheduler's rule: key (empty with Exists: every key), operator, value, and effect (empty: every effect). */
function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.operator === 'Exists') return !toleration.key || toleration.key === taint.key;
  return toleration.key === taint.key && (toleration.value ?? '') === (taint.value ?? '');
}
