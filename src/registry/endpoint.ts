/**
 * Where and how to reach a registry: `docker.io` is served by
 * `registry-1.docker.io`, and the operator's TLS settings say which CA bundle
 * to trust and which registries are insecure (TLS unverified, or plain HTTP
 * when they do not speak TLS, as Docker's `insecure-registries` means). Pure.
 */

/** The operator's TLS settings for registries (its flags or ConfigMap fill these in). */
export interface RegistryTlsOptions {
  /**
   * PEM certificates trusted for every registry, in addition to Node's
   * bundled roots: a private CA that signed an in-house registry.
   */
  caBundle?: string;
  /**
   * Registries (`host` or `host:port`, as in image references) whose TLS is
   * not verified, and which are asked over plain HTTP when they do not speak
   * TLS at all. Meant for development registries only.
   */
  insecureRegistries?: readonly string[];
}

/** How requests to one registry go out. */
export interface RegistryEndpoint {
  /** The host in image references: `docker.io`, `127.0.0.1:5443`. */
  registry: string;
  /** The host requests go to: `registry-1.docker.io` for `docker.io`. */
  apiHost: string;
  /** Skip certificate checks, and fall back to plain HTTP when the registry has no TLS. */
  insecure: boolean;
}

const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

/** The endpoint of `registry` under `tls`. */
export function registryEndpoint(registry: string, tls: RegistryTlsOptions = {}): RegistryEndpoint {
  const apiHost = registry === 'docker.io' || registry === 'index.docker.io' ? DOCKER_HUB_API_HOST : registry;
  const insecure = (tls.insecureRegistries ?? []).some(
    (entry) =>
      entry.toLowerCase() === registry.toLowerCase() || entry.toLowerCase() === apiHost.toLowerCase(),
  );
  return { registry, apiHost, insecure };
}
