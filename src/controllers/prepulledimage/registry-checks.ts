/**
 * Asks the registry about a PrePulledImage's images, with the credentials the
 * kubelet would use for its pods: the pull secrets it names and the copies of
 * its RegistryCredentials, read from the API by name when a check is due
 * (not cached: only Prepull's own copies are). Every object's questions go
 * through one shared resolver, so a tag named by many objects costs one
 * request per interval. I/O.
 */
import { Reason } from '../../api/conditions.ts';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import { repositoryOf } from '../../image/reference.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { Secret } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import {
  type ImageDescription,
  InvalidPullSecretError,
  Keyring,
  type PullSecret,
  type RegistryClient,
  RegistryError,
  SharedResolver,
} from '../../registry/index.ts';
import type { Clock } from '../../runtime/clock.ts';
import { classifyFailure, StepError } from '../../runtime/failure.ts';
import {
  checkedImages,
  checkIntervalMs,
  failedCheck,
  type ImageResolution,
  keepingLastDigest,
  resolutionsInStatus,
  resolvedImage,
} from './resolution.ts';

/** A check's outcome: one resolution per spec image (undefined where none is made), and when to come back. */
export interface RegistryCheckResult {
  resolutions: (ImageResolution | undefined)[];
  nextInMs: number;
}

/** Registry checks for every PrePulledImage; one per operator. */
export interface RegistryChecks {
  check(ppi: PrePulledImage, pullSecretNames: readonly string[]): Promise<RegistryCheckResult>;
}

export interface RegistryChecksDeps {
  client: KubeClient;
  registry: RegistryClient;
  clock: Clock;
  random?: () => number;
}

/** Checks made no sooner than this apart, whatever a back-off says. */
const MIN_COME_BACK_MS = 1_000;
/** Pull secrets that could not be read are read again after this long. */
const SECRETS_RETRY_MS = 30_000;

/** The registry checks, over one shared resolver. */
export function createRegistryChecks(deps: RegistryChecksDeps): RegistryChecks {
  const resolver = new SharedResolver<ImageDescription>({
    clock: deps.clock,
    ...(deps.random ? { random: deps.random } : {}),
    fetch: (target) => deps.registry.inspect(target.ref, target.credentials),
  });

  async function pullSecrets(namespace: string, names: readonly string[]): Promise<PullSecret[]> {
    const secrets: PullSecret[] = [];
    for (const name of new Set(names)) {
      // A list by name, not a get: the operator's role lists secrets (for its copies' informer) and
      // grants get on none, and the answer is the same one secret.
      const listed = await deps.client
        .list<Secret>(Resources.secrets, { namespace, fieldSelector: `metadata.name=${name}` })
        .catch((err: unknown) => {
          throw new StepError('reading a pull secret', err);
        });
      const secret = listed.items[0];
      // A missing pull secret is skipped, as the kubelet skips it.
      if (!secret) continue;
      const data = Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
      secrets.push({ name, type: secret.type ?? '', data });
    }
    return secrets;
  }

  return {
    async check(ppi, pullSecretNames) {
      resolver.prune();
      const refs = checkedImages(ppi);
      const interval = checkIntervalMs(ppi);
      const now = () => new Date(deps.clock.now());
      // A failed check keeps the last digest resolved: the pods stay pinned to it.
      const previous = resolutionsInStatus(ppi, refs);
      const failAll = (reason: string, message: string, nextInMs: number) => {
        const failed = failedCheck(reason, message, now());
        const resolutions = refs.map((ref, i) => (ref ? keepingLastDigest(failed, previous[i]) : undefined));
        return { resolutions, nextInMs };
      };
      let keyring: Keyring;
      try {
        keyring = new Keyring(await pullSecrets(ppi.metadata.namespace ?? '', pullSecretNames));
      } catch (err) {
        // The kubelet fails every pull with such a secret; so does every check.
        if (err instanceof InvalidPullSecretError) return failAll(Reason.Unauthorized, err.message, interval);
        // Secrets that cannot be read (RBAC, the API server) fail the checks, not the pass: the
        // DaemonSet and the pulls go on, and status says why the registry was not asked.
        const failure = classifyFailure(err);
        return failAll(failure.reason, failure.message, SECRETS_RETRY_MS);
      }
      let nextInMs = interval;
      const resolutions = await Promise.all(
        refs.map(async (ref, index) => {
          if (!ref) return undefined;
          const target = { ref, credentials: keyring.lookup(repositoryOf(ref)) };
          try {
            const description = await resolver.get(target, interval);
            return resolvedImage(description.digest, description.platforms, now());
          } catch (err) {
            if (!(err instanceof RegistryError)) throw err;
            return keepingLastDigest(failedCheck(err.reason, err.message, now()), previous[index]);
          } finally {
            nextInMs = Math.min(nextInMs, Math.max(MIN_COME_BACK_MS, resolver.dueIn(target, interval)));
          }
        }),
      );
      return { resolutions, nextInMs };
    },
  };
}
