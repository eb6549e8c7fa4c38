/** Reading a PrePulledImage's status in the cluster tiers, and asking it for a refresh. */
import { type PrePulledImage, REFRESH_REQUESTED_ANNOTATION } from '../../src/api/prepulledimage.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { Resources } from '../../src/kube/resources.ts';
import { type KubectlTarget, kubectl } from './kubectl.ts';

export async function getPrePulledImage(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<PrePulledImage> {
  const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, name, namespace);
  if (!ppi) throw new Error(`PrePulledImage ${namespace}/${name} not found`);
  return ppi;
}

/** One image's state on one node, as the status reports it. */
export function nodeImageState(ppi: PrePulledImage, nodeName: string, image: string) {
  return ppi.status?.nodes?.find((n) => n.name === nodeName)?.images?.find((i) => i.image === image);
}

/** Asks the PrePulledImage for a refresh now, as a user would: `kubectl annotate` with `value` (the time by default). */
export function requestRefresh(
  cluster: KubectlTarget,
  namespace: string,
  name: string,
  value = new Date().toISOString(),
): void {
  const run = kubectl(cluster, [
    'annotate',
    'ppi',
    name,
    '-n',
    namespace,
    '--overwrite',
    `${REFRESH_REQUESTED_ANNOTATION}=${value}`,
  ]);
  if (run.status !== 0) throw new Error(`kubectl annotate ppi ${name}: ${run.stderr}`);
}
