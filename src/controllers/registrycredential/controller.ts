/**
 * The RegistryCredential controller: for each object, the copy of its source
 * secret in every target namespace and its name on the chosen
 * ServiceAccounts there, then a status written only when it changed.
 * Everything is read from informers and only the differences are written, at
 * most WRITE_CONCURRENCY requests at a time (writes.ts); a pass over namespaces
 * that are already right makes no request.
 *
 * Nothing here logs, records or reports secret content: messages carry
 * names, counts and HTTP status codes, never a server's error text (which may
 * echo what was sent).
 */
import { isDeepStrictEqual } from 'node:util';
import { Reason } from '../../api/conditions.ts';
import {
  type RegistryCredential,
  type RegistryCredentialStatus,
  registryCredentialSpecSchema,
} from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { EventRecorder } from '../../kube/events.ts';
import { keyOf } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/controller.ts';
import { mapConcurrently } from '../../runtime/parallel.ts';
import {
  ownedCopies,
  type RegistryCredentialInformers,
  requestingNamespaces,
  serviceAccountsIn,
} from './informers.ts';
import { CLEANUP_FINALIZER } from './labels.ts';
import type { PendingWrites } from './pending.ts';
import { planCleanup, planSync } from './plan.ts';
import { readSource, type SourceCredentials } from './source.ts';
import { type NamespaceFailure, stalledStatus, syncedStatus, transitionEvents } from './status.ts';
import { isTerminating, selectTargetNamespaces } from './targets.ts';
import { copyNameSelection, type SecretWatches, sourceSelection, type WatchState } from './watches.ts';
import { createSyncWriter, describeError, FIELD_MANAGER, failureOf, WRITE_CONCURRENCY } from './writes.ts';

/** Field manager of the status; copies and the finalizer have FIELD_MANAGER. */
export const STATUS_FIELD_MANAGER = 'prepull-registrycredential-status';

export interface RegistryCredentialControllerDeps {
  client: KubeClient;
  clock: Clock;
  events: EventRecorder;
  informers: RegistryCredentialInformers;
  watches: SecretWatches;
  /** Shared with the informer handlers, which mark writes as seen. */
  pending: PendingWrites;
}

/** Raised after the status is written when some namespace failed in a way a retry may fix. */
class RetryableSyncError extends Error {
  override readonly name = 'RetryableSyncError';
}

export function registryCredentialReconciler(deps: RegistryCredentialControllerDeps): Reconciler {
  const { informers, client, clock, events, watches, pending } = deps;
  /** The status we last wrote per key and the resourceVersion it was written over (see PrePulledImage). */
  const written = new Map<string, { over: string | undefined; status: RegistryCredentialStatus }>();
  const writer = createSyncWriter(client, pending);

  return async (key: string, { log }: ReconcileContext): Promise<ReconcileResult | undefined> => {
    const cached = informers.registryCredentials.get(key);
    // Gone, or going with nothing left for us to do: the garbage collector takes the copies.
    if (!cached || (cached.metadata.deletionTimestamp && !hasCleanupFinalizer(cached))) {
      written.delete(key);
      watches.forget(key);
      return undefined;
    }
    const mine = written.get(key);
    const rc: RegistryCredential =
      mine && mine.over === cached.metadata.resourceVersion ? { ...cached, status: mine.status } : cached;
    const now = new Date(clock.now());

    const parsed = registryCredentialSpecSchema.safeParse(rc.spec);
    if (!parsed.success) {
      const message = parsed.error.issues
        .map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`)
        .join('; ');
      await writeStatus(rc, stalledStatus(rc, Reason.InvalidSpec, message, now), log);
      return undefined;
    }
    const withSpec: RegistryCredential = { ...rc, spec: parsed.data };
    const { secretRef } = withSpec.spec.source;
    const [source, copies] = watches.use(key, [
      sourceSelection(secretRef.namespace, secretRef.name),
      copyNameSelection(withSpec.spec.target.secretName),
    ]) as [WatchState, WatchState];

    if (withSpec.metadata.deletionTimestamp) return finalize(withSpec, copies, log);
    if (await waitingForWatches(withSpec, source, copies, now, log)) return undefined;
    const read = readSource(
      source.informer.get(`${secretRef.namespace}/${secretRef.name}`),
      withSpec.spec.source,
    );
    if (!read.ok) {
      // The copies stay as they are: a source being fixed must not take every namespace's secret away.
      await writeStatus(withSpec, stalledStatus(withSpec, read.reason, read.message, now), log);
      return undefined;
    }
    await reconcileNormal(withSpec, read, copies, now, log);
    return undefined;
  };

  /**
   * Whether a watch the pass needs has not listed yet; a failed list (403 when
   * RBAC does not allow the source's namespace) is reported as Stalled. The
   * watch tells the queue when that changes, so there is no retry loop here.
   */
  async function waitingForWatches(
    rc: RegistryCredential,
    source: WatchState,
    copies: WatchState,
    now: Date,
    log: ReconcileContext['log'],
  ): Promise<boolean> {
    const { secretRef } = rc.spec.source;
    for (const [watch, what] of [
      [source, `the source secret ${secretRef.namespace}/${secretRef.name}`],
      [copies, `secrets named ${rc.spec.target.secretName}`],
    ] as const) {
      if (watch.synced) continue;
      if (watch.error) {
        const reason = watch.error.status === 403 ? Reason.Forbidden : Reason.SyncFailed;
        const message = `cannot read ${what}: ${describeError(watch.error)}`;
        await writeStatus(rc, stalledStatus(rc, reason, message, now), log);
      }
      return true;
    }
    return false;
  }

  /** One pass: plan from the caches, write the differences, then the status. */
  async function reconcileNormal(
    rc: RegistryCredential,
    source: SourceCredentials,
    copies: WatchState,
    now: Date,
    log: ReconcileContext['log'],
  ): Promise<void> {
    const { spec } = rc;
    const targets = selectTargetNamespaces({
      spec,
      namespaces: informers.namespaces.list(),
      requestedBy: requestingNamespaces(informers, rc.metadata.name ?? ''),
    });
    const plan = planSync({
      rc,
      targets,
      dockerConfigJson: source.dockerConfigJson,
      secretAt: (namespace) => copies.informer.get(`${namespace}/${spec.target.secretName}`),
      ownedCopies: ownedCopies(informers, rc.metadata.uid ?? '', copies),
      serviceAccountsIn: (namespace) => serviceAccountsIn(informers, namespace, spec.serviceAccounts ?? []),
      isTerminating: (namespace) => namespaceTerminating(namespace),
      isPending: (k, rv) => pending.isPending(k, rv),
    });

    const wantsFinalizer = (spec.serviceAccounts?.length ?? 0) > 0;
    if (wantsFinalizer && !hasCleanupFinalizer(rc)) await setFinalizer(rc, true);
    const failures = await writer.carryOut(plan, log);
    const retrying = failures.some((f) => f.retrying);
    // ServiceAccount entries are gone once a pass without serviceAccounts succeeds.
    if (!wantsFinalizer && hasCleanupFinalizer(rc) && !retrying) await setFinalizer(rc, false);

    const failed = new Set(failures.map((f) => f.namespace));
    const status = syncedStatus(
      rc,
      {
        desired: targets.length,
        synced: targets.filter((namespace) => !failed.has(namespace)).length,
        failures,
        sourceResourceVersion: retrying ? (rc.status?.sourceResourceVersion ?? '') : source.resourceVersion,
      },
      now,
    );
    await writeStatus(rc, status, log);
    if (retrying) throw new RetryableSyncError(`${failed.size} namespaces failed; retrying`);
  }

  /**
   * Deletion: copies go with the garbage collector (owner references), but
   * ServiceAccount entries do not, so they are taken off before the
   * finalizer is.
   */
  async function finalize(
    rc: RegistryCredential,
    copies: WatchState,
    log: ReconcileContext['log'],
  ): Promise<undefined> {
    const key = rc.metadata.name ?? '';
    // Without the copy-name cache a conflicting namespace could not be told apart.
    if (!copies.synced) return undefined;
    const spec = rc.spec;
    const cleanup = planCleanup({
      secretName: spec.target.secretName,
      uid: rc.metadata.uid ?? '',
      targets: selectTargetNamespaces({
        spec,
        namespaces: informers.namespaces.list(),
        requestedBy: requestingNamespaces(informers, key),
      }),
      secretAt: (namespace) => copies.informer.get(`${namespace}/${spec.target.secretName}`),
      ownedCopies: ownedCopies(informers, rc.metadata.uid ?? '', copies),
      serviceAccountsIn: (namespace) => serviceAccountsIn(informers, namespace, []),
      isTerminating: (namespace) => namespaceTerminating(namespace),
      isPending: (k, rv) => pending.isPending(k, rv),
    });
    const failures: NamespaceFailure[] = [];
    await mapConcurrently(cleanup, WRITE_CONCURRENCY, async ({ namespace, serviceAccounts }) => {
      try {
        await writer.patchServiceAccounts(serviceAccounts);
      } catch (err) {
        failures.push(failureOf(namespace, 'removing ServiceAccount entries', err));
      }
    });
    if (failures.length > 0) {
      throw new RetryableSyncError(
        `cleanup failed in ${failures.length} namespaces, first ${failures[0]?.namespace}: ${failures[0]?.message}`,
      );
    }
    await setFinalizer(rc, false);
    watches.forget(key);
    written.delete(key);
    log.info(
      { serviceAccountNamespaces: cleanup.length },
      'removed ServiceAccount entries; finalizer released',
    );
    return undefined;
  }

  /**
   * Adds or drops the cleanup finalizer with server-side apply: this manager
   * owns that one entry of the set, so others' finalizers are untouched and
   * applying without it removes exactly it.
   */
  async function setFinalizer(rc: RegistryCredential, present: boolean): Promise<void> {
    await client.apply(
      Resources.registryCredentials,
      {
        metadata: { name: rc.metadata.name, ...(present ? { finalizers: [CLEANUP_FINALIZER] } : {}) },
      } as RegistryCredential,
      { fieldManager: FIELD_MANAGER, force: true },
    );
  }

  async function writeStatus(
    rc: RegistryCredential,
    status: RegistryCredentialStatus,
    log: ReconcileContext['log'],
  ): Promise<void> {
    if (isDeepStrictEqual(rc.status ?? {}, status)) return;
    await client.apply(
      Resources.registryCredentials,
      { metadata: { name: rc.metadata.name }, status } as RegistryCredential,
      { fieldManager: STATUS_FIELD_MANAGER, force: true, subresource: 'status' },
    );
    written.set(keyOf(rc), { over: rc.metadata.resourceVersion, status });
    log.debug({ synced: status.synced }, 'wrote status');
    for (const event of transitionEvents(rc.status, status)) {
      await events.record(rc, event.type, event.reason, 'Sync', event.note);
    }
  }

  function namespaceTerminating(namespace: string): boolean {
    const ns = informers.namespaces.get(namespace);
    return ns === undefined || isTerminating(ns);
  }
}

function hasCleanupFinalizer(rc: RegistryCredential): boolean {
  return rc.metadata.finalizers?.includes(CLEANUP_FINALIZER) ?? false;
}
