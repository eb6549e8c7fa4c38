/**
 * PrePulledImage (prepull.dev/v1alpha1, namespaced, short name ppi): images and
 * the nodes that must hold them.
 */
import { z } from 'zod';
import { IMAGE_REFERENCE_PATTERN, normalizeImageReference } from '../image/reference.ts';
import {
  conditionsSchema,
  dnsLabel,
  dnsSubdomain,
  durationMs,
  labelSelectorSchema,
  localObjectReferenceSchema,
  noDotDotSegments,
  nodeAffinitySchema,
  patternedString,
  resourcesSchema,
  tolerationSchema,
} from './common.ts';
import type { Resource } from './object.ts';

/** Most images one object may list: each becomes a container of every puller pod. */
export const MAX_IMAGES = 64;

const sha256Hex = patternedString(/^[a-f0-9]{64}$/, 'must be 64 lower-case hex digits', { max: 64 });

const HTTP_NEEDS_SHA256 =
  'tarball.sha256 is required for a plain http:// url: nothing else proves what the node downloaded';

const CREDENTIALS_NEED_HTTPS =
  'tarball.credentialsSecretRef is only for an https:// url: a credential sent over plain http is readable on the way';

export const tarballSourceSchema = z
  .strictObject({
    url: patternedString(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL', { max: 2048 })
      .optional()
      .describe('Downloaded by each node (from inside the pod network), checked against sha256 when given.'),
    sha256: sha256Hex.optional().describe('SHA-256 of the file at url, as 64 lower-case hex digits.'),
    credentialsSecretRef: localObjectReferenceSchema
      .optional()
      .describe(
        "A Secret in this namespace with the download's credentials, for an https:// url: type kubernetes.io/basic-auth (keys username and password) for HTTP Basic, or a key token for a Bearer token. Prepull copies only the credential into its own namespace for the node agents; it never appears in status, Events, logs or pod specs.",
      ),
    hostPath: noDotDotSegments(
      patternedString(/^\//, 'must be an absolute path on the node', { max: 4096 }),
      'tarball.hostPath must not contain a .. segment',
    )
      .optional()
      .describe('An archive already on each node, e.g. /var/lib/images/app.tar.'),
    persistentVolumeClaim: z
      .strictObject({
        claimName: dnsSubdomain,
        path: noDotDotSegments(
          patternedString(/^[^/]/, 'must be a path relative to the volume root', { min: 1, max: 4096 }),
          'tarball.persistentVolumeClaim.path must stay inside the volume: no .. segment',
        ),
      })
      .optional()
      .describe(
        'An archive on a volume every node can mount read-only (ReadOnlyMany): claim and path in it.',
      ),
  })
  .refine((t) => !t.url?.startsWith('http://') || t.sha256 !== undefined, {
    message: HTTP_NEEDS_SHA256,
    path: ['sha256'],
  })
  .refine((t) => t.credentialsSecretRef === undefined || t.url?.startsWith('https://') === true, {
    message: CREDENTIALS_NEED_HTTPS,
    path: ['credentialsSecretRef'],
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '[has(self.url), has(self.hostPath), has(self.persistentVolumeClaim)].filter(x, x).size() == 1',
        message: 'tarball needs exactly one of url, hostPath or persistentVolumeClaim',
      },
      { rule: '!has(self.sha256) || has(self.url)', message: 'tarball.sha256 is only for a url source' },
      {
        rule: "!has(self.credentialsSecretRef) || (has(self.url) && self.url.startsWith('https://'))",
        message: CREDENTIALS_NEED_HTTPS,
      },
      {
        rule: "!has(self.url) || !self.url.startsWith('http://') || has(self.sha256)",
        message: HTTP_NEEDS_SHA256,
      },
    ],
  });
export type TarballSource = z.infer<typeof tarballSourceSchema>;

export const imageEntrySchema = z.strictObject({
  image: patternedString(
    new RegExp(IMAGE_REFERENCE_PATTERN),
    'must be an image reference like registry.example.com/team/app:1.2 or app@sha256:<64 hex digits>, with a lower-case repository',
    { min: 1, max: 512 },
  ).describe(
    'A tag or @sha256: digest reference, normalised like the kubelet does (nginx is docker.io/library/nginx:latest).',
  ),
  name: dnsLabel.optional().describe('A short name for this image in status and Events.'),
  tarball: tarballSourceSchema
    .optional()
    .describe(
      'Import the image from an archive (docker save, skopeo docker-archive or oci-archive, ctr export) into containerd on each node instead of pulling it. Exactly one of url, hostPath, persistentVolumeClaim.',
    ),
});
export type ImageEntry = z.infer<typeof imageEntrySchema>;

/**
 * Two entries that name one image once normalised (`nginx` and
 * `docker.io/library/nginx:latest`) would fight over one container image; the
 * CRD's CEL compares the text only, so this is the controller's check, and
 * its spec parse reports it as InvalidSpec.
 */
function refuseSameImageTwice(entries: ImageEntry[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (const [index, entry] of entries.entries()) {
    let normalized: string;
    try {
      normalized = normalizeImageReference(entry.image);
    } catch {
      continue; // The pattern reports a malformed reference.
    }
    const first = seen.get(normalized);
    if (first !== undefined && first !== entry.image) {
      ctx.addIssue({
        code: 'custom',
        path: [index, 'image'],
        message: `${entry.image} and ${first} are the same image (${normalized}); list it once`,
      });
    }
    seen.set(normalized, seen.get(normalized) ?? entry.image);
  }
}

/** Longest refresh interval: a month; a tag not looked at for longer needs no refresh. */
export const MAX_REFRESH_INTERVAL = '720h';

/**
 * The startup taint of a node that must not take workloads before its images
 * are there (spec.nodeReadiness): nodes register with it (kubelet
 * --register-with-taints, Karpenter startupTaints, a cluster-autoscaler
 * startup taint), puller pods tolerate it, and the controller removes it.
 */
export const IMAGES_NOT_READY_TAINT = 'prepull.dev/images-not-ready';
/**
 * On a node the controller released from {@link IMAGES_NOT_READY_TAINT} before
 * it held its images: why (`Timeout`, or the failure's reason).
 */
export const RELEASED_UNREADY_ANNOTATION = 'prepull.dev/released-unready';
/** How long a node is held back at most when spec.nodeReadiness.timeout is not set. */
export const DEFAULT_NODE_READINESS_TIMEOUT = '15m';
const MAX_NODE_READINESS_TIMEOUT = '24h';
const DURATION = /^([0-9]+(\.[0-9]+)?(s|m|h))+$/;

/** The workload kinds spec.imagesFrom reads images from. */
export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'Pod'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

/**
 * On a namespace: the namespaces (comma-separated names, or `*` for every
 * namespace) whose PrePulledImages may read its workloads' images through
 * spec.imagesFrom.namespaceSelector. Whoever may annotate the namespace (the
 * cluster admin, as a rule) grants it; without it only the namespace's own
 * PrePulledImages read its workloads.
 */
export const IMAGES_READABLE_BY_ANNOTATION = 'prepull.dev/images-readable-by';

/**
 * On a PrePulledImage: a request to refresh now, whatever the interval says
 * (`kubectl prepull refresh`, or `kubectl annotate` with any new value, e.g.
 * the time). With registry checks every tag is asked about at once, and a
 * moved one rolls; without them, with spec.refresh, the puller pods are
 * replaced and pull their tags again. Each new value is handled once:
 * status.lastHandledRefreshAt then holds it (Flux's requestedAt convention).
 */
export const REFRESH_REQUESTED_ANNOTATION = 'prepull.dev/refresh-requested-at';

export const imagesFromSchema = z.strictObject({
  namespaceSelector: labelSelectorSchema
    .optional()
    .describe(
      `Namespaces whose workloads are read. Default: this object's namespace only. Any other namespace is read only if its ${IMAGES_READABLE_BY_ANNOTATION} annotation names this namespace (or is *).`,
    ),
  selector: labelSelectorSchema
    .optional()
    .describe('Only workloads with these labels (of the workload object, not its pods). Default: all.'),
  kinds: z
    .array(z.enum(WORKLOAD_KINDS))
    .min(1)
    .max(WORKLOAD_KINDS.length)
    .optional()
    .meta({
      'x-kubernetes-validations': [
        { rule: 'self.all(k, self.exists_one(j, j == k))', message: 'each kind may be listed only once' },
      ],
    })
    .describe(
      'Workload kinds read: Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod (a Pod only if no controller owns it). Default: all.',
    ),
});
export type ImagesFrom = z.infer<typeof imagesFromSchema>;

export const maxConcurrentPullsSchema = z.union([z.number().int(), z.string().max(8)]).meta({
  'x-kubernetes-int-or-string': true,
  'x-kubernetes-validations': [
    {
      rule: "type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",
      message: 'maxConcurrentPulls must be a whole number of at least 1 or a percentage from 1% to 100%',
    },
  ],
});

const NEEDS_IMAGES = 'list at least one image, or take them from workloads with imagesFrom';

export const prePulledImageSpecSchema = z
  .strictObject({
    images: z
      .array(imageEntrySchema)
      .max(MAX_IMAGES)
      .meta({
        'x-kubernetes-validations': [
          {
            rule: 'self.all(a, self.exists_one(b, b.image == a.image))',
            message: 'each image may be listed only once',
          },
          {
            rule: 'self.all(a, !has(a.name) || self.exists_one(b, has(b.name) && b.name == a.name))',
            message: 'image names must be unique',
          },
        ],
      })
      .superRefine(refuseSameImageTwice)
      .default([])
      .describe('The images every selected node must hold (at least one, unless imagesFrom is set).'),
    imagesFrom: imagesFromSchema
      .optional()
      .describe(
        'Also hold the images of workloads (containers and init containers), pulled with their pull secrets when they are in this namespace; with images, up to 64 in all.',
      ),
    pullPolicy: z
      .enum(['IfNotPresent', 'Always'])
      .optional()
      .describe(
        "The kubelet's pull policy for every image; default as the kubelet: Always for :latest or no tag.",
      ),
    nodeSelector: z
      .record(z.string().max(317), z.string().max(63))
      .optional()
      .meta({ maxProperties: 64 })
      .describe('Only nodes with these labels. Default: every Linux node a normal pod could land on.'),
    affinity: z
      .strictObject({ nodeAffinity: nodeAffinitySchema.optional() })
      .optional()
      .describe('Node affinity of the puller pods.'),
    tolerations: z
      .array(tolerationSchema)
      .max(32)
      .optional()
      .describe('Tolerations of the puller pods, for tainted nodes.'),
    imagePullSecrets: z
      .array(localObjectReferenceSchema)
      .max(16)
      .optional()
      .describe('Pull secrets (kubernetes.io/dockerconfigjson) in this namespace.'),
    registryCredentials: z
      .array(localObjectReferenceSchema)
      .max(16)
      .optional()
      .describe(
        'RegistryCredentials whose secret is used; each copies its secret into this namespace for it.',
      ),
    maxConcurrentPulls: maxConcurrentPullsSchema
      .optional()
      .describe(
        'How many nodes pull at once: a number, or a percentage of the selected nodes. Default: all.',
      ),
    refresh: z
      .strictObject({
        interval: patternedString(/^([0-9]+(\.[0-9]+)?(s|m|h))+$/, 'must be a duration like 30m or 1h', {
          max: 32,
        })
          .meta({
            'x-kubernetes-validations': [
              {
                // Guarded so a malformed duration reports the pattern's message, not a CEL error.
                rule: "!self.matches(r'^([0-9]+(\\.[0-9]+)?(s|m|h))+$') || duration(self) >= duration('1m')",
                message: 'refresh.interval must be at least 1m',
              },
              {
                rule: `!self.matches(r'^([0-9]+(\\.[0-9]+)?(s|m|h))+$') || duration(self) <= duration('${MAX_REFRESH_INTERVAL}')`,
                message: `refresh.interval must be at most ${MAX_REFRESH_INTERVAL}`,
              },
            ],
          })
          .refine((interval) => (durationMs(interval) ?? 0) <= (durationMs(MAX_REFRESH_INTERVAL) ?? 0), {
            message: `refresh.interval must be at most ${MAX_REFRESH_INTERVAL}`,
          }),
      })
      .optional()
      .describe(
        'Every interval (at least 1m, at most 720h, counted from creation) the puller pods are replaced and pull their tags again with Always; a tag that moved is downloaded.',
      ),
    nodeReadiness: z
      .strictObject({
        taint: z
          .boolean()
          .describe(
            `Hold nodes that register with the ${IMAGES_NOT_READY_TAINT}:NoSchedule taint back from work until they hold these images: the controller removes the taint then.`,
          ),
        timeout: patternedString(DURATION, 'must be a duration like 15m', { max: 32 })
          .meta({
            'x-kubernetes-validations': [
              {
                rule: `!self.matches(r'^([0-9]+(\\.[0-9]+)?(s|m|h))+$') || (duration(self) >= duration('10s') && duration(self) <= duration('${MAX_NODE_READINESS_TIMEOUT}'))`,
                message: `nodeReadiness.timeout must be between 10s and ${MAX_NODE_READINESS_TIMEOUT}`,
              },
            ],
          })
          .refine(
            (t) => {
              const ms = durationMs(t) ?? 0;
              return ms >= 10_000 && ms <= (durationMs(MAX_NODE_READINESS_TIMEOUT) ?? 0);
            },
            { message: `nodeReadiness.timeout must be between 10s and ${MAX_NODE_READINESS_TIMEOUT}` },
          )
          .optional()
          .describe(
            `Fail open: a node still without its images this long after it registered (default ${DEFAULT_NODE_READINESS_TIMEOUT}), or whose images fail, is released anyway, with a Warning Event.`,
          ),
      })
      .optional()
      .describe('Keep new nodes from taking workloads until their images are there (a startup taint).'),
    priorityClassName: dnsSubdomain
      .optional()
      .describe("Priority class of the puller pods. Default: the operator's --default-priority-class."),
    resources: resourcesSchema
      .optional()
      .describe(
        'Resources of each hold container: cpu, memory and ephemeral-storage only, each at most 100m CPU, 128Mi memory and 1Gi ephemeral-storage. Default: 1m CPU and 4Mi memory requested.',
      ),
  })
  .refine((spec) => spec.images.length > 0 || spec.imagesFrom !== undefined, {
    message: NEEDS_IMAGES,
    path: ['images'],
  })
  .meta({
    'x-kubernetes-validations': [
      { rule: '(has(self.images) && size(self.images) > 0) || has(self.imagesFrom)', message: NEEDS_IMAGES },
    ],
  });
export type PrePulledImageSpec = z.infer<typeof prePulledImageSpecSchema>;

/** Most nodes listed one by one in status; the rest are counted. */
export const MAX_STATUS_NODES = 50;
/** Most platforms listed per image; indexes rarely offer more than a dozen. */
export const MAX_STATUS_PLATFORMS = 16;

/** Workloads named per image in status (the rest are counted). */
export const MAX_STATUS_SOURCES = 4;
/** Namespaces named in status.imagesFrom. */
export const MAX_STATUS_NAMESPACES = 16;
/** Left-out images named in status.imagesFrom. */
export const MAX_STATUS_OMITTED = 8;
/** Most pull secrets taken from workloads: the puller pod lists them all. */
export const MAX_WORKLOAD_PULL_SECRETS = 16;

export const nodeImageStateSchema = z.strictObject({
  image: z.string().max(512),
  state: z.enum(['Ready', 'Pulling', 'Pending', 'Failed']),
  digest: z.string().max(128).optional(),
  reason: z.string().max(64).optional(),
  message: z.string().max(512).optional(),
});

/** Nodes whose import-retry count status keeps; beyond, a node's back-off starts over. */
export const MAX_IMPORT_RETRY_NODES = 1000;

export const prePulledImageStatusSchema = z.strictObject({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditionsSchema.optional(),
  /** `ready/desired`, for the READY printer column. */
  ready: z.string().max(32).optional(),
  desiredNodes: z.number().int().min(0).optional(),
  readyNodes: z.number().int().min(0).optional(),
  pullingNodes: z.number().int().min(0).optional(),
  failedNodes: z.number().int().min(0).optional(),
  lastHandledRefreshAt: z
    .string()
    .max(256)
    .optional()
    .describe(
      'The value of the prepull.dev/refresh-requested-at annotation last handled: the refresh it asked for has been made.',
    ),
  staleNodes: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      'With registry checks and refresh: nodes whose puller pod holds a tag at another digest than the registry serves; their pods are being replaced, maxConcurrentPulls at a time.',
    ),
  images: z
    .array(
      z.strictObject({
        image: z.string().max(512),
        name: z.string().max(63).optional(),
        digests: z.array(z.string().max(128)).max(8).optional(),
        readyNodes: z.number().int().min(0),
        resolvedDigest: z
          .string()
          .max(128)
          .optional()
          .describe('The digest the registry serves for this tag now (a digest reference: its own digest).'),
        platforms: z
          .array(z.string().max(64))
          .max(MAX_STATUS_PLATFORMS)
          .optional()
          .describe('The platforms (os/architecture/variant) the resolved image offers.'),
        resolvedAt: z.string().max(32).optional().describe('When the registry was last asked.'),
        sources: z
          .array(z.string().max(340))
          .max(MAX_STATUS_SOURCES)
          .optional()
          .describe(
            'With imagesFrom: workloads that use this image, as Kind namespace/name (spec.images when listed there), the first few.',
          ),
        sourceCount: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe('With imagesFrom: how many workloads use this image in all.'),
        registryCheck: z
          .strictObject({ reason: z.string().max(64), message: z.string().max(512).optional() })
          .optional()
          .describe(
            'Why the registry could not tell the digest: Unauthorized, NotFound, RegistryUnavailable, …',
          ),
      }),
    )
    .max(MAX_IMAGES)
    .optional(),
  /** Nodes that are not ready, first; ready nodes only while the list is short. */
  nodes: z
    .array(
      z.strictObject({
        name: z.string().max(253),
        ready: z.boolean(),
        images: z.array(nodeImageStateSchema).max(MAX_IMAGES).optional(),
      }),
    )
    .max(MAX_STATUS_NODES)
    .optional(),
  /** Nodes left out of `nodes` to keep the status bounded. */
  nodesOmitted: z.number().int().min(0).optional(),
  /**
   * Nodes whose tarball import failed and was retried, with the retries made
   * so far: the back-off between retries grows with it, and lives here so that
   * a new leader goes on where the last one stopped.
   */
  nodeReadiness: z
    .strictObject({
      heldBack: z.number().int().min(0).describe('Nodes of this object that still carry the startup taint.'),
      releasedUnready: z
        .array(z.string().max(253))
        .max(MAX_STATUS_NODES)
        .optional()
        .describe(
          'Nodes released by the timeout, or because their images failed, before they held every image.',
        ),
    })
    .optional()
    .describe('With spec.nodeReadiness: the nodes held back now, and those released before they were ready.'),
  imagesFrom: z
    .strictObject({
      namespaces: z
        .array(z.string().max(63))
        .max(MAX_STATUS_NAMESPACES)
        .optional()
        .describe('Namespaces whose workloads were read, the first few.'),
      namespaceCount: z.number().int().min(0).describe('How many namespaces were read.'),
      notGranted: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe(
          `Namespaces namespaceSelector selects that were not read: their ${IMAGES_READABLE_BY_ANNOTATION} annotation does not name this namespace.`,
        ),
      workloads: z.number().int().min(0).describe('Workloads read.'),
      images: z.number().int().min(0).describe('Distinct images they use, once normalised.'),
      pullSecrets: z
        .array(z.string().max(253))
        .max(MAX_WORKLOAD_PULL_SECRETS)
        .optional()
        .describe("The workloads' pull secrets (their own and their ServiceAccounts') the pullers use."),
      omitted: z
        .array(z.string().max(512))
        .max(MAX_STATUS_OMITTED)
        .optional()
        .describe(`Images left out: over the cap of ${MAX_IMAGES} images in all, the first few.`),
      omittedCount: z.number().int().min(0).optional().describe('How many images were left out.'),
      unparsable: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe('Workload images that are no valid image reference, left out.'),
    })
    .optional()
    .describe('With spec.imagesFrom: what was read, and what was left out.'),
  importRetries: z
    .array(
      z.strictObject({
        node: z.string().max(253),
        attempts: z.number().int().min(1),
      }),
    )
    .max(MAX_IMPORT_RETRY_NODES)
    .optional()
    .describe('Nodes whose tarball import is being retried, and how many retries were made there.'),
});
export type PrePulledImageStatus = z.infer<typeof prePulledImageStatusSchema>;

/** A PrePulledImage as the API server returns it. */
export type PrePulledImage = Resource<PrePulledImageSpec, PrePulledImageStatus>;
