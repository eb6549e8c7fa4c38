/**
 * Manifests and indexes as the OCI image spec and Docker's schema 2 define
 * them: which media types this client accepts, reading an index's platforms
 * and a lone manifest's config descriptor, and matching a node's platform the
 * way containerd does. Pure.
 */
import { isDigest } from '../image/reference.ts';

/** The media types asked for and understood. Docker schema 1 is not: registries convert it or refuse. */
export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.OciManifest, MediaType.DockerManifest]);

/** The `Accept` header of every manifest request: indexes first, as containerd sends them. */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
].join(', ');

/** `index` for an OCI index or Docker manifest list, `manifest` for one image, undefined for anything else. */
export function manifestKind(contentType: string | undefined): 'index' | 'manifest' | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === undefined) return undefined;
  if (INDEX_TYPES.has(type)) return 'index';
  if (MANIFEST_TYPES.has(type)) return 'manifest';
  return undefined;
}

/** An os/architecture/variant triple, as in an index entry or an image config. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor: what a manifest says of another blob. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** Thrown for a manifest, index or config that does not have the shape the specs give. */
export class MalformedManifestError extends Error {
  override readonly name = 'MalformedManifestError';
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedManifestError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function parseJson(body: string, what: string): Record<string, unknown> {
  try {
    return asObject(JSON.parse(body), what);
  } catch (err) {
    if (err instanceof MalformedManifestError) throw err;
    throw new MalformedManifestError(`${what} is not JSON`);
  }
}

function descriptorOf(value: unknown, what: string): Descriptor {
  const o = asObject(value, what);
  if (typeof o.digest !== 'string' || !isDigest(o.digest)) {
    throw new MalformedManifestError(`${what} has no sha256 digest`);
  }
  return {
    mediaType: typeof o.mediaType === 'string' ? o.mediaType : '',
    digest: o.digest,
    size: typeof o.size === 'number' ? o.size : 0,
  };
}

function platformOf(value: unknown): Platform | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const o = value as Record<string, unknown>;
  if (typeof o.os !== 'string' || typeof o.architecture !== 'string') return undefined;
  return {
    os: o.os,
    architecture: o.architecture,
    ...(typeof o.variant === 'string' && o.variant ? { variant: o.variant } : {}),
  };
}

/**
 * The platforms an index offers. Entries without a platform, `unknown/unknown`
 * ones and BuildKit's attestation manifests are not images a node can run, so
 * they are left out.
 */
export function indexPlatforms(body: string): Platform[] {
  const index = parseJson(body, 'the index');
  if (!Array.isArray(index.manifests)) throw new MalformedManifestError('the index has no manifests list');
  const platforms: Platform[] = [];
  index.manifests.forEach((entry, i) => {
    descriptorOf(entry, `index entry ${i}`);
    const e = entry as Record<string, unknown>;
    const annotations = (e.annotations ?? {}) as Record<string, unknown>;
    if (annotations['vnd.docker.reference.type'] === 'attestation-manifest') return;
    const platform = platformOf(e.platform);
    if (!platform || (platform.os === 'unknown' && platform.architecture === 'unknown')) return;
    platforms.push(platform);
  });
  return platforms;
}

/** The config descriptor of a single-image manifest. */
export function manifestConfig(body: string): Descriptor {
  const manifest = parseJson(body, 'the manifest');
  return descriptorOf(manifest.config, 'the manifest config');
}

/** The platform an image config declares (`os`, `architecture`, `variant`). */
export function configPlatform(body: string): Platform {
  const platform = platformOf(parseJson(body, 'the image config'));
  if (!platform) throw new MalformedManifestError('the image config names no os and architecture');
  return platform;
}

/** containerd's normalisation: `x86_64` is `amd64`, `aarch64` is `arm64`, arm64's `v8` is no variant. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'armhf') [architecture, variant] = ['arm', 'v7'];
  if (architecture === 'armel') [architecture, variant] = ['arm', 'v6'];
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * Whether an image of `offered` runs on a node of `node`: same os and
 * architecture, and the variant matches when both name one. (containerd also
 * lets an arm v8 node run v7 images; a variant the node does not report is
 * not held against the image.)
 */
export function platformMatches(offered: Platform, node: Platform): boolean {
  const a = normalizePlatform(offered);
  const b = normalizePlatform(node);
  if (a.os !== b.os || a.architecture !== b.architecture) return false;
  if (a.variant === undefined || b.variant === undefined) return true;
  if (a.variant === b.variant) return true;
  // An arm node of a higher variant runs images of a lower one (v8 runs v7, v6, v5).
  return a.architecture === 'arm' && a.variant < b.variant;
}

/** `linux/arm64/v8`-style text, as `docker` and `ctr` write platforms. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * Undefined when some offered platform runs on `node`; otherwise the
 * PlatformMismatch message, naming the platforms that do exist.
 */
export function platformMismatch(offered: readonly Platform[], node: Platform): string | undefined {
  if (offered.some((p) => platformMatches(p, node))) return undefined;
  const names = [...new Set(offered.map(formatPlatform))];
  return `the image offers ${names.length > 0 ? names.join(', ') : 'no platform'}, not ${formatPlatform(node)}`;
}
