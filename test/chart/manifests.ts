/**
 * Rendered manifests made comparable: `helm template` and `kubectl kustomize`
 * output parsed into objects, Helm's own bookkeeping labels dropped, keys and
 * objects in a stable order. Pure.
 */
import { parseAllDocuments } from 'yaml';

/** Labels Helm adds that a kustomize install does not carry. */
const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by'];
/** Annotations for Helm alone (what `helm uninstall` keeps), which kubectl ignores. */
const HELM_ANNOTATIONS = ['helm.sh/resource-policy'];

export interface Manifest {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Every object of a multi-document YAML stream, comments and empty documents left out. */
export function parseManifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((object): object is Manifest => object !== null);
}

/** `Kind namespace/name` of each object, sorted: what a diff names first. */
export function identities(objects: Manifest[]): string[] {
  return objects.map(identity).sort();
}

/** Objects keyed by identity with Helm's labels removed and keys sorted, ready for a deep comparison. */
export function normalizeManifests(objects: Manifest[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const object of objects) {
    const labels = { ...object.metadata.labels };
    for (const label of HELM_LABELS) delete labels[label];
    const { annotations: allAnnotations, ...metadata } = object.metadata;
    const annotations = { ...allAnnotations };
    for (const annotation of HELM_ANNOTATIONS) delete annotations[annotation];
    out[identity(object)] = sortKeys({
      ...object,
      metadata: { ...metadata, labels, ...(Object.keys(annotations).length > 0 && { annotations }) },
    });
  }
  return out;
}

function identity(object: Manifest): string {
  return `${object.kind} ${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}
