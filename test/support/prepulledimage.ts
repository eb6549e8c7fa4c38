/** Reading a PrePulledImage's status in the cluster tiers. */
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import { Resources } from '../../src/kube/resources.ts';

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
