/**
 * Asks the registry about a PrePulledImage's images, with the credentials the
 * kubelet would use for its pods: the pull secrets it names and the copies of
 * its RegistryCredentials, read from the API by name when a check is due
 * (not cached: only Prepull's own copies are). Every object's questions go
 * through one shared resolver, so a tag named by many objects costs one
 * request per interval. Each answer, and each failure, is dated by when the
 * registry gave it, and pull secrets that could not be used are remembered
 * until they are due again: a pass between two requests computes the same
 * status, so it writes none and brings no other pass. I/O.
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
  type ResolveTarget,
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
  /** `fresherThan`: a refresh asked for then (clock ms); nothing remembered from before it is reused. */
  check(
    ppi: PrePulledImage,
    pullSecretNames: readonly string[],
    fresherThan?: number,
  ): Promise<RegistryCheckResult>;
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

/** Pull secrets that could not be used, remembered until they are due to be read again. */
interface SecretsFailure {
  reason: string;
  message: string;
  at: number;
  retryMs: number;
}

/** The registry checks, over one shared resolver. */
export function createRegistryChecks(deps: RegistryChecksDeps): RegistryChecks {
  const resolver = new SharedResolver<ImageDescription>({
    clock: deps.clock,
    ...(deps.random ? { random: deps.random } : {}),
    fetch: (target) => deps.registry.inspect(target.ref, target.credentials),
  });
  // By namespace and secret names. A pass between two reads shows the same
  // failure at the same time, so it writes no status, which would bring
  // another pass (and another read) at once.
  const secretsFailures = new Map<string, SecretsFailure>();

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

  /** The keyring of `names`, or why it cannot be had: read again only once a failure is due. */
  async function keyringOf(
    namespace: string,
    names: readonly string[],
    interval: number,
    fresherThan: number | undefined,
  ): Promise<Keyring | SecretsFailure> {
    const now = deps.clock.now();
    for (const [key, failure] of secretsFailures) {
      if (now >= failure.at + failure.retryMs) secretsFailures.delete(key);
    }
    const key = `${namespace}/${[...new Set(names)].sort().join(',')}`;
    const remembered = secretsFailures.get(key);
    if (remembered && (fresherThan === undefined || remembered.at >= fresherThan)) return remembered;
    try {
      return new Keyring(await pullSecrets(namespace, names));
    } catch (err) {
      // The kubelet fails every pull with such a secret; so does every check.
      // Secrets that cannot be read (RBAC, the API server) fail the checks, not the pass: the
      // DaemonSet and the pulls go on, and status says why the registry was not asked.
      const { reason, message } =
        err instanceof InvalidPullSecretError
          ? { reason: Reason.Unauthorized, message: err.message }
          : classifyFailure(err);
      const retryMs = err instanceof InvalidPullSecretError ? interval : SECRETS_RETRY_MS;
      const remembered = { reason, message, at: now, retryMs };
      secretsFailures.set(key, remembered);
      return remembered;
    }
  }

  return {
    async check(ppi, pullSecretNames, fresherThan) {
      resolver.prune();
      const refs = checkedImages(ppi);
      const interval = checkIntervalMs(ppi);
      // Each answer is dated by when the registry gave it, not by this pass.
      const answeredAt = (target: ResolveTarget) => new Date(resolver.answeredAt(target) ?? deps.clock.now());
      // A failed check keeps the last digest resolved: the pods stay pinned to it.
      const previous = resolutionsInStatus(ppi, refs);
      const keyring = await keyringOf(ppi.metadata.namespace ?? '', pullSecretNames, interval, fresherThan);
      if (!(keyring instanceof Keyring)) {
        const failed = failedCheck(keyring.reason, keyring.message, new Date(keyring.at));
        const resolutions = refs.map((ref, i) => (ref ? keepingLastDigest(failed, previous[i]) : undefined));
        const dueIn = keyring.at + keyring.retryMs - deps.clock.now();
        return { resolutions, nextInMs: Math.max(MIN_COME_BACK_MS, dueIn) };
      }
      let nextInMs = interval;
      const resolutions = await Promise.all(
        refs.map(async (ref, index) => {
          if (!ref) return undefined;
          const target = { ref, credentials: keyring.lookup(repositoryOf(ref)) };
          try {
            const description = await resolver.get(target, interval, fresherThan);
            return resolvedImage(description.digest, description.platforms, answeredAt(target));
          } catch (err) {
            if (!(err instanceof RegistryError)) throw err;
            const failed = failedCheck(err.reason, err.message, answeredAt(target));
            return keepingLastDigest(failed, previous[index]);
          } finally {
            nextInMs = Math.min(nextInMs, Math.max(MIN_COME_BACK_MS, resolver.dueIn(target, interval)));
          }
        }),
      );
      return { resolutions, nextInMs };
    },
  };
}
