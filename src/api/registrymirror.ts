/**
 * RegistryMirror (prepull.dev/v1alpha1, cluster-scoped, short name regmirror):
 * for one upstream registry host (or `_default`), the mirror endpoints
 * containerd tries first on every selected node, written by the node agent as
 * a `hosts.toml` under containerd's `config_path`. Also the node agent's
 * report of what it did, which the controller reads. Schemas only.
 */
import { z } from 'zod';
import { conditionsSchema, labelSelectorSchema, patternedString } from './common.ts';
import type { Resource } from './object.ts';

/** Most per-node failures listed in status; the rest are counted. */
export const MAX_MIRROR_STATUS_FAILURES = 20;
/** Most mirror endpoints one object lists. */
export const MAX_MIRRORS = 8;
/** The directory name containerd reads for hosts that have none of their own. */
export const DEFAULT_HOST = '_default';

const HOST_MESSAGE =
  'must be a lower-case registry host, optionally with a port (docker.io, registry.k8s.io, 10.1.2.3:32000), or _default';

/** An upstream host as containerd names its `certs.d` directories. */
export const registryHostSchema = patternedString(
  /^(_default|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?)$/,
  HOST_MESSAGE,
  { min: 1, max: 253 },
);

/** Header names that carry credentials: never written in plain text on every node. */
export const FORBIDDEN_HEADERS = ['authorization', 'proxy-authorization', 'cookie'] as const;

const HEADER_SECRET_MESSAGE =
  'Authorization, Proxy-Authorization and Cookie headers are refused: they would be written in plain text on every node; use a pull secret';

const headerValue = patternedString(/^[^\r\n]*$/, 'header values must be one line', { max: 1024 });

const headersSchema = z
  .record(z.string().max(128), headerValue)
  .superRefine((headers, ctx) => {
    for (const name of Object.keys(headers)) {
      if (!/^[A-Za-z0-9-]+$/.test(name)) {
        ctx.addIssue({ code: 'custom', message: `header name ${name} must be letters, digits and -` });
      }
      if ((FORBIDDEN_HEADERS as readonly string[]).includes(name.toLowerCase())) {
        ctx.addIssue({ code: 'custom', message: HEADER_SECRET_MESSAGE });
      }
    }
  })
  .meta({
    maxProperties: 16,
    'x-kubernetes-validations': [
      {
        rule: "self.all(k, k.matches('^[A-Za-z0-9-]+$'))",
        message: 'header names must be letters, digits and -',
      },
      {
        rule: `self.all(k, !(k.lowerAscii() in ${JSON.stringify(FORBIDDEN_HEADERS).replaceAll('"', "'")}))`,
        message: HEADER_SECRET_MESSAGE,
      },
    ],
  });

const mirrorEndpointSchema = z
  .strictObject({
    url: patternedString(
      /^https?:\/\/[^/\s"\\]+(\/[^\s"\\]*)?$/,
      'must be an http:// or https:// URL without spaces, quotes or backslashes',
      { max: 2048 },
    ).describe('The mirror, e.g. https://10.1.2.3:32000 or https://harbor.example/v2/dockerhub-proxy.'),
    capabilities: z
      .array(z.enum(['pull', 'resolve']))
      .min(1)
      .max(2)
      .optional()
      .meta({ 'x-kubernetes-list-type': 'set' })
      .describe(
        'What containerd may ask this mirror: pull (blobs and manifests by digest) and resolve (tag to digest). Default both.',
      ),
    caBundle: patternedString(/-----BEGIN CERTIFICATE-----/, 'must hold PEM certificates', { max: 65536 })
      .optional()
      .describe("PEM CA certificates that sign the mirror's TLS certificate (written next to hosts.toml)."),
    skipVerify: z
      .boolean()
      .optional()
      .describe("Do not verify the mirror's TLS certificate. Prefer caBundle."),
    headers: headersSchema
      .optional()
      .describe(
        'Extra HTTP headers sent to the mirror. Not for credentials: they are written in plain text on every node.',
      ),
    overridePath: z
      .boolean()
      .optional()
      .describe(
        "The URL's path is the registry API root (containerd override_path), for mirrors that serve under a path such as Harbor's /v2/<project>.",
      ),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: '!has(self.caBundle) || !has(self.skipVerify) || !self.skipVerify',
        message: 'caBundle and skipVerify exclude each other',
      },
      {
        rule: "!has(self.caBundle) || self.url.startsWith('https://')",
        message: 'caBundle needs an https:// url',
      },
      {
        rule: "!has(self.overridePath) || !self.overridePath || self.url.matches('^https?://[^/]+/.+')",
        message: 'overridePath needs a url with a path',
      },
    ],
  })
  .refine((m) => !(m.caBundle !== undefined && m.skipVerify === true), {
    message: 'caBundle and skipVerify exclude each other',
  })
  .refine((m) => m.caBundle === undefined || m.url.startsWith('https://'), {
    message: 'caBundle needs an https:// url',
  })
  .refine((m) => !m.overridePath || /^https?:\/\/[^/]+\/.+/.test(m.url), {
    message: 'overridePath needs a url with a path',
  });
export type MirrorEndpoint = z.infer<typeof mirrorEndpointSchema>;

export const registryMirrorSpecSchema = z.strictObject({
  host: registryHostSchema.describe(
    'The upstream registry host whose pulls go to the mirrors (docker.io, registry.k8s.io, host:port), or _default for every host that has no hosts.toml of its own.',
  ),
  mirrors: z
    .array(mirrorEndpointSchema)
    .min(1)
    .max(MAX_MIRRORS)
    .meta({
      'x-kubernetes-validations': [
        { rule: 'self.all(m, self.exists_one(o, o.url == m.url))', message: 'mirror urls must be unique' },
      ],
    })
    .refine((list) => new Set(list.map((m) => m.url)).size === list.length, {
      message: 'mirror urls must be unique',
    })
    .describe('Mirror endpoints, tried in this order.'),
  upstream: z
    .enum(['Fallback', 'Replaced'])
    .optional()
    .describe(
      'Fallback (default): the upstream host is tried after the mirrors. Replaced: only the mirrors are used.',
    ),
  nodeSelector: labelSelectorSchema
    .optional()
    .describe('Nodes with these labels, new ones included. Default: every node the agent runs on.'),
});
export type RegistryMirrorSpec = z.infer<typeof registryMirrorSpecSchema>;

const failureSchema = z.strictObject({
  node: z.string().max(253),
  reason: z.string().max(64),
  message: z.string().max(1024),
});

export const registryMirrorStatusSchema = z.strictObject({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditionsSchema.optional(),
  /** `applied/desired`, for the APPLIED printer column. */
  applied: z.string().max(32).optional(),
  desiredNodes: z.number().int().min(0).optional(),
  appliedNodes: z.number().int().min(0).optional(),
  failedNodes: z.number().int().min(0).optional(),
  /** Selected nodes whose agent has not reported this generation yet. */
  pendingNodes: z.number().int().min(0).optional(),
  failures: z.array(failureSchema).max(MAX_MIRROR_STATUS_FAILURES).optional(),
});
export type RegistryMirrorStatus = z.infer<typeof registryMirrorStatusSchema>;

/** A RegistryMirror as the API server returns it. */
export type RegistryMirror = Resource<RegistryMirrorSpec, RegistryMirrorStatus>;

/** The node agent module that writes mirrors, and names its report annotation (`prepull.dev/report.mirrors`). */
export const MIRRORS_AGENT_MODULE = 'mirrors';

/**
 * What one node's agent reports about the RegistryMirrors that select its
 * node (the pod annotation `prepull.dev/report.mirrors`): per object, by uid
 * and the generation it acted on, Applied or the reason it could not be.
 * Messages name files and settings, never header values.
 */
export const mirrorNodeReportSchema = z.object({
  /** containerd's config file the agent read, and the hosts directory it writes under, when found. */
  runtime: z
    .object({
      flavour: z.enum(['containerd', 'k3s', 'rke2', 'microk8s']),
      /** containerd's version as the kubelet reports it (`1.6.20~ds1`), when known. */
      version: z.string().max(64).optional(),
      configFile: z.string().max(4096).optional(),
      hostsDir: z.string().max(4096).optional(),
    })
    .optional(),
  mirrors: z
    .array(
      z.object({
        name: z.string().max(253),
        uid: z.string().max(64),
        generation: z.number().int().min(0),
        reason: z.string().max(64),
        message: z.string().max(1024),
      }),
    )
    .max(1024),
});
export type MirrorNodeReport = z.infer<typeof mirrorNodeReportSchema>;
export type MirrorNodeResult = MirrorNodeReport['mirrors'][number];
