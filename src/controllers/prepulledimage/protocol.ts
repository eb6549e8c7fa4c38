/**
 * The puller-pod protocol, owned here and nowhere else: the names of a puller
 * pod's containers and a pod's age. Render writes it, status and the
 * pull-slot throttle read it. Pure.
 *
 * Containers: `image-<i>` holds image `i` of spec.images (a tiny `hold`
 * binary, so the kubelet keeps the image in use). A tarball image is imported
 * by the node agent, not by the pod (src/agent/node/imports). With a pinned
 * digest (pinning.ts), `image-<i>` names the digest and `tag-<i>` pulls the
 * tag itself, so containerd's tag name follows the content. A tarball image
 * from a volume claim has `archive-<i>`, which sends the archive to the node
 * agent (src/agent/node/imports/archive-protocol.ts).
 */

const HOLD_PREFIX = 'image-';
const TAG_PREFIX = 'tag-';
const ARCHIVE_PREFIX = 'archive-';

/** The container that holds image `index`. */
export function holdContainerName(index: number): string {
  return `${HOLD_PREFIX}${index}`;
}

/** The image index of a hold container, or undefined for another container. */
export function holdIndexOf(containerName: string): number | undefined {
  return indexAfter(HOLD_PREFIX, containerName);
}

/** The container that pulls image `index` by its tag, beside a hold container pinned to a digest. */
export function tagContainerName(index: number): string {
  return `${TAG_PREFIX}${index}`;
}

/** The image index of a tag container, or undefined for another container. */
export function tagIndexOf(containerName: string): number | undefined {
  return indexAfter(TAG_PREFIX, containerName);
}

/** The container that sends image `index`'s archive from its volume claim to the node agent. */
export function archiveContainerName(index: number): string {
  return `${ARCHIVE_PREFIX}${index}`;
}

function indexAfter(prefix: string, name: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/**
 * When the pod was created, in ms since the epoch; undefined when unknown.
 * Callers say what an unknown age means to them: status takes such a pod as
 * the oldest on its node (not known to be the replacement), the throttle
 * admits it last (not known to have waited longest).
 */
export function podCreatedAt(pod: { metadata: { creationTimestamp?: string } }): number | undefined {
  const time = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(time) ? undefined : time;
}
