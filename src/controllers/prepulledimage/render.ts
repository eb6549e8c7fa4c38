/**
 * The puller DaemonSet of a PrePulledImage: one pod per matching node whose
 * containers are the listed images, each running a tiny static `hold` binary
 * that sleeps. The kubelet pulls an image to start its container, and keeps it
 * because a running container uses it. Pure: same input, deep-equal output.
 */
import { createHash } from 'node:crypto';
import { ARCHIVE_AUDIENCE, archivePath, defaultAgentUrl } from '../../agent/node/imports/archive-protocol.ts';
import { API_VERSION } from '../../api/group.ts';
import { IMAGES_NOT_READY_TAINT, type ImageEntry, type PrePulledImage } from '../../api/prepulledimage.ts';
import { defaultPullPolicy, normalizeImageReference, type PullPolicy } from '../../image/reference.ts';
import type {
  Container,
  DaemonSet,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  PodSpec,
} from '../../kube/objects.ts';
import {
  MANAGED_BY_LABEL,
  MANAGER_NAME,
  NAME_LABEL,
  OWNER_ANNOTATION,
  OWNER_UID_LABEL,
  PULL_SLOT_GATE,
  PULLER_NAME,
  REFRESH_ROUND_ANNOTATION,
} from './labels.ts';
import { archiveContainerName, holdContainerName } from './protocol.ts';

/** What the controller knows besides the PrePulledImage itself. */
export interface RenderOptions {
  /**
   * The Prepull image (hold binary, archive sender) and, for volume claim
   * sources, the node agents' Service URL (default: cluster DNS's name in
   * prepull-system).
   */
  agent: { image: string; pullPolicy: PullPolicy; holdPath: string; archiveUrl?: string };
  /** Secret names to add to imagePullSecrets besides spec.imagePullSecrets (from spec.registryCredentials, resolved by the controller). */
  extraPullSecrets: string[];
  defaultPriorityClassName?: string;
  /**
   * With spec.refresh and no registry checks: the current refresh round
   * (refresh.ts). A new value rolls the pods. (With registry checks, the
   * controller pins the digests instead: pinning.ts.)
   */
  refreshRound?: number | string;
}

const NAME_PREFIX = 'ppi-';
/**
 * Pod names are the DaemonSet's name plus `-` and 5 random characters, and
 * must fit a 63-character label value (the `hostname` of the pod).
 */
const MAX_NAME_LENGTH = 57;
const HASH_LENGTH = 8;

const VOLUME_NAME = 'prepull';
const MOUNT_PATH = '/prepull';
const HOLD_COMMAND = `${MOUNT_PATH}/hold`;
/** The hold binary is tens of kilobytes; the cap keeps a bad agent image from filling the node. */
const VOLUME_SIZE_LIMIT = '4Mi';
/** Non-root, like distroless `nonroot`; any UID works because `hold` only sleeps. */
const RUN_AS_ID = 65532;
/** Volume claims holding archives are mounted read-only under here, each at its name. */
const CLAIMS_PATH = '/archives';
/** The projected token an archive sender shows the node agent. */
const TOKEN_VOLUME = 'agent-token';
const TOKEN_PATH = '/var/run/secrets/prepull.dev/agent';
/** The kubelet renews a projected token at 80% of its life. */
const TOKEN_SECONDS = 3600;
const LINUX: NodeSelectorRequirement = { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] };

/** DaemonSet name for a PrePulledImage: `ppi-<name>`, shortened with a hash suffix when too long. */
export function daemonSetName(ppiName: string): string {
  const full = `${NAME_PREFIX}${ppiName}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = createHash('sha256').update(ppiName).digest('hex').slice(0, HASH_LENGTH);
  // A name may contain `.`; `.-` is not a valid DNS subdomain, so trim separators before the suffix.
  const head = full.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/[-.]+$/, '');
  return `${head}-${hash}`;
}

/** Renders the puller DaemonSet. Throws InvalidImageReferenceError for an image the schema let through. */
export function renderPullDaemonSet(ppi: PrePulledImage, options: RenderOptions): DaemonSet {
  const { name, namespace, uid } = ppi.metadata;
  if (!name || !namespace || !uid) {
    throw new Error('renderPullDaemonSet needs a PrePulledImage with metadata.name, namespace and uid');
  }
  const labels = { [NAME_LABEL]: PULLER_NAME, [MANAGED_BY_LABEL]: MANAGER_NAME, [OWNER_UID_LABEL]: uid };
  const owner = `${namespace}/${name}`;
  const throttled = ppi.spec.maxConcurrentPulls !== undefined;

  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name: daemonSetName(name),
      namespace,
      labels: { ...labels },
      annotations: { [OWNER_ANNOTATION]: owner },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'PrePulledImage',
          name,
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      selector: { matchLabels: { [OWNER_UID_LABEL]: uid } },
      template: {
        metadata: {
          labels: { ...labels },
          annotations: {
            [OWNER_ANNOTATION]: owner,
            // Puller pods only keep images warm: the cluster autoscaler must
            // never keep a node alive for them, and DaemonSet pods block
            // scale-down unless they opt in to eviction.
            'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
            'cluster-autoscaler.kubernetes.io/enable-ds-eviction': 'true',
            ...(ppi.spec.refresh && options.refreshRound !== undefined
              ? { [REFRESH_ROUND_ANNOTATION]: String(options.refreshRound) }
              : {}),
          },
        },
        spec: renderPodSpec(ppi, options),
      },
      updateStrategy: {
        type: 'RollingUpdate',
        // Surge: a replacement pod (a spec edit, a refresh round) starts beside
        // the pod it replaces, which keeps holding the images, in use, until the
        // new one runs. Throttled: no more new pods at once than may pull at once.
        rollingUpdate: {
          maxSurge: throttled ? ppi.spec.maxConcurrentPulls : '100%',
          maxUnavailable: 0,
        },
      },
      revisionHistoryLimit: 2,
    },
  };
}

function renderPodSpec(ppi: PrePulledImage, options: RenderOptions): PodSpec {
  const { spec } = ppi;
  const resources = spec.resources ? jsonCopy(spec.resources) : smallResources();
  const pullSecrets = uniqueNames([
    ...(spec.imagePullSecrets ?? []).map((s) => s.name),
    ...options.extraPullSecrets,
  ]);
  const priorityClassName = spec.priorityClassName ?? options.defaultPriorityClassName;

  const podSpec: PodSpec = {
    initContainers: [
      {
        name: 'install-hold',
        image: options.agent.image,
        imagePullPolicy: options.agent.pullPolicy,
        command: [options.agent.holdPath, 'install', MOUNT_PATH],
        volumeMounts: [{ name: VOLUME_NAME, mountPath: MOUNT_PATH }],
        resources: smallResources(),
        securityContext: restrictedContainerSecurityContext(),
      },
    ],
    containers: [
      ...spec.images.map((entry, index) => renderImageContainer(entry, index, ppi, resources)),
      ...renderArchiveSenders(ppi, options),
    ],
    volumes: [{ name: VOLUME_NAME, emptyDir: { sizeLimit: VOLUME_SIZE_LIMIT } }, ...renderClaimVolumes(ppi)],
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_ID,
      runAsGroup: RUN_AS_ID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // The pods call no API and need no service discovery.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 5,
    affinity: renderAffinity(ppi),
  };
  if (pullSecrets.length > 0) podSpec.imagePullSecrets = pullSecrets.map((secret) => ({ name: secret }));
  if (spec.nodeSelector && Object.keys(spec.nodeSelector).length > 0) {
    podSpec.nodeSelector = jsonCopy(spec.nodeSelector);
  }
  // Puller pods are what a node held back by the startup taint waits for.
  podSpec.tolerations = [
    ...(spec.tolerations ? jsonCopy(spec.tolerations) : []),
    { key: IMAGES_NOT_READY_TAINT, operator: 'Exists', effect: 'NoSchedule' },
  ];
  if (priorityClassName) podSpec.priorityClassName = priorityClassName;
  if (spec.maxConcurrentPulls !== undefined) podSpec.schedulingGates = [{ name: PULL_SLOT_GATE }];
  return podSpec;
}

function renderImageContainer(
  entry: ImageEntry,
  index: number,
  ppi: PrePulledImage,
  resources: Record<string, unknown>,
): Container {
  // A tarball image is imported onto the node by the node agent (in Prepull's
  // own namespace), never pulled from a registry, so the kubelet must only
  // look for it locally; it starts the container once the image is there
  // (it retries ErrImageNeverPull). The pod itself stays unprivileged.
  // With a refresh, a tag is asked for again at every round: Always (a
  // digest cannot move, so it keeps the usual policy).
  const refreshTag = ppi.spec.refresh !== undefined && !entry.image.includes('@');
  const imagePullPolicy: PullPolicy = entry.tarball
    ? 'Never'
    : refreshTag
      ? 'Always'
      : (ppi.spec.pullPolicy ?? defaultPullPolicy(entry.image));
  return {
    name: holdContainerName(index),
    image: normalizeImageReference(entry.image),
    imagePullPolicy,
    command: [HOLD_COMMAND],
    volumeMounts: [{ name: VOLUME_NAME, mountPath: MOUNT_PATH, readOnly: true }],
    resources: jsonCopy(resources),
    securityContext: restrictedContainerSecurityContext(),
  };
}

/** Each distinct claim of the tarball sources, in order of first use: volume `claim-<k>`. */
function claimsOf(ppi: PrePulledImage): string[] {
  const names = ppi.spec.images.flatMap((e) => e.tarball?.persistentVolumeClaim?.claimName ?? []);
  return [...new Set(names)];
}

function renderClaimVolumes(ppi: PrePulledImage): Record<string, unknown>[] {
  const claims = claimsOf(ppi);
  if (claims.length === 0) return [];
  return [
    ...claims.map((claimName, k) => ({
      name: `claim-${k}`,
      persistentVolumeClaim: { claimName, readOnly: true },
    })),
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: ARCHIVE_AUDIENCE,
              expirationSeconds: TOKEN_SECONDS,
              path: 'token',
            },
          },
        ],
      },
    },
  ];
}

/**
 * For each image from a volume claim, a container that sends the archive to
 * its node's agent and then waits (the tenant's pod reads the tenant's claim;
 * the agent, in Prepull's namespace, imports).
 */
function renderArchiveSenders(ppi: PrePulledImage, options: RenderOptions): Container[] {
  const claims = claimsOf(ppi);
  const base = (options.agent.archiveUrl ?? defaultAgentUrl('prepull-system')).replace(/\/+$/, '');
  return ppi.spec.images.flatMap((entry, index): Container[] => {
    const source = entry.tarball?.persistentVolumeClaim;
    if (!source) return [];
    const k = claims.indexOf(source.claimName);
    const root = `${CLAIMS_PATH}/${source.claimName}`;
    return [
      {
        name: archiveContainerName(index),
        image: options.agent.image,
        imagePullPolicy: options.agent.pullPolicy,
        args: [
          'send-archive',
          `--root=${root}`,
          `--file=${source.path}`,
          `--to=${base}${archivePath(ppi.metadata.uid!, index)}`,
          `--token-file=${TOKEN_PATH}/token`,
        ],
        volumeMounts: [
          { name: `claim-${k}`, mountPath: root, readOnly: true },
          { name: TOKEN_VOLUME, mountPath: TOKEN_PATH, readOnly: true },
        ],
        resources: { requests: { cpu: '5m', memory: '32Mi' }, limits: { memory: '128Mi' } },
        securityContext: restrictedContainerSecurityContext(),
      },
    ];
  });
}

/** The puller runs a Linux binary, so every required term also demands a Linux node. */
function renderAffinity(ppi: PrePulledImage): Record<string, unknown> {
  const nodeAffinity = ppi.spec.affinity?.nodeAffinity;
  const terms: NodeSelectorTerm[] = nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
    ? jsonCopy(nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms)
    : [];
  // Terms are ORed, so the requirement must be added to each one.
  const required =
    terms.length === 0 ? [{ matchExpressions: [{ ...LINUX, values: ['linux'] }] }] : terms.map(withLinux);
  const rendered: Record<string, unknown> = {
    requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: required },
  };
  const preferred = nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
  if (preferred && preferred.length > 0) {
    rendered.preferredDuringSchedulingIgnoredDuringExecution = jsonCopy(preferred);
  }
  return { nodeAffinity: rendered };
}

function withLinux(term: NodeSelectorTerm): NodeSelectorTerm {
  const expressions = term.matchExpressions ?? [];
  const present = expressions.some(
    (e) =>
      e.key === LINUX.key &&
      e.operator === LINUX.operator &&
      e.values?.length === 1 &&
      e.values[0] === 'linux',
  );
  return {
    ...term,
    matchExpressions: present ? expressions : [...expressions, { ...LINUX, values: ['linux'] }],
  };
}

/** What PodSecurity "restricted" demands of every container. */
function restrictedContainerSecurityContext(): Record<string, unknown> {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
}

/** `hold` only sleeps; the request keeps it schedulable on full nodes, the limit keeps it honest. */
function smallResources(): Record<string, Record<string, string>> {
  return { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } };
}

function uniqueNames(names: string[]): string[] {
  return [...new Set(names)];
}

/**
 * A deep copy without `undefined`-valued keys: the result is sent as JSON by
 * server-side apply, and a later change by the caller must not leak into it.
 */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
