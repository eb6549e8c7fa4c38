/**
 * Digest pinning (registry checks with spec.refresh): the puller pods name
 * each tag at the digest its last successful check resolved, so every node,
 * including one that joins later, pulls the same content, and a moved tag
 * changes the pod template once, which the DaemonSet rolls out (surge, in
 * waves of maxConcurrentPulls). A check that finds the tag where it was
 * changes nothing, so it replaces no pod.
 *
 * The trap: containerd stores no tag name for a pull of `repo:tag@digest` (it
 * keeps the digest only), so a workload naming the tag with IfNotPresent or
 * Never would not find it. Beside each pinned hold container, a `tag-<i>`
 * container pulls the tag itself (Always, so containerd's name moves with
 * it); the pinned one then finds the content already there.
 *
 * Pure.
 */
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { Container, DaemonSet } from '../../kube/objects.ts';
import { holdIndexOf, tagContainerName } from './protocol.ts';
import { checkedImages, type ImageResolution } from './resolution.ts';

/**
 * The digest each spec image is pinned to, aligned with spec.images: the last
 * resolved digest of a tag (no digest in the reference) under spec.refresh;
 * undefined for digest references, tarballs, images never resolved, and
 * objects without refresh (whose tags the kubelet resolves, as before).
 */
export function pinnedDigests(
  ppi: PrePulledImage,
  resolutions: readonly (ImageResolution | undefined)[] | undefined,
): (string | undefined)[] {
  const refs = checkedImages(ppi);
  if (!ppi.spec.refresh || !resolutions) return refs.map(() => undefined);
  return refs.map((ref, index) => (ref?.tag && !ref.digest ? resolutions[index]?.resolvedDigest : undefined));
}

/**
 * The rendered DaemonSet with its pinned images: `image-<i>` names
 * `repo:tag@digest` (IfNotPresent: a digest never moves), and a `tag-<i>`
 * container, otherwise the same, pulls `repo:tag` with Always. Images
 * without a pin are left as rendered.
 */
export function withPinnedImages(daemonSet: DaemonSet, digests: readonly (string | undefined)[]): DaemonSet {
  if (!digests.some((d) => d !== undefined)) return daemonSet;
  const podSpec = daemonSet.spec.template.spec;
  const containers = podSpec.containers as Container[];
  const tagContainers: Container[] = [];
  const pinned = containers.map((container) => {
    const index = holdIndexOf(container.name);
    const digest = index === undefined ? undefined : digests[index];
    if (index === undefined || digest === undefined || !container.image) return container;
    tagContainers.push({ ...container, name: tagContainerName(index), imagePullPolicy: 'Always' });
    return { ...container, image: `${container.image}@${digest}`, imagePullPolicy: 'IfNotPresent' };
  });
  return withPodSpec(daemonSet, { ...podSpec, containers: [...pinned, ...tagContainers] });
}

/** `daemonSet` with another pod spec in its template; the rest shared, not copied. */
export function withPodSpec(daemonSet: DaemonSet, spec: DaemonSet['spec']['template']['spec']): DaemonSet {
  return { ...daemonSet, spec: { ...daemonSet.spec, template: { ...daemonSet.spec.template, spec } } };
}

/** Whether `containerImage` is `image` as the spec names it, or pinned to a digest. */
export function namesImage(containerImage: string | undefined, image: string): boolean {
  return containerImage === image || (containerImage?.startsWith(`${image}@sha256:`) ?? false);
}
