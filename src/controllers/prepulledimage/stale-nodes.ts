/**
 * Stale nodes (registry checks with spec.refresh): a node is stale while it
 * holds a tag at another digest than the last check resolved, and no pod of
 * it holds the resolved one yet. Nothing here replaces a pod: the pod
 * template names the resolved digest (pinning.ts), so a moved tag is one
 * DaemonSet rollout, whose surge keeps every node's old pod, and its images,
 * until the new one runs. Status shows the count while the rollout moves.
 * Pure.
 */
import type { ImageReference } from '../../image/reference.ts';
import type { PullerPod } from './pods.ts';
import { holdContainerName } from './protocol.ts';
import type { ImageResolution } from './resolution.ts';
import { digestOf, podNodeName } from './status.ts';

export interface StaleNodeInput {
  /** The object's puller pods, as the cache shows them. */
  pods: readonly PullerPod[];
  /** The images, aligned with spec.images: undefined for tarballs and unparsable references. */
  refs: readonly (ImageReference | undefined)[];
  /** The checks, aligned with spec.images. */
  resolutions: readonly (ImageResolution | undefined)[];
}

/**
 * The stale nodes, by name, sorted. A digest counts only when a check
 * resolved it (a failed check makes no node stale), and only a registry
 * digest in a container's `imageID` says what a node holds (kwok reports
 * none, so its nodes are never stale).
 */
export function staleNodes(input: StaleNodeInput): string[] {
  const held = new Map<string, Set<string>[]>();
  for (const pod of input.pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const node = podNodeName(pod);
    if (node === undefined) continue;
    const perImage = held.get(node) ?? input.refs.map(() => new Set<string>());
    input.refs.forEach((_, index) => {
      const status = pod.status?.containerStatuses?.find((s) => s.name === holdContainerName(index));
      if (status?.imageID?.includes('@')) perImage[index]?.add(digestOf(status.imageID));
    });
    held.set(node, perImage);
  }
  const stale: string[] = [];
  for (const [node, perImage] of held) {
    const behind = input.refs.some((ref, index) => {
      // Digest references never move, and tag+digest references keep their digest.
      if (!ref?.tag || ref.digest) return false;
      const resolution = input.resolutions[index];
      const resolved = resolution?.resolvedDigest;
      if (!resolved || resolution.registryCheck) return false;
      const digests = perImage[index] ?? new Set<string>();
      return digests.size > 0 && !digests.has(resolved);
    });
    if (behind) stale.push(node);
  }
  return stale.sort();
}
