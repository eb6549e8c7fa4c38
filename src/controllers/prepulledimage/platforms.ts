/**
 * Platforms known before any pull (registry checks): an image whose index or
 * lone manifest offers no linux/<arch> of a node is PlatformMismatch there,
 * and that node gets no container for it. A DaemonSet has one pod template,
 * so the images a node gets are set per architecture: the object's own
 * DaemonSet keeps every image and leaves out the architectures that lack one
 * (`kubernetes.io/arch NotIn`); each distinct set of images those
 * architectures do offer gets a DaemonSet of its own (`In`), owned by the
 * object too. When every architecture the object's nodes have offers every
 * image (the usual case), nothing changes: one DaemonSet, no arch term.
 * Nodes without the arch label are left to the kubelet, on the object's own
 * DaemonSet. Pure.
 */
import { createHash } from 'node:crypto';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { DaemonSet, Node, NodeSelectorTerm } from '../../kube/objects.ts';
import { OWNER_UID_LABEL } from './labels.ts';
import { withPodSpec } from './pinning.ts';
import { holdIndexOf, tagIndexOf } from './protocol.ts';
import type { ImageResolution } from './resolution.ts';
import { selectsNode } from './selection.ts';

const ARCH_LABEL = 'kubernetes.io/arch';
/** Label of an architecture DaemonSet and its pods: which architectures it serves. */
export const PLATFORM_GROUP_LABEL = 'prepull.dev/platform-group';
const PREFIX = 'ppa-';
const MAX_NAME_LENGTH = 57;
const HASH_LENGTH = 10;

/** Architectures whose nodes hold only some of the images, on a DaemonSet of their own. */
export interface ArchGroup {
  archs: string[];
  /** Indices into spec.images. */
  images: number[];
}

export interface PlatformPlan {
  /** Architectures the object's own DaemonSet leaves out: they lack at least one image. */
  excluded: string[];
  groups: ArchGroup[];
  /** Why image `index` is not held on a node of `arch`, or undefined when it is. */
  mismatch(index: number, arch: string | undefined): string | undefined;
}

/**
 * The plan for the nodes that exist now: only architectures that lack an
 * image matter, so a node's selection is only evaluated for those (in the
 * usual case, for none: a pass over 1000 nodes reads one label each).
 */
export function planForNodes(
  ppi: PrePulledImage,
  resolutions: readonly (ImageResolution | undefined)[] | undefined,
  nodes: Iterable<Node>,
): PlatformPlan {
  const lacking = new Map<string, boolean>();
  const archs = new Set<string>();
  for (const node of nodes) {
    const arch = node.metadata.labels?.[ARCH_LABEL];
    if (!arch || archs.has(arch)) continue;
    let lacks = lacking.get(arch);
    if (lacks === undefined) {
      lacks = planPlatforms(ppi, resolutions, [arch]).excluded.length > 0;
      lacking.set(arch, lacks);
    }
    if (lacks && selectsNode(ppi, node)) archs.add(arch);
  }
  return planPlatforms(ppi, resolutions, archs);
}

/** Whether an image offering `platforms` (`os/arch[/variant]`) runs on linux/`arch`; unknown offers do. */
function offers(platforms: readonly string[] | undefined, arch: string): boolean {
  if (!platforms || platforms.length === 0) return true;
  return platforms.some((p) => {
    const [os, a] = p.split('/');
    return os === 'linux' && a === arch;
  });
}

/** Which architectures get which images, from the checks' platforms and the nodes' architectures. */
export function planPlatforms(
  ppi: PrePulledImage,
  resolutions: readonly (ImageResolution | undefined)[] | undefined,
  archs: Iterable<string>,
): PlatformPlan {
  const platformsOf = (index: number) =>
    ppi.spec.images[index]?.tarball ? undefined : resolutions?.[index]?.platforms;
  const all = ppi.spec.images.map((_, index) => index);
  const byKey = new Map<string, ArchGroup>();
  const excluded: string[] = [];
  for (const arch of [...new Set(archs)].sort()) {
    const images = all.filter((index) => offers(platformsOf(index), arch));
    if (images.length === all.length) continue;
    excluded.push(arch);
    if (images.length === 0) continue;
    const key = images.join(',');
    const group = byKey.get(key) ?? { archs: [], images };
    group.archs.push(arch);
    byKey.set(key, group);
  }
  return {
    excluded,
    groups: [...byKey.values()],
    mismatch(index, arch) {
      const platforms = platformsOf(index);
      if (arch === undefined || offers(platforms, arch)) return undefined;
      return `the image offers ${platforms?.join(', ')}; the node is linux/${arch}`;
    },
  };
}

/** The name of an architecture DaemonSet: its own prefix, so no object's DaemonSet name can take it. */
export function archDaemonSetName(ppi: PrePulledImage, archs: readonly string[]): string {
  const hash = createHash('sha256')
    .update(`${ppi.metadata.uid ?? ''} ${archs.join(',')}`)
    .digest('hex')
    .slice(0, HASH_LENGTH);
  const head = `${PREFIX}${ppi.metadata.name ?? ''}`.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1);
  return `${head.replace(/[-.]+$/, '')}-${hash}`;
}

/**
 * The name of the architecture DaemonSet a pod's platform-group label names,
 * for `ppi`; undefined for a pod without the label (one of the object's own
 * DaemonSet, or none of its).
 */
export function archDaemonSetNameOf(
  ppi: PrePulledImage,
  pod: { metadata: { labels?: Record<string, string> } },
): string | undefined {
  const label = pod.metadata.labels?.[PLATFORM_GROUP_LABEL];
  return label ? archDaemonSetName(ppi, label.split('_')) : undefined;
}

/**
 * The object's DaemonSets under `plan`: first its own (every image, the
 * excluded architectures left out), then one per group, with that group's
 * containers only.
 */
export function splitByPlatform(ppi: PrePulledImage, daemonSet: DaemonSet, plan: PlatformPlan): DaemonSet[] {
  if (plan.excluded.length === 0) return [daemonSet];
  const main = withArchTerm(daemonSet, { key: ARCH_LABEL, operator: 'NotIn', values: plan.excluded });
  const groups = plan.groups.map((group) => {
    const keep = new Set(group.images);
    const kept = (name: string) => {
      const index = holdIndexOf(name) ?? tagIndexOf(name);
      return index === undefined || keep.has(index);
    };
    const podSpec = daemonSet.spec.template.spec;
    const label = group.archs.join('_');
    const labels = { ...daemonSet.spec.template.metadata.labels, [PLATFORM_GROUP_LABEL]: label };
    const split: DaemonSet = {
      ...daemonSet,
      metadata: {
        ...daemonSet.metadata,
        name: archDaemonSetName(ppi, group.archs),
        labels: { ...daemonSet.metadata.labels, [PLATFORM_GROUP_LABEL]: label },
      },
      spec: {
        ...daemonSet.spec,
        selector: {
          matchLabels: { [OWNER_UID_LABEL]: ppi.metadata.uid ?? '', [PLATFORM_GROUP_LABEL]: label },
        },
        template: {
          metadata: { ...daemonSet.spec.template.metadata, labels },
          spec: {
            ...podSpec,
            containers: podSpec.containers.filter((c) => kept(c.name)),
          },
        },
      },
    };
    return withArchTerm(split, { key: ARCH_LABEL, operator: 'In', values: group.archs });
  });
  return [main, ...groups];
}

/**
 * The object's DaemonSets seen as one, for what reads a single DaemonSet's
 * status (the throttle's and status's node counts): desired nodes summed,
 * observed only when every one has observed its latest spec.
 */
export function combinedDaemonSet(daemonSets: readonly DaemonSet[]): DaemonSet | undefined {
  const [main, ...rest] = daemonSets;
  if (!main || rest.length === 0) return main;
  const sum = (pick: (s: NonNullable<DaemonSet['status']>) => number | undefined) =>
    daemonSets.reduce((n, ds) => n + (ds.status ? (pick(ds.status) ?? 0) : 0), 0);
  const observed = daemonSets.every(
    (ds) => (ds.status?.observedGeneration ?? -1) >= (ds.metadata.generation ?? 0),
  );
  return {
    ...main,
    metadata: { ...main.metadata, generation: 1 },
    status: {
      observedGeneration: observed ? 1 : 0,
      desiredNumberScheduled: sum((s) => s.desiredNumberScheduled),
      currentNumberScheduled: sum((s) => s.currentNumberScheduled),
      numberReady: sum((s) => s.numberReady),
    },
  };
}

/** Adds `requirement` to every required node affinity term of the pod template (terms are ORed). */
function withArchTerm(
  daemonSet: DaemonSet,
  requirement: { key: string; operator: string; values: string[] },
): DaemonSet {
  const podSpec = daemonSet.spec.template.spec;
  const affinity = (podSpec.affinity ?? {}) as {
    nodeAffinity?: {
      requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
    };
  };
  const terms = affinity.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [
    {},
  ];
  const nodeSelectorTerms = terms.map((term) => ({
    ...term,
    matchExpressions: [...(term.matchExpressions ?? []), requirement],
  }));
  return withPodSpec(daemonSet, {
    ...podSpec,
    affinity: {
      ...affinity,
      nodeAffinity: {
        ...affinity.nodeAffinity,
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms },
      },
    },
  });
}
