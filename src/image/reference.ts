/**
 * Image references, parsed and normalised the way the kubelet and containerd do
 * (the docker/distribution reference grammar): `nginx` is
 * `docker.io/library/nginx:latest`, a first component with a dot, a colon or the
 * name `localhost` is a registry host, and a reference may carry a tag, a digest
 * or both.
 */

/** One path component: lower-case alphanumerics joined by `.`, `_`, `__` or dashes. */
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
/**
 * A first component followed by `/` that has no dot: a repository, not a host
 * (with a dot it would be read as a host). Written without look-ahead because
 * the API server checks CRD patterns with Go's RE2.
 */
const FIRST_COMPONENT = '[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*';
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = 'sha256:[a-f0-9]{64}';

/**
 * The whole reference as a regular expression. The CRD schema uses it as the
 * `pattern` of `spec.images[].image`, so the API server rejects what this module
 * would reject.
 */
export const IMAGE_REFERENCE_PATTERN = `^(?:${DOMAIN}/${PATH_COMPONENT}(?:/${PATH_COMPONENT})*|${FIRST_COMPONENT}(?:/${PATH_COMPONENT})+|${PATH_COMPONENT})(?::${TAG})?(?:@${DIGEST})?$`;

const NAME_MAX_LENGTH = 255;
const DEFAULT_DOMAIN = 'docker.io';
const OFFICIAL_REPOSITORY_PREFIX = 'library/';

const pathComponentRe = new RegExp(`^${PATH_COMPONENT}$`);
const domainRe = new RegExp(`^${DOMAIN}$`);
const tagRe = new RegExp(`^${TAG}$`);
const digestRe = new RegExp(`^${DIGEST}$`);

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Registry host, with port when given: `docker.io`, `127.0.0.1:5443`. */
  domain: string;
  /** Repository path under the registry: `library/nginx`. */
  path: string;
  /** Tag; `latest` when neither tag nor digest was given. */
  tag?: string;
  /** `sha256:<64 hex>` when given. */
  digest?: string;
}

/** Thrown for a string that is not an image reference; the message says why. */
export class InvalidImageReferenceError extends Error {
  readonly code = 'PREPULL_ERR_INVALID_IMAGE_REFERENCE';
  readonly reference: string;
  constructor(reference: string, reason: string) {
    super(`invalid image reference ${JSON.stringify(reference)}: ${reason}`);
    this.name = 'InvalidImageReferenceError';
    this.reference = reference;
  }
}

/** Whether `value` is a digest this project accepts: `sha256:` and 64 lower-case hex digits. */
export function isDigest(value: string): boolean {
  return digestRe.test(value);
}

/** Parses and normalises a reference; throws {@link InvalidImageReferenceError}. */
export function parseImageReference(input: string): ImageReference {
  const fail = (reason: string): never => {
    throw new InvalidImageReferenceError(input, reason);
  };
  if (input.length === 0) fail('it is empty');
  if (input !== input.trim()) fail('it has leading or trailing white space');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestRe.test(digest)) fail('the digest must be sha256: followed by 64 lower-case hex digits');
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!tagRe.test(tag)) fail('the tag must be 1-128 characters of letters, digits, _, . and -');
  }

  const slash = rest.indexOf('/');
  const first = slash < 0 ? rest : rest.slice(0, slash);
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  // The kubelet's rule: a first component is a registry host when it has a dot,
  // a port, or is localhost (an upper-case letter also rules out a repository).
  if (
    slash >= 0 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())
  ) {
    if (!domainRe.test(first)) fail(`${JSON.stringify(first)} is not a valid registry host`);
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (path.length === 0) fail('the repository name is empty');
  for (const component of path.split('/')) {
    if (component !== component.toLowerCase()) fail('the repository name must be lower case');
    if (!pathComponentRe.test(component)) {
      fail(
        `repository component ${JSON.stringify(component)} must be lower-case letters and digits, separated by ., _, __ or -`,
      );
    }
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPOSITORY_PREFIX + path;
  if (domain.length + 1 + path.length > NAME_MAX_LENGTH)
    fail(`the name is longer than ${NAME_MAX_LENGTH} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';

  const ref: ImageReference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The repository name without tag or digest: `docker.io/library/nginx`. */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** Formats a parsed reference in full: `docker.io/library/nginx:latest`. */
export function formatImageReference(ref: ImageReference): string {
  return `${repositoryOf(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** `nginx` → `docker.io/library/nginx:latest`. Idempotent. */
export function normalizeImageReference(input: string): string {
  return formatImageReference(parseImageReference(input));
}

/** Image pull policies the kubelet knows. */
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/**
 * The kubelet's default: `Always` for the `latest` tag or no tag (and no
 * digest), `IfNotPresent` otherwise.
 */
export function defaultPullPolicy(input: string): PullPolicy {
  // Like the kubelet, a digest without a tag means IfNotPresent, but an explicit
  // `latest` tag means Always even next to a digest.
  return parseImageReference(input).tag === 'latest' ? 'Always' : 'IfNotPresent';
}
