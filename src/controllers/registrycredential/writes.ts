/**
 * Carries out a RegistryCredential's plan: creates, updates and deletes of
 * copies and ServiceAccount patches, namespace by namespace, at most
 * {@link WRITE_CONCURRENCY} at once. A failure is the namespace's, not the
 * pass's: it comes back as a reason and a message made of the step, the HTTP
 * status and its reason, never the server's text (which may echo what was
 * sent, i.e. the secret).
 */
import type { Logger } from 'pino';
import { Reason } from '../../api/conditions.ts';
import type { KubeClient } from '../../kube/client.ts';
import { ApiError, isAlreadyExists } from '../../kube/errors.ts';
import { keyOf, type Secret, type ServiceAccount } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import type { ConsistencyStore } from '../../runtime/consistency.ts';
import { mapConcurrently } from '../../runtime/parallel.ts';
import { hasWrites, type NamespaceWork, type ServiceAccountWork } from './plan.ts';
import type { NamespaceFailure } from './status.ts';

/** Writes in flight at once for one RegistryCredential: 1000 namespaces in seconds, without a flood. */
export const WRITE_CONCURRENCY = 16;

export interface SyncWriter {
  /** Runs the plan's writes; returns what failed (Conflicts included), never throws. */
  carryOut(plan: NamespaceWork[], log: Logger): Promise<NamespaceFailure[]>;
  /** Patches ServiceAccounts one after another; throws on the first failure. */
  patchServiceAccounts(patches: ServiceAccountWork[]): Promise<void>;
}

/**
 * The writer of one controller, applying under `fieldManager`; every write is
 * remembered in `store` until the cache shows it.
 */
export function createSyncWriter(
  client: KubeClient,
  store: ConsistencyStore,
  fieldManager: string,
): SyncWriter {
  async function carryOut(plan: NamespaceWork[], log: Logger): Promise<NamespaceFailure[]> {
    const failures: NamespaceFailure[] = [];
    const counts = { created: 0, updated: 0, deleted: 0, serviceAccounts: 0 };
    for (const work of plan) {
      if (work.conflict) {
        failures.push({
          namespace: work.namespace,
          reason: Reason.Conflict,
          message:
            'a secret of this name exists and is not managed by this RegistryCredential; it is left untouched',
          retrying: false,
        });
      }
    }
    await mapConcurrently(plan.filter(hasWrites), WRITE_CONCURRENCY, async (work) => {
      const failure = await syncNamespace(work, counts);
      if (failure) failures.push(failure);
    });
    if (counts.created + counts.updated + counts.deleted + counts.serviceAccounts > 0) {
      log.info({ ...counts, failed: failures.length }, 'synced secret copies');
    }
    return failures;
  }

  async function syncNamespace(
    work: NamespaceWork,
    counts: { created: number; updated: number; deleted: number; serviceAccounts: number },
  ): Promise<NamespaceFailure | undefined> {
    let step = 'writing the secret';
    try {
      const copy = work.copy;
      if (copy) {
        const key = keyOf(copy.desired);
        if (copy.action === 'recreate' && copy.existing) {
          step = 'replacing the secret (its type differs)';
          await deleteOwned(copy.existing);
        }
        if (copy.action === 'update' && copy.existing) {
          step = 'updating the secret';
          // The UID pins the write to the secret the cache showed as ours; a
          // secret deleted and re-created by someone else meanwhile fails it.
          const body = {
            ...copy.desired,
            metadata: { ...copy.desired.metadata, uid: copy.existing.metadata.uid },
          };
          await client.apply(Resources.secrets, body, { fieldManager, force: true });
          store.wrote(Resources.secrets, key, copy.existing.metadata.resourceVersion);
          counts.updated++;
        } else {
          step = 'creating the secret';
          // A create, not an apply: a secret someone made meanwhile fails it instead of being overwritten.
          await client.create(Resources.secrets, copy.desired);
          store.wrote(Resources.secrets, key, undefined);
          counts.created++;
        }
      }
      step = 'patching ServiceAccounts';
      await patchServiceAccounts(work.serviceAccounts);
      counts.serviceAccounts += work.serviceAccounts.length;
      step = 'deleting a stale copy';
      for (const stale of work.deletions) {
        await deleteOwned(stale);
        counts.deleted++;
      }
      return undefined;
    } catch (err) {
      return failureOf(work.namespace, step, err);
    }
  }

  async function patchServiceAccounts(patches: ServiceAccountWork[]): Promise<void> {
    for (const { sa, ops } of patches) {
      const name = sa.metadata.name ?? '';
      try {
        await client.patch<ServiceAccount>(
          Resources.serviceAccounts,
          name,
          sa.metadata.namespace,
          ops,
          'json',
          { fieldManager },
        );
      } catch (err) {
        // A failed `test` operation is answered 422: someone wrote the ServiceAccount after our cache saw it.
        if (err instanceof ApiError && err.status === 422) throw new ServiceAccountChangedError(name);
        throw err;
      }
      store.wrote(Resources.serviceAccounts, keyOf(sa), sa.metadata.resourceVersion);
    }
  }

  async function deleteOwned(secret: Secret): Promise<void> {
    // The UID precondition: only ever the very secret we own.
    await client.delete(Resources.secrets, secret.metadata.name ?? '', secret.metadata.namespace, {
      ...(secret.metadata.uid ? { uid: secret.metadata.uid } : {}),
    });
    store.wrote(Resources.secrets, keyOf(secret), secret.metadata.resourceVersion);
  }

  return { carryOut, patchServiceAccounts };
}

/** A ServiceAccount changed between the cache and the patch; the next pass computes it again. */
export class ServiceAccountChangedError extends Error {
  readonly code = 'PREPULL_ERR_SERVICEACCOUNT_CHANGED';

  constructor(serviceAccount: string) {
    super(`ServiceAccount ${serviceAccount} changed meanwhile; patching it again from a fresh cache`);
    this.name = 'ServiceAccountChangedError';
  }
}

/** A failed write in `namespace` at `step`, as status reports it. */
export function failureOf(namespace: string, step: string, err: unknown): NamespaceFailure {
  if (err instanceof ServiceAccountChangedError) {
    return { namespace, reason: Reason.SyncFailed, message: err.message, retrying: true };
  }
  if (isAlreadyExists(err)) {
    // The cache had not seen it yet; its watch event brings it, and the next pass decides.
    return {
      namespace,
      reason: Reason.SyncFailed,
      message: `${step}: it appeared meanwhile`,
      retrying: true,
    };
  }
  const forbidden = err instanceof ApiError && err.status === 403;
  return {
    namespace,
    reason: forbidden ? Reason.Forbidden : Reason.SyncFailed,
    message: `${step}: ${describeError(err)}`,
    retrying: true,
  };
}

/** An HTTP status and reason, never the server's text: it may quote the request. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return `${err.status} ${err.reason}`;
  // A network failure: its code (ECONNREFUSED, …) says enough.
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.name : 'unknown error';
}
