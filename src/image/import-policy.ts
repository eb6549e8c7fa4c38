/**
 * The import policy the cluster admin owns: which image names a namespace may
 * import from a tarball, and from which sources (node paths, URLs, volume
 * claims). The controller applies it before any pod work (status
 * ImportNotAllowed), and the node agent applies the same function again before
 * it imports (defence in depth). The policy lives in the ConfigMap
 * `prepull-import-policy` of Prepull's namespace, key `policy.yaml`; without
 * it, {@link DEFAULT_IMPORT_POLICY} applies.
 *
 * A url source's redirects must stay within the URL prefixes of the rules that
 * allow it ({@link redirectPrefixes}); the importer checks every hop.
 *
 * A persistentVolumeClaim source is read by the tenant's own puller pod, with
 * the namespace's own rights, and sent to the node agent
 * (src/agent/node/imports/archive-protocol.ts): a claim grants nothing beyond
 * its namespace, so the default lets any claim of the object's namespace be a
 * source; the image names stay bounded as for every source. Pure.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ImageEntry } from '../api/prepulledimage.ts';
import { parseImageReference, repositoryOf } from './reference.ts';

/** The ConfigMap holding the policy, in Prepull's namespace. */
export const IMPORT_POLICY_CONFIGMAP = 'prepull-import-policy';
/** Its key. */
export const IMPORT_POLICY_KEY = 'policy.yaml';
/** Replaced by the PrePulledImage's namespace in image patterns and hostPath prefixes. */
const NAMESPACE_PLACEHOLDER = '{namespace}';

const ruleSchema = z.strictObject({
  /** Namespaces the rule is for: names, `*` matching any run of characters; default every namespace. */
  namespaces: z.array(z.string().min(1)).default(['*']),
  /**
   * Repositories (the name without tag or digest) that may be imported: `*`
   * matches within one path segment, `**` across segments.
   */
  images: z.array(z.string().min(1)).default([]),
  /** Absolute path prefixes on the node a hostPath source may name; the agent must mount them. */
  hostPaths: z.array(z.string().startsWith('/')).default([]),
  /** URL prefixes a url source may start with: scheme, host (and port), path. */
  urls: z.array(z.url({ protocol: /^https?$/ })).default([]),
  /** Names of claims in the object's own namespace a persistentVolumeClaim source may name: `*` matches any run. */
  persistentVolumeClaims: z.array(z.string().min(1)).default([]),
});

export const importPolicySchema = z.strictObject({
  /** An entry is allowed when one rule for its namespace allows both its image and its source. */
  rules: z.array(ruleSchema),
});

export type ImportPolicy = z.infer<typeof importPolicySchema>;
export type ImportPolicyRule = ImportPolicy['rules'][number];

/**
 * Without a policy: a namespace may import only images named under
 * `prepull.local/<namespace>/`, a registry host no one pulls from, so an
 * import can never stand in for an image that someone else pulls; from
 * archives under `/var/lib/prepull/archives/<namespace>/` on the node, or on
 * any volume claim of the namespace; never from a URL (the node agent would
 * fetch it from inside the cluster network).
 */
export const DEFAULT_IMPORT_POLICY: ImportPolicy = {
  rules: [
    {
      namespaces: ['*'],
      images: [`prepull.local/${NAMESPACE_PLACEHOLDER}/**`],
      hostPaths: [`/var/lib/prepull/archives/${NAMESPACE_PLACEHOLDER}/`],
      urls: [],
      persistentVolumeClaims: ['*'],
    },
  ],
};

/** What the policy ConfigMap gives: a policy, or why it is unusable (then nothing may be imported). */
export type LoadedImportPolicy = { ok: true; policy: ImportPolicy } | { ok: false; message: string };

/** Reads the ConfigMap's data; undefined data (no ConfigMap) is the default policy. */
export function loadImportPolicy(data: Record<string, string> | undefined): LoadedImportPolicy {
  if (data === undefined) return { ok: true, policy: DEFAULT_IMPORT_POLICY };
  const text = data[IMPORT_POLICY_KEY];
  if (text === undefined) {
    return { ok: false, message: `ConfigMap ${IMPORT_POLICY_CONFIGMAP} has no key ${IMPORT_POLICY_KEY}` };
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    return { ok: false, message: `${IMPORT_POLICY_KEY} is not YAML: ${(err as Error).message}` };
  }
  const parsed = importPolicySchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      ok: false,
      message: `${IMPORT_POLICY_KEY} is not a valid import policy: ${first?.path.join('.')}: ${first?.message}`,
    };
  }
  return { ok: true, policy: parsed.data };
}

/**
 * Why `entry` (a tarball image of a PrePulledImage in `namespace`) may not be
 * imported, or undefined when the policy allows it. An entry without a tarball
 * is not an import and is always allowed.
 */
export function importRefusal(
  loaded: LoadedImportPolicy,
  namespace: string,
  entry: Pick<ImageEntry, 'image' | 'tarball'>,
): string | undefined {
  const tarball = entry.tarball;
  if (!tarball) return undefined;
  if (!loaded.ok) return `the cluster's import policy is unusable, so nothing is imported: ${loaded.message}`;
  let repository: string;
  try {
    repository = repositoryOf(parseImageReference(entry.image));
  } catch (err) {
    return `${entry.image} is not an image reference: ${(err as Error).message}`;
  }
  const rules = loaded.policy.rules.filter((rule) =>
    rule.namespaces.some((p) => globMatch(p, namespace, false)),
  );
  const imageRules = rules.filter((rule) =>
    rule.images.some((pattern) => globMatch(substitute(pattern, namespace), repository, true)),
  );
  if (imageRules.length === 0) {
    return `the import policy does not let namespace ${namespace} import ${repository}`;
  }
  if (imageRules.some((rule) => sourceAllowed(rule, namespace, tarball))) return undefined;
  return `the import policy does not let namespace ${namespace} import ${repository} from ${describeSource(tarball)}`;
}

/**
 * The URL prefixes every redirect of `entry`'s download must stay within: those
 * of the rules that let `namespace` import its image. A URL the admin allows
 * cannot so lead the node agent anywhere the admin did not allow (an internal
 * address, another host). Empty for an entry that is not an allowed url source.
 */
export function redirectPrefixes(
  loaded: LoadedImportPolicy,
  namespace: string,
  entry: Pick<ImageEntry, 'image' | 'tarball'>,
): string[] {
  if (!loaded.ok || entry.tarball?.url === undefined) return [];
  let repository: string;
  try {
    repository = repositoryOf(parseImageReference(entry.image));
  } catch {
    return [];
  }
  const prefixes = loaded.policy.rules
    .filter((rule) => rule.namespaces.some((p) => globMatch(p, namespace, false)))
    .filter((rule) =>
      rule.images.some((pattern) => globMatch(substitute(pattern, namespace), repository, true)),
    )
    .flatMap((rule) => rule.urls);
  return [...new Set(prefixes)].sort();
}

function sourceAllowed(
  rule: ImportPolicyRule,
  namespace: string,
  tarball: NonNullable<ImageEntry['tarball']>,
): boolean {
  if (tarball.hostPath !== undefined) {
    const path = tarball.hostPath;
    return rule.hostPaths.some((prefix) => pathWithin(path, substitute(prefix, namespace)));
  }
  if (tarball.url !== undefined) {
    let url: URL;
    try {
      url = new URL(tarball.url);
    } catch {
      return false;
    }
    return rule.urls.some((prefix) => urlWithin(url, new URL(prefix)));
  }
  const claim = tarball.persistentVolumeClaim?.claimName;
  return claim !== undefined && rule.persistentVolumeClaims.some((p) => globMatch(p, claim, false));
}

/** A path is within a prefix ending in `/` when it starts with it, else when it is it or below it. */
function pathWithin(path: string, prefix: string): boolean {
  if (path.split('/').includes('..')) return false;
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Same scheme and host (and port); the path starts with the prefix's; userinfo in the URL is never allowed. */
function urlWithin(url: URL, prefix: URL): boolean {
  if (url.username || url.password) return false;
  if (url.protocol !== prefix.protocol || url.host !== prefix.host) return false;
  const path = prefix.pathname;
  return (
    path === '/' || url.pathname === path || url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`)
  );
}

/** The source as status may show it: a URL without userinfo, query or fragment. */
export function describeSource(tarball: NonNullable<ImageEntry['tarball']>): string {
  if (tarball.hostPath !== undefined) return `hostPath ${tarball.hostPath}`;
  if (tarball.url !== undefined) return `url ${redactUrl(tarball.url)}`;
  const claim = tarball.persistentVolumeClaim;
  return `persistentVolumeClaim ${claim?.claimName}`;
}

/** A URL with its userinfo, query and fragment replaced, so it can go into status, Events and logs. */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '<invalid URL>';
  }
  const userinfo = url.username || url.password ? 'redacted@' : '';
  const query = url.search ? '?redacted' : '';
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}`;
}

function substitute(pattern: string, namespace: string): string {
  return pattern.split(NAMESPACE_PLACEHOLDER).join(namespace);
}

/** `**` matches anything (with `segments`), `*` anything but `/`; everything else literally. */
function globMatch(pattern: string, value: string, segments: boolean): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (char === '*') {
      source += segments ? '[^/]*' : '.*';
    } else {
      source += char.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`).test(value);
}
