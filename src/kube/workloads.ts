/**
 * What informers keep of workloads (Deployments, StatefulSets, DaemonSets,
 * Jobs, CronJobs, Pods) for spec.imagesFrom: name, namespace, labels, the
 * images of the pod template's containers and init containers, its pull
 * secrets and ServiceAccount, and whether a controller owns it. A Deployment
 * is kilobytes; this is a few hundred bytes, so thousands of workloads keep
 * the operator's memory flat. Pure.
 */
import type { KubeObject, ObjectMeta, PodSpec } from './objects.ts';
import { intern } from './slim.ts';

/** A workload as {@link slimWorkload} keeps it. */
export interface SlimWorkload extends KubeObject {
  metadata: Pick<ObjectMeta, 'name' | 'namespace' | 'uid' | 'resourceVersion' | 'labels'>;
  /** The pod template's images: containers, then init containers, in order, repeats kept. */
  images: string[];
  /** The pod template's imagePullSecrets names. */
  pullSecrets: string[];
  /** The pod template's ServiceAccount; absent means `default`. */
  serviceAccountName?: string;
  /** Owned by a controller (a Pod of a ReplicaSet, a Job of a CronJob): its owner is read instead. */
  controlled?: true;
}

interface PodTemplateHolder extends KubeObject {
  spec?: {
    template?: { spec?: PodSpec };
    jobTemplate?: { spec?: { template?: { spec?: PodSpec } } };
  } & Partial<PodSpec>;
}

/**
 * The pod spec of any workload kind: a Pod's own spec, a CronJob's job
 * template's, otherwise the template's.
 */
function podSpecOf(obj: PodTemplateHolder): Partial<PodSpec> | undefined {
  if (obj.kind === 'Pod') return obj.spec;
  return obj.spec?.jobTemplate?.spec?.template?.spec ?? obj.spec?.template?.spec;
}

/** The images and pull secrets of a controlled workload: one shared empty list, never written to. */
const NONE: string[] = Object.freeze([]) as unknown as string[];

/**
 * The informer's transform for every workload kind. Ephemeral containers are
 * left out: they are debugging sessions added to a running pod, not what the
 * workload needs on a new node. The kind must be set on the object (lists
 * and watches of one type carry it on every item the client returns).
 */
export function slimWorkload(kind: string): (obj: KubeObject) => SlimWorkload {
  return (obj) => {
    const { name, namespace, uid, resourceVersion, labels, ownerReferences } = obj.metadata;
    const metadata: SlimWorkload['metadata'] = {};
    if (name !== undefined) metadata.name = name;
    if (namespace !== undefined) metadata.namespace = intern(namespace);
    if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
    // A controlled workload is never read, so nothing of it is kept but its key and
    // version (for the cache) and that it is controlled: most pods are such, and at
    // thousands of nodes the puller pods alone are thousands of them.
    const controlled = ownerReferences?.some((o) => o.controller === true) ?? false;
    if (controlled) return { kind, metadata, images: NONE, pullSecrets: NONE, controlled: true };
    if (uid !== undefined) metadata.uid = uid;
    if (labels !== undefined) metadata.labels = labels;
    const spec = podSpecOf({ ...obj, kind } as PodTemplateHolder);
    const images = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])].flatMap((c) =>
      typeof c.image === 'string' && c.image !== '' ? [c.image] : [],
    );
    const pullSecrets = ((spec?.imagePullSecrets as Array<{ name?: string }> | undefined) ?? []).flatMap(
      (s) => (typeof s.name === 'string' && s.name !== '' ? [s.name] : []),
    );
    const slim: SlimWorkload = { kind, metadata, images, pullSecrets };
    const serviceAccount = spec?.serviceAccountName;
    if (typeof serviceAccount === 'string' && serviceAccount !== '') slim.serviceAccountName = serviceAccount;
    return slim;
  };
}
