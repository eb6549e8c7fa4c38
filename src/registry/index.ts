/**
 * The OCI distribution client and what goes with it: credentials chosen the
 * kubelet's way, tag→digest and platforms, and the shared resolver. What the
 * rest of Prepull imports from `src/registry`.
 */
export { pullScope } from './challenge.ts';
export {
  type ImageDescription,
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedManifest,
} from './client.ts';
export { type RegistryTlsOptions, registryEndpoint } from './endpoint.ts';
export {
  isTransientRegistryError,
  RegistryError,
  RegistryInvalidResponseError,
  RegistryNotFoundError,
  RegistryUnauthorizedError,
  RegistryUnavailableError,
} from './errors.ts';
export {
  credentialFingerprint,
  InvalidPullSecretError,
  Keyring,
  type PullSecret,
  type RegistryCredential,
} from './keyring.ts';
export { formatPlatform, MediaType, type Platform, platformMatches, platformMismatch } from './manifest.ts';
export { type ResolveTarget, resolveKey, SharedResolver, type SharedResolverOptions } from './resolver.ts';
