/**
 * RegistryCredential (prepull.dev/v1alpha1, cluster-scoped, short name regcred):
 * a pull secret kept in every selected namespace, and with spec.nodes in the
 * kubelet's node credentials (config.json) of selected nodes.
 */
import { z } from 'zod';
import { conditionsSchema, dnsLabel, dnsSubdomain, labelSelectorSchema, patternedString } from './common.ts';
import type { Resource } from './object.ts';

/** Most per-namespace failures listed in status; the rest are counted. */
export const MAX_STATUS_FAILURES = 20;
/** A RegistryCredential has two admission policies (append to a list, or add one) ... */
export const MAX_ADMISSION_POLICIES = 2;
/** ... each bound once for the namespace selector and once for the namespaces named. */
export const MAX_ADMISSION_BINDINGS = 4;

export const registryCredentialSpecSchema = z.strictObject({
  source: z.strictObject({
    secretRef: z
      .strictObject({ name: dnsSubdomain, namespace: dnsLabel })
      .describe(
        'The secret to copy: kubernetes.io/dockerconfigjson, or kubernetes.io/basic-auth with registry.',
      ),
    /** Registry host the credentials are for; needed when the source is basic-auth. */
    registry: patternedString(
      /^[a-zA-Z0-9.-]+(:[0-9]+)?$/,
      'must be a registry host, optionally with a port',
      {
        max: 253,
      },
    )
      .optional()
      .describe('Registry host the credentials are for; needed when the source is basic-auth.'),
  }),
  target: z
    .strictObject({
      secretName: dnsSubdomain.describe('Name of the copy in each target namespace.'),
      namespaceSelector: labelSelectorSchema
        .optional()
        .describe('Namespaces with these labels, new ones included.'),
      namespaces: z
        .array(dnsLabel)
        .max(1024)
        .optional()
        .meta({ 'x-kubernetes-list-type': 'set' })
        .describe('Namespaces by name, besides the selector.'),
      excludeNamespaces: z
        .array(dnsLabel)
        .max(1024)
        .optional()
        .meta({ 'x-kubernetes-list-type': 'set' })
        .describe('Namespaces never to copy into.'),
      allowRequestsFrom: z
        .strictObject({
          namespaceSelector: labelSelectorSchema.describe(
            'Namespaces with these labels may ask; {} allows every namespace.',
          ),
        })
        .optional()
        .describe(
          'Namespaces whose PrePulledImages may ask for the secret through spec.registryCredentials, which makes them targets. Absent: no namespace may.',
        ),
    })
    .meta({
      'x-kubernetes-validations': [
        {
          rule: 'has(self.namespaceSelector) || (has(self.namespaces) && size(self.namespaces) > 0)',
          message: 'target needs namespaceSelector or a non-empty namespaces list',
        },
        {
          rule: '!has(self.namespaces) || !has(self.excludeNamespaces) || !self.namespaces.exists(n, n in self.excludeNamespaces)',
          messageExpression:
            "'namespace ' + self.namespaces.filter(n, n in self.excludeNamespaces)[0] + ' is in both namespaces and excludeNamespaces; list it in one of them'",
        },
      ],
    }),
  serviceAccounts: z
    .array(dnsSubdomain)
    .max(64)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'set' })
    .describe(
      'ServiceAccounts in every target namespace that get the copy in imagePullSecrets (merged, never overwritten; removed on delete). New pods of these ServiceAccounts in target namespaces also get it at admission (a MutatingAdmissionPolicy), so a pod created before its ServiceAccount was patched has it too.',
    ),
  nodes: z
    .strictObject({
      nodeSelector: labelSelectorSchema.describe(
        'Nodes with these labels, new ones included; {} selects every node.',
      ),
    })
    .optional()
    .describe(
      "Also merge the credentials into the kubelet's node credentials (config.json in its root directory, /var/lib/kubelet) on these nodes, so every pod there pulls with them and needs no imagePullSecrets. Written by the node agent; entries not Prepull's are never changed; removed again when this field or the object goes.",
    ),
});
export type RegistryCredentialSpec = z.infer<typeof registryCredentialSpecSchema>;

/** Most per-node failures of spec.nodes listed in status; the rest are counted. */
export const MAX_NODE_FAILURES = 20;

export const registryCredentialStatusSchema = z.strictObject({
  observedGeneration: z.number().int().min(0).optional(),
  conditions: conditionsSchema.optional(),
  /** `synced/desired`, for the SYNCED printer column. */
  synced: z.string().max(32).optional(),
  desiredNamespaces: z.number().int().min(0).optional(),
  syncedNamespaces: z.number().int().min(0).optional(),
  failedNamespaces: z.number().int().min(0).optional(),
  failures: z
    .array(
      z.strictObject({
        namespace: z.string().max(63),
        reason: z.string().max(64),
        message: z.string().max(512),
      }),
    )
    .max(MAX_STATUS_FAILURES)
    .optional(),
  sourceResourceVersion: z.string().max(64).optional(),
  /** spec.nodes: the kubelet credentials on each selected node, as the node agents report them. */
  nodes: z
    .strictObject({
      /** `applied/selected`. */
      applied: z.string().max(32),
      selectedNodes: z.number().int().min(0),
      appliedNodes: z.number().int().min(0),
      failedNodes: z.number().int().min(0),
      /** Selected nodes whose agent has not reported the current credentials yet. */
      pendingNodes: z.number().int().min(0),
      failures: z
        .array(
          z.strictObject({
            node: z.string().max(253),
            reason: z.string().max(64),
            message: z.string().max(512),
          }),
        )
        .max(MAX_NODE_FAILURES)
        .optional(),
    })
    .optional(),
  /** The MutatingAdmissionPolicies and bindings that add the copy to new pods (with serviceAccounts). */
  admission: z
    .strictObject({
      policies: z.array(z.string().max(253)).max(MAX_ADMISSION_POLICIES).optional(),
      bindings: z.array(z.string().max(253)).max(MAX_ADMISSION_BINDINGS).optional(),
    })
    .optional(),
});
export type RegistryCredentialStatus = z.infer<typeof registryCredentialStatusSchema>;

/** A RegistryCredential as the API server returns it. */
export type RegistryCredential = Resource<RegistryCredentialSpec, RegistryCredentialStatus>;
