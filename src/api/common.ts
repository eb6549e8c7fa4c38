/**
 * Schemas shared by both kinds: Kubernetes core shapes (conditions, label
 * selectors, node affinity, tolerations, quantities) as zod, so the CRD schema
 * and the controller's parsing come from one definition.
 */
import { z } from 'zod';

/**
 * Metadata key on a zod string with a pattern: the sentence a user reads when
 * the pattern does not match. The CRD generator turns the pattern into a CEL
 * rule carrying this message, because the API server's own wording for a
 * failed pattern is the raw regular expression.
 */
export const MESSAGE_KEY = 'x-prepull-message';

/** A bounded string that must match `pattern`, with one message for zod and the API server. */
export function patternedString(pattern: RegExp, message: string, length: { min?: number; max: number }) {
  const bounded = length.min === undefined ? z.string() : z.string().min(length.min);
  return bounded
    .max(length.max)
    .regex(pattern, message)
    .meta({ [MESSAGE_KEY]: message });
}

/**
 * A path string refused when it has a `..` segment: for zod a refine, for
 * the API server a CEL rule (RE2 has no look-ahead, so a pattern cannot say it).
 */
export function noDotDotSegments<T extends z.ZodString>(schema: T, message: string) {
  return schema
    .refine((value) => !value.split('/').includes('..'), { message })
    .meta({ 'x-kubernetes-validations': [{ rule: "!self.matches(r'(^|/)\\.\\.(/|$)')", message }] });
}

const DURATION_PART = /([0-9]+(?:\.[0-9]+)?)(s|m|h)/g;
const DURATION_UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** `1h30m` in milliseconds (the subset of Go durations the API takes: s, m, h); undefined if malformed. */
export function durationMs(text: string): number | undefined {
  if (!/^([0-9]+(\.[0-9]+)?(s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    total += Number(amount) * DURATION_UNIT_MS[unit as keyof typeof DURATION_UNIT_MS];
  }
  return total;
}

/** DNS-1123 label: namespaces, names of our own objects' parts. */
export const dnsLabel = patternedString(
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
  'must be a DNS label: at most 63 lower-case letters, digits and -, starting and ending with a letter or digit',
  { min: 1, max: 63 },
);

/** DNS-1123 subdomain: names of Secrets, ServiceAccounts, PriorityClasses. */
export const dnsSubdomain = patternedString(
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  'must be a DNS subdomain: lower-case letters, digits, - and ., starting and ending with a letter or digit',
  { min: 1, max: 253 },
);

/** A label key or value is checked by the API server for pods; keep the CRD loose but bounded. */
const labelKey = z.string().min(1).max(317);
const labelValue = z.string().max(63);

export const conditionSchema = z.strictObject({
  type: z.string().min(1).max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: z.string().max(64),
  reason: z.string().min(1).max(1024),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof conditionSchema>;

export const conditionsSchema = z
  .array(conditionSchema)
  .max(16)
  .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

const labelSelectorRequirement = z.strictObject({
  key: labelKey,
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(labelValue).max(256).optional(),
});

export const labelSelectorSchema = z
  .strictObject({
    matchLabels: z.record(labelKey, labelValue).optional(),
    matchExpressions: z.array(labelSelectorRequirement).max(32).optional(),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: "!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",
        message: 'matchExpressions: In and NotIn need values; Exists and DoesNotExist take none',
      },
    ],
  });
export type LabelSelector = z.infer<typeof labelSelectorSchema>;

const nodeSelectorRequirement = z
  .strictObject({
    key: labelKey,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']),
    values: z.array(labelValue).max(256).optional(),
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: "(self.operator in ['Exists', 'DoesNotExist']) ? (!has(self.values) || size(self.values) == 0) : (has(self.values) && size(self.values) > 0)",
        message: 'In, NotIn, Gt and Lt need values; Exists and DoesNotExist take none',
      },
    ],
  });

const nodeSelectorTerm = z.strictObject({
  matchExpressions: z.array(nodeSelectorRequirement).max(32).optional(),
  matchFields: z.array(nodeSelectorRequirement).max(32).optional(),
});

export const nodeAffinitySchema = z.strictObject({
  requiredDuringSchedulingIgnoredDuringExecution: z
    .strictObject({ nodeSelectorTerms: z.array(nodeSelectorTerm).min(1).max(16) })
    .optional(),
  preferredDuringSchedulingIgnoredDuringExecution: z
    .array(z.strictObject({ weight: z.number().int().min(1).max(100), preference: nodeSelectorTerm }))
    .max(16)
    .optional(),
});

export const tolerationSchema = z.strictObject({
  key: labelKey.optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: labelValue.optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});

const QUANTITY_MESSAGE = 'must be a quantity like 10m, 64Mi or 1';

/** Kubernetes quantity (`10m`, `64Mi`, `1`): an int or a string in its grammar. */
const quantity = z
  .union([
    z.number().int().min(0),
    z
      .string()
      .max(64)
      .regex(
        /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/,
        QUANTITY_MESSAGE,
      ),
  ])
  .meta({ 'x-kubernetes-int-or-string': true, [MESSAGE_KEY]: QUANTITY_MESSAGE });

/**
 * Most a puller pod's hold container may ask for, per resource. It runs a
 * binary that sleeps; more would only let a PrePulledImage author reserve (or
 * preempt) capacity on every node, times up to 64 containers.
 */
export const RESOURCE_CAPS = { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '1Gi' } as const;

const resourceList = (field: 'requests' | 'limits') =>
  z
    .partialRecord(z.enum(Object.keys(RESOURCE_CAPS) as [keyof typeof RESOURCE_CAPS]), quantity)
    .optional()
    .meta({
      maxProperties: 3,
      'x-kubernetes-validations': [
        {
          rule: `self.all(name, name in ${JSON.stringify(Object.keys(RESOURCE_CAPS)).replaceAll('"', "'")})`,
          message: `resources.${field} may name only ${Object.keys(RESOURCE_CAPS).join(', ')}`,
        },
        ...Object.entries(RESOURCE_CAPS).map(([name, cap]) => ({
          // isQuantity first: a malformed value gets the pattern's message, not a CEL error.
          rule: `!('${name}' in self) || !isQuantity(string(self['${name}'])) || (quantity(string(self['${name}'])).compareTo(quantity('0')) >= 0 && quantity(string(self['${name}'])).compareTo(quantity('${cap}')) <= 0)`,
          message: `resources.${field}.${name} must be from 0 to ${cap}`,
        })),
      ],
    });

export const resourcesSchema = z.strictObject({
  requests: resourceList('requests'),
  limits: resourceList('limits'),
});

export const localObjectReferenceSchema = z.strictObject({ name: dnsSubdomain });
