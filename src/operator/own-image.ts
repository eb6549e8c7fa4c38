/**
 * The image the puller pods copy `hold` from, referenced by digest: the
 * operator runs from the Prepull image, and the kubelet reports which content
 * its container runs (`status.containerStatuses[].imageID`, a
 * `repository@sha256:` reference). So a deployment by tag still gives every
 * puller pod the exact image the operator runs, which a moved or replaced tag
 * on a node cannot change, and no manifest has to be rewritten per release.
 * `pinnedOwnImage` is pure; `resolveOwnImage` reads the operator's own Pod
 * (a list by name, with the list and watch on pods the operator has anyway).
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.ts';
import type { Pod } from '../kube/objects.ts';
import { Resources } from '../kube/resources.ts';
import type { Clock } from '../runtime/clock.ts';

const DIGEST = /@(sha256:[a-f0-9]{64})$/;

/** What the operator's Pod says of `configured`: the reference by digest, or why there is none. */
export type OwnImage =
  | { pinned: true; image: string }
  | { pinned: false; image: string; why: string; cause: 'no-pod' | 'no-container' | 'no-digest' };

/**
 * `configured` by digest, from the status of the container of `pod` that runs
 * it: `name:tag@sha256:…` (the tag kept for people, the digest for the
 * runtime). A reference that has a digest already is kept as it is. When
 * `configured` is only the default (no --agent-image), the operator's own
 * image is meant: the pod's only container counts too, whatever it names
 * (a mirror, or a digest a kustomization pinned).
 */
export function pinnedOwnImage(
  configured: string,
  pod: Pick<Pod, 'spec' | 'status'> | undefined,
  explicit = true,
): OwnImage {
  if (DIGEST.test(configured)) return { pinned: true, image: configured };
  if (!pod) {
    return { pinned: false, image: configured, why: "the operator's pod was not found", cause: 'no-pod' };
  }
  const containers = pod.spec?.containers ?? [];
  const container =
    containers.find((c) => c.image === configured) ??
    (!explicit && containers.length === 1 ? containers[0] : undefined);
  if (!container) {
    return {
      pinned: false,
      image: configured,
      why: `no container of the operator's pod runs ${configured}`,
      cause: 'no-container',
    };
  }
  const image = container.image ?? configured;
  if (DIGEST.test(image)) return { pinned: true, image };
  const status = pod.status?.containerStatuses?.find((s) => s.name === container.name);
  const digest = DIGEST.exec(status?.imageID?.replace(/^docker-pullable:\/\//, '') ?? '')?.[1];
  if (!digest) {
    return {
      pinned: false,
      image,
      why: `the kubelet reports no repository digest for ${image} (imageID ${JSON.stringify(status?.imageID ?? '')})`,
      cause: 'no-digest',
    };
  }
  return { pinned: true, image: `${image}@${digest}` };
}

export interface ResolveOwnImageOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  /** The operator's Pod (POD_NAMESPACE, POD_NAME); undefined outside a pod. */
  pod: { namespace: string; name: string } | undefined;
  configured: string;
  /** Whether `configured` was given (--agent-image) rather than the default. */
  explicit: boolean;
  /** How long to wait for the kubelet to report the container's image. */
  timeoutMs: number;
}

/**
 * {@link pinnedOwnImage} over the operator's Pod, read until its container
 * reports an image or `timeoutMs` passes; then the configured reference, with
 * a warning saying why.
 */
export async function resolveOwnImage(options: ResolveOwnImageOptions): Promise<string> {
  const { client, clock, log, configured } = options;
  const deadline = clock.now() + options.timeoutMs;
  let own = pinnedOwnImage(configured, undefined);
  if (!options.pod && !own.pinned) {
    log.warn({ image: configured }, 'not in a pod: puller pods copy hold from the image as configured');
    return configured;
  }
  while (options.pod && !own.pinned) {
    const { namespace, name } = options.pod;
    let pod: Pod | undefined;
    try {
      const listed = await client.list<Pod>(Resources.pods, {
        namespace,
        fieldSelector: `metadata.name=${name}`,
      });
      pod = listed.items[0];
    } catch (err) {
      log.warn({ err: { message: String(err) } }, "reading the operator's own pod failed; trying again");
    }
    own = pinnedOwnImage(configured, pod, options.explicit);
    // A container of another image will not change; a status the kubelet has not written yet will.
    if (own.pinned || own.cause === 'no-container' || clock.now() >= deadline) break;
    await new Promise<void>((resolve) => clock.schedule(1_000, resolve));
  }
  if (own.pinned) log.info({ image: own.image }, 'puller pods copy hold from the image by digest');
  else
    log.warn({ image: own.image, why: own.why }, 'puller pods copy hold from the image by tag, not digest');
  return own.image;
}
