/**
 * Which credentials the kubelet would use for an image: the pod's pull
 * secrets (`kubernetes.io/dockerconfigjson` or the older `dockercfg`) merged
 * into one keyring, then matched by the kubelet's own rules, mirrored from
 * kubernetes pkg/credentialprovider (keyring.go):
 *
 * - an entry's key is its host (with port) plus its path, any `http(s)://`
 *   dropped and a leading `/v1/` or `/v2/` path counted as none;
 * - an entry matches when the host has as many dot-separated parts, each
 *   part matches as a glob (`*.example.com`), the ports are equal, and the
 *   entry's path is a prefix of the repository's;
 * - keys are tried longest first (reverse sort), and every matching key's
 *   credentials are returned in that order, to be tried one after another;
 * - an `index.docker.io` entry (e.g. `https://index.docker.io/v1/`) serves
 *   Docker Hub images when nothing else matched. `registry-1.docker.io`, the
 *   API host behind docker.io, is no alias: the kubelet does not match it.
 *
 * Pure.
 */
import { createHash } from 'node:crypto';

/** A user name and password (or token) for basic auth, or to exchange for a bearer token. */
export interface RegistryCredential {
  username: string;
  password: string;
}

/** A pull secret as the keyring needs it: its type and its data, decoded to text. */
export interface PullSecret {
  name: string;
  type: string;
  data: Readonly<Record<string, string | undefined>>;
}

/** A pull secret whose content the kubelet would refuse too. */
export class InvalidPullSecretError extends Error {
  readonly code = 'PREPULL_ERR_INVALID_PULL_SECRET';
  override readonly name = 'InvalidPullSecretError';
  readonly secret: string;
  constructor(secret: string, reason: string) {
    super(`pull secret ${JSON.stringify(secret)}: ${reason}`);
    this.secret = secret;
  }
}

const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
const DOCKERCFG_TYPE = 'kubernetes.io/dockercfg';
const DOCKERCFG_KEY = '.dockercfg';
const DEFAULT_REGISTRY_HOST = 'index.docker.io';

/** One dockercfg entry's credentials; `auth` (base64 `user:password`) wins over the separate fields, as in the kubelet. */
function entryCredential(entry: unknown): RegistryCredential {
  const o = (entry && typeof entry === 'object' ? entry : {}) as Record<string, unknown>;
  let username = typeof o.username === 'string' ? o.username : '';
  let password = typeof o.password === 'string' ? o.password : '';
  if (typeof o.auth === 'string' && o.auth !== '') {
    const decoded = Buffer.from(o.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  return { username, password };
}

/** The `auths` map of a pull secret, or undefined when the secret is of neither type (the kubelet skips those). */
function authsOf(secret: PullSecret): Record<string, unknown> | undefined {
  const parse = (text: string): Record<string, unknown> => {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new InvalidPullSecretError(secret.name, 'its docker config is not a JSON object');
  };
  const json = secret.data[DOCKER_CONFIG_JSON_KEY];
  if (secret.type === DOCKER_CONFIG_JSON_TYPE && json) {
    const auths = parse(json).auths;
    return auths && typeof auths === 'object' ? (auths as Record<string, unknown>) : {};
  }
  const cfg = secret.data[DOCKERCFG_KEY];
  if (secret.type === DOCKERCFG_TYPE && cfg) return parse(cfg);
  return undefined;
}

/** Go's url.Parse of `https://` + a schemeless location, reduced to what the keyring uses. */
function splitLocation(location: string): { host: string; path: string } {
  let rest = location.replace(/^https?:\/\//, '');
  rest = rest.split(/[?#]/, 1)[0]!;
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return { host, path: slash < 0 ? '' : rest.slice(slash) };
}

/** The keyring key of a dockercfg location: host plus path, `/v1/` and `/v2/` counting as no path. */
export function keyringKey(location: string): string {
  const { host, path } = splitLocation(location);
  const effective = path.startsWith('/v2/') || path.startsWith('/v1/') ? path.slice(3) : path;
  return effective.length > 0 && effective !== '/' ? host + effective : host;
}

/** Go's net.SplitHostPort, falling back to the whole host and no port as the kubelet does. */
function splitHostPort(host: string): { parts: string[]; port: string } {
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(host);
  if (bracketed) return { parts: bracketed[1]!.split('.'), port: bracketed[2]! };
  const colon = host.indexOf(':');
  if (colon >= 0 && colon === host.lastIndexOf(':') && !host.includes('[')) {
    return { parts: host.slice(0, colon).split('.'), port: host.slice(colon + 1) };
  }
  return { parts: host.split('.'), port: '' };
}

/**
 * Go's path/filepath.Match for one host part (no separators in it): `*`, `?`,
 * `[...]` classes with ranges and `^` negation, `\` escapes. A malformed
 * pattern matches nothing, as the kubelet treats Match's error.
 */
export function globMatch(pattern: string, text: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= pattern.length) return false;
      source += `\\${pattern[++i]}`;
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return false;
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^');
      if (negated) body = body.slice(1);
      if (body === '') return false;
      source += `[${negated ? '^' : ''}${body.replace(/[\]\\^]/g, '\\$&')}]`;
      i = end;
    } else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  try {
    return new RegExp(`^${source}$`).test(text);
  } catch {
    return false;
  }
}

/** The kubelet's URLsMatchStr: does keyring key `glob` cover `target` (a repository, `host/path`)? */
export function keyMatches(glob: string, target: string): boolean {
  const g = splitLocation(glob);
  const t = splitLocation(target);
  const gh = splitHostPort(g.host);
  const th = splitHostPort(t.host);
  if (gh.port !== th.port) return false;
  if (gh.parts.length !== th.parts.length) return false;
  if (!t.path.startsWith(g.path)) return false;
  return gh.parts.every((part, k) => globMatch(part, th.parts[k]!));
}

/** The kubelet's isDefaultRegistryMatch: does `image` pull from Docker Hub? */
function isDockerHub(image: string): boolean {
  const slash = image.indexOf('/');
  const first = slash < 0 ? image : image.slice(0, slash);
  if (first.length === 0) return false;
  if (slash < 0) return true;
  if (first === 'docker.io' || first === DEFAULT_REGISTRY_HOST) return true;
  return !/[.:]/.test(first);
}

/** Credentials by keyring key, searched the kubelet's way. */
export class Keyring {
  readonly #index: string[];
  readonly #creds: Map<string, RegistryCredential[]>;

  /** Merges the pull secrets, in order; throws {@link InvalidPullSecretError} where the kubelet would fail the pull. */
  constructor(secrets: readonly PullSecret[]) {
    this.#creds = new Map();
    for (const secret of secrets) {
      const auths = authsOf(secret);
      if (!auths) continue;
      for (const [location, entry] of Object.entries(auths)) {
        const key = keyringKey(location);
        const list = this.#creds.get(key) ?? [];
        list.push(entryCredential(entry));
        this.#creds.set(key, list);
      }
    }
    this.#index = [...this.#creds.keys()].sort().reverse();
  }

  /**
   * The credentials for `repository` (`127.0.0.1:5443/team/app`,
   * `docker.io/library/nginx`: no tag or digest), most specific first. Empty:
   * pull anonymously.
   */
  lookup(repository: string): RegistryCredential[] {
    const found = this.#index
      .filter((key) => keyMatches(key, repository))
      .flatMap((k) => this.#creds.get(k)!);
    if (found.length > 0) return found;
    const hub = this.#creds.get(DEFAULT_REGISTRY_HOST);
    return hub && isDockerHub(repository) ? [...hub] : [];
  }
}

/**
 * A stable, one-way name for a list of credentials: what the shared resolver
 * keys on, so that two callers share a request only when they would present
 * the same credentials, and no key or log line can reveal them.
 */
export function credentialFingerprint(credentials: readonly RegistryCredential[]): string {
  if (credentials.length === 0) return 'anonymous';
  const hash = createHash('sha256');
  for (const c of credentials)
    hash.update(`${c.username.length}:${c.username}:${c.password.length}:${c.password}\n`);
  return `sha256:${hash.digest('hex').slice(0, 32)}`;
}
