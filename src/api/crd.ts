/**
 * Generates the CustomResourceDefinitions from the zod schemas, so the API
 * server validates with exactly the rules the controller parses with.
 * `node scripts/generate-crds.ts` writes crds/; a test fails when they differ.
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { MESSAGE_KEY } from './common.ts';
import { API_VERSION, GROUP, VERSION } from './group.ts';
import { prePulledImageSpecSchema, prePulledImageStatusSchema } from './prepulledimage.ts';
import { registryCredentialSpecSchema, registryCredentialStatusSchema } from './registrycredential.ts';
import { registryMirrorSpecSchema, registryMirrorStatusSchema } from './registrymirror.ts';

export { API_VERSION, GROUP, VERSION };

type JsonSchema = { [key: string]: unknown };

/**
 * zod's JSON Schema, made structural: Kubernetes forbids
 * `additionalProperties: false` (unknown fields are pruned, or rejected by
 * strict field validation), and an int-or-string is declared by its extension
 * alone.
 */
export function toStructuralSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input' }) as JsonSchema;
  return structural(json);
}

function addRule(schema: JsonSchema, rule: string, message: string): void {
  const rules = (schema['x-kubernetes-validations'] as object[] | undefined) ?? [];
  schema['x-kubernetes-validations'] = [{ rule, message }, ...rules];
}

/** A CEL raw string literal; patterns here never contain a single quote. */
function celRawString(pattern: string): string {
  if (pattern.includes("'")) throw new Error(`pattern ${pattern} cannot be a CEL raw string`);
  return `r'${pattern.replaceAll('\\/', '/')}'`;
}

function structural(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema') continue;
    if (key === 'additionalProperties' && value === false) continue;
    out[key] = value;
  }
  if (out['x-kubernetes-int-or-string'] === true) {
    // A string branch's pattern would be lost with anyOf: keep it as CEL.
    const stringBranch = (out.anyOf as JsonSchema[] | undefined)?.find((b) => b.type === 'string');
    const pattern = stringBranch?.pattern;
    // Bounding the string keeps CEL cost estimates within the API server's budget.
    if (typeof stringBranch?.maxLength === 'number') out.maxLength = stringBranch.maxLength;
    const message = out[MESSAGE_KEY];
    if (typeof pattern === 'string' && typeof message === 'string') {
      addRule(out, `type(self) == int || self.matches(${celRawString(pattern)})`, message);
    }
    delete out.anyOf;
    delete out.type;
  } else if (typeof out.pattern === 'string' && typeof out[MESSAGE_KEY] === 'string') {
    // The API server words a failed pattern as "should match '<regex>'"; a CEL
    // rule can say what the field is in words instead.
    addRule(out, `self.matches(${celRawString(out.pattern)})`, out[MESSAGE_KEY]);
    delete out.pattern;
  }
  delete out[MESSAGE_KEY];
  if (out.type === 'integer') {
    // zod adds the safe-integer range to every int; it says nothing to a user.
    if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
    out.format = 'int64';
  }
  if (out.properties) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties as Record<string, JsonSchema>).map(([k, v]) => [k, structural(v)]),
    );
  }
  if (out.items) out.items = structural(out.items as JsonSchema);
  if (typeof out.additionalProperties === 'object') {
    out.additionalProperties = structural(out.additionalProperties as JsonSchema);
  }
  return out;
}

interface KindNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
}

function customResourceDefinition(
  names: KindNames,
  spec: z.ZodType,
  status: z.ZodType,
  printerColumns: object[],
  description: string,
): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${names.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'prepull', 'app.kubernetes.io/part-of': 'prepull' },
    },
    spec: {
      group: GROUP,
      scope: names.scope,
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: ['prepull'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: toStructuralSchema(spec),
                status: toStructuralSchema(status),
              },
            },
          },
        },
      ],
    },
  };
}

const statusColumn = {
  name: 'Status',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
};
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/** The PrePulledImage CRD object. */
export function prePulledImageCrd(): object {
  return customResourceDefinition(
    {
      kind: 'PrePulledImage',
      plural: 'prepulledimages',
      singular: 'prepulledimage',
      shortNames: ['ppi'],
      scope: 'Namespaced',
    },
    prePulledImageSpecSchema,
    prePulledImageStatusSchema,
    [
      {
        name: 'Ready',
        type: 'string',
        jsonPath: '.status.ready',
        description: 'Nodes ready / nodes desired',
      },
      statusColumn,
      { name: 'Images', type: 'integer', jsonPath: '.status.images[*].readyNodes', priority: 1 },
      ageColumn,
    ],
    'PrePulledImage lists images and the nodes that must hold them; the controller pulls or imports them on every matching node.',
  );
}

/** The RegistryCredential CRD object. */
export function registryCredentialCrd(): object {
  return customResourceDefinition(
    {
      kind: 'RegistryCredential',
      plural: 'registrycredentials',
      singular: 'registrycredential',
      shortNames: ['regcred'],
      scope: 'Cluster',
    },
    registryCredentialSpecSchema,
    registryCredentialStatusSchema,
    [
      {
        name: 'Synced',
        type: 'string',
        jsonPath: '.status.synced',
        description: 'Namespaces synced / desired',
      },
      statusColumn,
      { name: 'Secret', type: 'string', jsonPath: '.spec.target.secretName', priority: 1 },
      {
        name: 'Nodes',
        type: 'string',
        jsonPath: '.status.nodes.applied',
        description: 'spec.nodes: nodes whose kubelet credentials are current / selected',
        priority: 1,
      },
      ageColumn,
    ],
    'RegistryCredential keeps a pull secret in every selected namespace, optionally on their ServiceAccounts and in the kubelet credentials of selected nodes.',
  );
}

/** The RegistryMirror CRD object. */
export function registryMirrorCrd(): object {
  return customResourceDefinition(
    {
      kind: 'RegistryMirror',
      plural: 'registrymirrors',
      singular: 'registrymirror',
      shortNames: ['regmirror'],
      scope: 'Cluster',
    },
    registryMirrorSpecSchema,
    registryMirrorStatusSchema,
    [
      { name: 'Host', type: 'string', jsonPath: '.spec.host' },
      {
        name: 'Applied',
        type: 'string',
        jsonPath: '.status.applied',
        description: 'Nodes applied / nodes selected',
      },
      statusColumn,
      { name: 'Mirror', type: 'string', jsonPath: '.spec.mirrors[0].url', priority: 1 },
      ageColumn,
    ],
    "RegistryMirror sends one registry host's pulls to mirror endpoints on every selected node (containerd hosts.toml, written by Prepull's node agent).",
  );
}

const HEADER = '# Generated from src/api by `node scripts/generate-crds.ts`. Do not edit.\n';

/** The CRD files, by file name under crds/. */
export function renderCrdFiles(): Record<string, string> {
  return {
    'prepull.dev_prepulledimages.yaml': HEADER + stringify(prePulledImageCrd(), { lineWidth: 0 }),
    'prepull.dev_registrycredentials.yaml': HEADER + stringify(registryCredentialCrd(), { lineWidth: 0 }),
    'prepull.dev_registrymirrors.yaml': HEADER + stringify(registryMirrorCrd(), { lineWidth: 0 }),
  };
}

/** Every CRD as one multi-document YAML stream, for `prepull crds | kubectl apply -f -`. */
export function renderCrdsYaml(): string {
  return Object.values(renderCrdFiles()).join('---\n');
}
