/**
 * spec.imagesFrom: the images a PrePulledImage takes from workloads. Which
 * namespaces an object may read (its own; another only if that namespace's
 * `prepull.dev/images-readable-by` annotation grants it), which workloads
 * there it selects, their images normalised and deduplicated after
 * spec.images and capped, the pull secrets of those in its own namespace
 * (their own and their ServiceAccount's), and where each image came from.
 * The controller and the node gate both see the object with these images
 * added ({@link withWorkloadImages}), so rendering, status and the gate need
 * not know where an image came from. Pure over a read-only view of caches.
 */

import { Reason } from '../../api/conditions.ts';
import {
  IMAGES_READABLE_BY_ANNOTATION,
  type ImageEntry,
  MAX_IMAGES,
  MAX_STATUS_NAMESPACES,
  MAX_STATUS_OMITTED,
  MAX_STATUS_SOURCES,
  MAX_WORKLOAD_PULL_SECRETS,
  type PrePulledImage,
  type PrePulledImageStatus,
  WORKLOAD_KINDS,
  type WorkloadKind,
} from '../../api/prepulledimage.ts';
import { normalizeImageReference } from '../../image/reference.ts';
import type { Namespace, ServiceAccount } from '../../kube/objects.ts';
import type { SlimWorkload } from '../../kube/workloads.ts';
import { ClassifiedError } from '../../runtime/failure.ts';
import { matchesLabelSelector } from '../requests.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME } from './labels.ts';

/** The caches a plan reads. */
export interface WorkloadView {
  namespaces(): Namespace[];
  namespace(name: string): Namespace | undefined;
  /** The slim workloads of one kind in one namespace. */
  workloadsIn(kind: WorkloadKind, namespace: string): SlimWorkload[];
  serviceAccount(namespace: string, name: string): ServiceAccount | undefined;
}

/** What spec.imagesFrom adds to an object now. */
export interface ImagesFromPlan {
  /** Workload images not in spec.images, normalised, sorted, within the cap. */
  entries: ImageEntry[];
  /** Normalised image → the workloads using it, `Kind namespace/name`, sorted. */
  sources: Map<string, string[]>;
  /** Pull secrets of the selected workloads in the object's own namespace, sorted, capped. */
  pullSecrets: string[];
  summary: NonNullable<PrePulledImageStatus['imagesFrom']>;
}

/**
 * Whether `namespace` lets PrePulledImages of `reader` read its workloads:
 * its own namespace always; another only if its annotation lists `reader`
 * (or is `*`). A namespaced object grants nothing beyond its namespace, so
 * the grant sits on the namespace read, where only someone who may annotate
 * namespaces can put it.
 */
export function grantsReadTo(namespace: Namespace, reader: string): boolean {
  if (namespace.metadata.name === reader) return true;
  const grant = namespace.metadata.annotations?.[IMAGES_READABLE_BY_ANNOTATION];
  if (grant === undefined) return false;
  return grant
    .split(',')
    .map((s) => s.trim())
    .some((name) => name === '*' || name === reader);
}

/** The namespaces an object reads (sorted), and how many more its selector selects without a grant. */
export function readableNamespaces(
  ppi: PrePulledImage,
  namespaces: Namespace[],
): { read: string[]; notGranted: number } {
  const own = ppi.metadata.namespace ?? '';
  const selector = ppi.spec.imagesFrom?.namespaceSelector;
  if (!selector) return { read: [own], notGranted: 0 };
  const read: string[] = [];
  let notGranted = 0;
  for (const ns of namespaces) {
    if (!matchesLabelSelector(selector, ns.metadata.labels)) continue;
    if (grantsReadTo(ns, own)) read.push(ns.metadata.name ?? '');
    else notGranted++;
  }
  return { read: read.sort(), notGranted };
}

/** Whether an object reads workloads of `namespace` (for routing workload events). */
export function readsNamespace(ppi: PrePulledImage, namespace: string, ns: Namespace | undefined): boolean {
  const from = ppi.spec.imagesFrom;
  if (!from) return false;
  const own = ppi.metadata.namespace ?? '';
  if (!from.namespaceSelector) return namespace === own;
  return (
    ns !== undefined &&
    matchesLabelSelector(from.namespaceSelector, ns.metadata.labels) &&
    grantsReadTo(ns, own)
  );
}

/** A Prepull puller DaemonSet, or a workload some controller owns (read through its owner). */
function skipped(kind: WorkloadKind, workload: SlimWorkload): boolean {
  if (workload.controlled) return true;
  return kind === 'DaemonSet' && workload.metadata.labels?.[MANAGED_BY_LABEL] === MANAGER_NAME;
}

/** The plan for one object, or undefined without spec.imagesFrom. */
export function planImagesFrom(ppi: PrePulledImage, view: WorkloadView): ImagesFromPlan | undefined {
  const from = ppi.spec.imagesFrom;
  if (!from) return undefined;
  const own = ppi.metadata.namespace ?? '';
  const { read, notGranted } = from.namespaceSelector
    ? readableNamespaces(ppi, view.namespaces())
    : { read: view.namespace(own) ? [own] : [], notGranted: 0 };
  const selector = from.selector ?? {};
  const kinds = from.kinds ?? WORKLOAD_KINDS;

  const sources = new Map<string, string[]>();
  const secrets = new Set<string>();
  let workloads = 0;
  let unparsable = 0;
  for (const namespace of read) {
    for (const kind of kinds) {
      for (const workload of view.workloadsIn(kind, namespace)) {
        if (skipped(kind, workload) || !matchesLabelSelector(selector, workload.metadata.labels)) continue;
        workloads++;
        const source = `${kind} ${namespace}/${workload.metadata.name}`;
        for (const image of workload.images) {
          let ref: string;
          try {
            ref = normalizeImageReference(image);
          } catch {
            unparsable++;
            continue;
          }
          const list = sources.get(ref) ?? [];
          if (!list.includes(source)) list.push(source);
          sources.set(ref, list);
        }
        // Another namespace's secrets are not this one's to use: a pod names secrets of its own namespace only.
        if (namespace !== own) continue;
        for (const name of workload.pullSecrets) secrets.add(name);
        const account = view.serviceAccount(namespace, workload.serviceAccountName ?? 'default');
        for (const ref of account?.imagePullSecrets ?? []) if (ref.name) secrets.add(ref.name);
      }
    }
  }
  for (const list of sources.values()) list.sort();

  const explicit = new Set(ppi.spec.images.map((e) => normalizeOrKeep(e.image)));
  const room = Math.max(0, MAX_IMAGES - ppi.spec.images.length);
  const added = [...sources.keys()].filter((ref) => !explicit.has(ref)).sort();
  const kept = added.slice(0, room);
  const omitted = added.slice(room);
  const pullSecrets = [...secrets].sort().slice(0, MAX_WORKLOAD_PULL_SECRETS);

  const summary: ImagesFromPlan['summary'] = {
    namespaces: read.slice(0, MAX_STATUS_NAMESPACES),
    namespaceCount: read.length,
    workloads,
    images: sources.size,
  };
  if (notGranted > 0) summary.notGranted = notGranted;
  if (pullSecrets.length > 0) summary.pullSecrets = pullSecrets;
  if (omitted.length > 0) {
    summary.omitted = omitted.slice(0, MAX_STATUS_OMITTED);
    summary.omittedCount = omitted.length;
  }
  if (unparsable > 0) summary.unparsable = unparsable;
  return { entries: kept.map((image) => ({ image })), sources, pullSecrets, summary };
}

/**
 * The object as rendering, status and the gate see it: spec.images followed
 * by the plan's images, spec.imagePullSecrets followed by the workloads'.
 * Without a plan, the object itself.
 */
export function withWorkloadImages(ppi: PrePulledImage, plan: ImagesFromPlan | undefined): PrePulledImage {
  if (!plan) return ppi;
  const names = new Set((ppi.spec.imagePullSecrets ?? []).map((s) => s.name));
  const extra = plan.pullSecrets.filter((name) => !names.has(name)).map((name) => ({ name }));
  const imagePullSecrets = [...(ppi.spec.imagePullSecrets ?? []), ...extra];
  return {
    ...ppi,
    spec: {
      ...ppi.spec,
      images: [...ppi.spec.images, ...plan.entries],
      ...(imagePullSecrets.length > 0 && { imagePullSecrets }),
    },
  };
}

/**
 * The object, if it has an image to pull; else a terminal NoImages failure
 * (spec.imagesFrom selects no workload with an image yet). The object is
 * visited again when a workload it reads changes, and a DaemonSet applied
 * before stays as it was until then.
 */
export function requireImages(ppi: PrePulledImage): PrePulledImage {
  if (ppi.spec.images.length > 0) return ppi;
  throw new ClassifiedError({
    reason: Reason.NoImages,
    message: 'spec.imagesFrom selects no workload with an image, and spec.images lists none: nothing to pull',
    retry: false,
  });
}

/** Status with each image's sources and the imagesFrom summary. */
export function withImageSources(
  status: PrePulledImageStatus,
  plan: ImagesFromPlan | undefined,
): PrePulledImageStatus {
  if (!plan) return status;
  const images = status.images?.map((entry) => {
    const sources = plan.sources.get(entry.image);
    if (!sources) return entry;
    return { ...entry, sources: sources.slice(0, MAX_STATUS_SOURCES), sourceCount: sources.length };
  });
  return { ...status, ...(images && { images }), imagesFrom: plan.summary };
}

/**
 * Whether a workload's change can change any plan: a new or deleted one, or
 * other images, pull secrets, ServiceAccount or labels. A status update, a
 * scale, or a pod of a ReplicaSet costs nothing.
 */
export function workloadChanged(workload: SlimWorkload, previous: SlimWorkload | undefined): boolean {
  // A controlled workload (most pods) is never read: its coming and going changes nothing.
  if (workload.controlled && (previous === undefined || previous.controlled)) return false;
  if (previous === undefined) return true;
  return (
    JSON.stringify([
      workload.images,
      workload.pullSecrets,
      workload.serviceAccountName,
      workload.metadata.labels,
    ]) !==
    JSON.stringify([
      previous.images,
      previous.pullSecrets,
      previous.serviceAccountName,
      previous.metadata.labels,
    ])
  );
}

/** Whether a namespace's change can change any plan: its labels or its grant. */
export function namespaceChanged(ns: Namespace, previous: Namespace | undefined): boolean {
  if (previous === undefined) return true;
  return (
    JSON.stringify(ns.metadata.labels) !== JSON.stringify(previous.metadata.labels) ||
    ns.metadata.annotations?.[IMAGES_READABLE_BY_ANNOTATION] !==
      previous.metadata.annotations?.[IMAGES_READABLE_BY_ANNOTATION]
  );
}

function normalizeOrKeep(image: string): string {
  try {
    return normalizeImageReference(image);
  } catch {
    return image;
  }
}
