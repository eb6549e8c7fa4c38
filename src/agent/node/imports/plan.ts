/**
 * Which imports the agent owes its node: for every puller pod on the node that
 * truly is a PrePulledImage's (same namespace, labelled with its UID,
 * controlled by its DaemonSet), each tarball image of that object's spec,
 * with the import policy's verdict. What is imported is read from the
 * PrePulledImage, never from the pod, so a forged pod can ask for nothing its
 * namespace's own objects do not. Pure.
 */
import type { ImageEntry, PrePulledImage } from '../../../api/prepulledimage.ts';
import { OWNER_UID_LABEL } from '../../../controllers/prepulledimage/labels.ts';
import { archDaemonSetNameOf } from '../../../controllers/prepulledimage/platforms.ts';
import { ownerKeyOf } from '../../../controllers/prepulledimage/pods.ts';
import { daemonSetName } from '../../../controllers/prepulledimage/render.ts';
import { importRefusal, type LoadedImportPolicy, redirectPrefixes } from '../../../image/import-policy.ts';
import { normalizeImageReference } from '../../../image/reference.ts';
import type { KubeObject } from '../../../kube/objects.ts';
import { importFingerprint } from './report.ts';

/** One import the node needs. */
export interface ImportTask {
  /** `<uid>/<index>`. */
  key: string;
  uid: string;
  index: number;
  /** The PrePulledImage, `namespace/name`. */
  owner: string;
  namespace: string;
  /** Normalised, as the hold container names it. */
  image: string;
  tarball: NonNullable<ImageEntry['tarball']>;
  fingerprint: string;
  /** Why the policy refuses it, if it does. */
  refusal?: string;
  /** A url source: the policy's URL prefixes its redirects must stay within. */
  redirectWithin?: string[];
}

/** Whether `pod` is one of `ppi`'s puller pods. */
export function isPullerPodOf(ppi: PrePulledImage, pod: KubeObject): boolean {
  const { namespace, name, uid } = ppi.metadata;
  if (!namespace || !name || !uid) return false;
  if (pod.metadata.namespace !== namespace || pod.metadata.labels?.[OWNER_UID_LABEL] !== uid) return false;
  // Its own DaemonSet, or one of its architecture DaemonSets (platforms.ts).
  const names = [daemonSetName(name), archDaemonSetNameOf(ppi, pod)];
  return (
    pod.metadata.ownerReferences?.some(
      (o) => o.controller === true && o.kind === 'DaemonSet' && names.includes(o.name),
    ) ?? false
  );
}

/** The imports owed, in a stable order (by owner, then index). */
export function planImports(
  pods: readonly KubeObject[],
  prePulledImage: (key: string) => PrePulledImage | undefined,
  policy: LoadedImportPolicy,
): ImportTask[] {
  const tasks = new Map<string, ImportTask>();
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const owner = ownerKeyOf(pod);
    const ppi = owner ? prePulledImage(owner) : undefined;
    if (!owner || !ppi || !isPullerPodOf(ppi, pod)) continue;
    const uid = ppi.metadata.uid!;
    const namespace = ppi.metadata.namespace!;
    ppi.spec.images.forEach((entry, index) => {
      if (!entry.tarball) return;
      let image: string;
      try {
        image = normalizeImageReference(entry.image);
      } catch {
        return; // The controller reports the spec as invalid.
      }
      const refusal = importRefusal(policy, namespace, entry);
      const redirectWithin = redirectPrefixes(policy, namespace, entry);
      tasks.set(`${uid}/${index}`, {
        key: `${uid}/${index}`,
        uid,
        index,
        owner,
        namespace,
        image,
        tarball: entry.tarball,
        fingerprint: importFingerprint(entry),
        ...(refusal !== undefined && { refusal }),
        ...(redirectWithin.length > 0 && { redirectWithin }),
      });
    });
  }
  return [...tasks.values()].sort((a, b) =>
    a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : a.index - b.index,
  );
}
