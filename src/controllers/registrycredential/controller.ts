/**
 * The RegistryCredential kind: for each object, the copy of its source secret
 * in every target namespace and its name on the chosen ServiceAccounts
 * there, and with spec.nodes the node copy in Prepull's namespace that the
 * node agents merge into the kubelet's config.json (node-writes.ts). Everything is read from informers and only the differences are
 * written, at most WRITE_CONCURRENCY requests at a time (writes.ts); a pass
 * over namespaces that are already right makes no request. The runtime's
 * object controller runs it, writes its status and records its Events.
 *
 * The source and copy-name secret watches are the kind's own (watches.ts):
 * they follow the RegistryCredentials, so the operator caches exactly the
 * secrets it reads, and they stop with the controller.
 *
 * Nothing here logs, records or reports secret content: messages carry
 * names, counts and HTTP status codes, never a server's error text (which may
 * echo what was sent).
 */
import { Reason } from '../../api/conditions.ts';
import {
  type RegistryCredential,
  type RegistryCredentialSpec,
  type RegistryCredentialStatus,
  registryCredentialSpecSchema,
} from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import { isForbidden } from '../../kube/errors.ts';
import { isTerminating } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import {
  copyNameSelection,
  type SecretWatches,
  secretSelection,
  type WatchState,
} from '../../kube/secret-watches.ts';
import { ClassifiedError } from '../../runtime/failure.ts';
import type { ObjectKind, ReconcileOutcome, ReconcileRequest } from '../../runtime/object-controller.ts';
import { mapConcurrently } from '../../runtime/parallel.ts';
import { withAdmissionStatus } from './admission-plan.ts';
import { type AdmissionMode, admissionWatches, syncAdmission } from './admission-writes.ts';
import {
  ownedCopies,
  type RegistryCredentialInformers,
  registryCredentialWatches,
  requestingNamespaces,
  serviceAccountsIn,
} from './informers.ts';
import { CLEANUP_FINALIZER } from './labels.ts';
import { withNodeStatus } from './node-status.ts';
import { syncNodeCopy } from './node-writes.ts';
import { planCleanup, planSync } from './plan.ts';
import { readSource } from './source.ts';
import {
  type NamespaceFailure,
  REGISTRY_CREDENTIAL_TRANSITIONS,
  stalledStatus,
  syncedStatus,
} from './status.ts';
import { allowedRequesters, selectTargetNamespaces } from './targets.ts';
import { createSyncWriter, describeError, failureOf, WRITE_CONCURRENCY } from './writes.ts';

export const CONTROLLER_NAME = 'registrycredential';

export interface RegistryCredentialKindDeps {
  client: KubeClient;
  informers: RegistryCredentialInformers;
  /** The per-source and per-copy-name secret watches; they tell the queue when they change. */
  watches: SecretWatches;
  /** Whether and where the pod admission policies are kept (admission-writes.ts). */
  admission: AdmissionMode;
  /** Prepull's own namespace: where the node copies for spec.nodes live (node-writes.ts). */
  namespace: string;
}

type Request = ReconcileRequest<RegistryCredential, RegistryCredentialSpec>;
type Outcome = ReconcileOutcome<RegistryCredentialStatus>;

/** The RegistryCredential kind, for {@link createObjectController}. */
export function registryCredentialKind(
  deps: RegistryCredentialKindDeps,
): ObjectKind<RegistryCredential, RegistryCredentialSpec, RegistryCredentialStatus> {
  const { informers, client, watches, admission, namespace } = deps;

  return {
    name: CONTROLLER_NAME,
    resource: Resources.registryCredentials,
    informer: informers.registryCredentials,
    specSchema: registryCredentialSpecSchema,
    watches: [...registryCredentialWatches(informers), ...admissionWatches(admission)],
    transitions: REGISTRY_CREDENTIAL_TRANSITIONS,
    stalledStatus,
    // A server may quote what it was sent, and what we send is a secret.
    classify: { redactServerText: true },
    forget: (key) => watches.forget(key),
    connect: (enqueue) => watches.notifyWith(enqueue),
    stop: () => watches.stop(),
    reconcile,
    finalize,
  };

  async function reconcile(request: Request): Promise<Outcome> {
    const { key, now } = request;
    const rc = withSpec(request);
    const { secretRef } = rc.spec.source;
    const [source, copies] = watches.use(key, [
      secretSelection(secretRef.namespace, secretRef.name),
      copyNameSelection(rc.spec.target.secretName),
    ]) as [WatchState, WatchState];
    const waiting = waitingForWatches(rc, source, copies, now);
    if (waiting) return waiting;
    const read = readSource(source.informer.get(`${secretRef.namespace}/${secretRef.name}`), rc.spec.source);
    if (!read.ok) {
      // The copies stay as they are: a source being fixed must not take every namespace's secret away.
      return { status: stalledStatus(rc, { reason: read.reason, message: read.message, retry: false }, now) };
    }

    const { spec } = rc;
    const targetInput = {
      spec,
      namespaces: informers.namespaces.list(),
      requestedBy: requestingNamespaces(informers, rc.metadata.name ?? ''),
    };
    const targets = selectTargetNamespaces(targetInput);
    const plan = planSync({
      rc,
      targets,
      dockerConfigJson: read.dockerConfigJson,
      secretAt: (namespace) => copies.informer.get(`${namespace}/${spec.target.secretName}`),
      ownedCopies: ownedCopies(informers, rc.metadata.uid ?? '', copies),
      serviceAccountsIn: (namespace) => serviceAccountsIn(informers, namespace, spec.serviceAccounts ?? []),
      isTerminating: namespaceTerminating,
      isPending: (type, k, cached) => request.store.isPending(type, k, cached),
    });

    const wantsFinalizer = (spec.serviceAccounts?.length ?? 0) > 0;
    if (wantsFinalizer && !hasCleanupFinalizer(rc)) await setFinalizer(request, true);
    const failures = await writerOf(request).carryOut(plan, request.log);
    const retrying = failures.some((f) => f.retrying);
    // ServiceAccount entries are gone once a pass without serviceAccounts succeeds.
    if (!wantsFinalizer && hasCleanupFinalizer(rc) && !retrying) await setFinalizer(request, false);

    // New pods get the secret at admission, even those created before their ServiceAccount is patched.
    const admitted = await syncAdmission(client, admission, {
      rc,
      requestedBy: allowedRequesters(targetInput),
      store: request.store,
      fieldManager: request.fieldManager,
    });

    // spec.nodes: the node copy the agents merge into the kubelet's config.json, and what they report.
    const nodes = await syncNodeCopy({
      client,
      informers,
      namespace,
      rc,
      dockerConfigJson: read.dockerConfigJson,
      store: request.store,
      fieldManager: request.fieldManager,
    });

    const failed = new Set(failures.map((f) => f.namespace));
    const synced = syncedStatus(
      rc,
      {
        desired: targets.length,
        synced: targets.filter((namespace) => !failed.has(namespace)).length,
        failures,
        sourceResourceVersion: retrying ? (rc.status?.sourceResourceVersion ?? '') : read.resourceVersion,
      },
      now,
    );
    const status = withNodeStatus(withAdmissionStatus(synced, admitted, rc, now), nodes, rc, now);
    if (retrying) {
      const message = `${failed.size} namespaces failed; retrying`;
      return { status, failure: { reason: Reason.SyncFailed, message, retry: true } };
    }
    if (admitted.state === 'failed') {
      return { status, failure: { reason: admitted.reason, message: admitted.message, retry: true } };
    }
    return { status };
  }

  /**
   * Whether a watch the pass needs has not listed yet: nothing to do until it
   * has. A failed list (403 when RBAC does not allow the source's namespace)
   * is reported as Stalled. The watch tells the queue when that changes, so
   * there is no retry loop here.
   */
  function waitingForWatches(
    rc: RegistryCredential,
    source: WatchState,
    copies: WatchState,
    now: Date,
  ): Outcome | undefined {
    const { secretRef } = rc.spec.source;
    for (const [watch, what] of [
      [source, `the source secret ${secretRef.namespace}/${secretRef.name}`],
      [copies, `secrets named ${rc.spec.target.secretName}`],
    ] as const) {
      if (watch.synced) continue;
      if (!watch.error) return {};
      const reason = isForbidden(watch.error) ? Reason.Forbidden : Reason.SyncFailed;
      const message = `cannot read ${what}: ${describeError(watch.error)}`;
      return { status: stalledStatus(rc, { reason, message, retry: false }, now) };
    }
    return undefined;
  }

  /**
   * Deletion: copies go with the garbage collector (owner references), but
   * ServiceAccount entries do not, so they are taken off before the
   * finalizer is.
   */
  async function finalize(request: Request): Promise<Outcome> {
    const { key, log } = request;
    const rc = withSpec(request);
    if (!hasCleanupFinalizer(rc)) {
      watches.forget(key);
      return {};
    }
    const [copies] = watches.use(key, [copyNameSelection(rc.spec.target.secretName)]) as [WatchState];
    // Without the copy-name cache a conflicting namespace could not be told apart.
    if (!copies.synced) return {};
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
      isTerminating: namespaceTerminating,
      isPending: (type, k, cached) => request.store.isPending(type, k, cached),
    });
    const failures: NamespaceFailure[] = [];
    const writer = writerOf(request);
    await mapConcurrently(cleanup, WRITE_CONCURRENCY, async ({ namespace, serviceAccounts }) => {
      try {
        await writer.patchServiceAccounts(serviceAccounts);
      } catch (err) {
        failures.push(failureOf(namespace, 'removing ServiceAccount entries', err));
      }
    });
    if (failures.length > 0) {
      const first = failures[0]!;
      throw new ClassifiedError({
        reason: first.reason,
        message: `cleanup failed in ${failures.length} namespaces, first ${first.namespace}: ${first.message}`,
        retry: true,
      });
    }
    await setFinalizer(request, false);
    watches.forget(key);
    log.info(
      { serviceAccountNamespaces: cleanup.length },
      'removed ServiceAccount entries; finalizer released',
    );
    return {};
  }

  function writerOf(request: Request) {
    return createSyncWriter(client, request.store, request.fieldManager);
  }

  /**
   * Adds or drops the cleanup finalizer with server-side apply: this manager
   * owns that one entry of the set, so others' finalizers are untouched and
   * applying without it removes exactly it.
   */
  async function setFinalizer({ object, fieldManager }: Request, present: boolean): Promise<void> {
    await client.apply(
      Resources.registryCredentials,
      {
        metadata: { name: object.metadata.name, ...(present ? { finalizers: [CLEANUP_FINALIZER] } : {}) },
      } as RegistryCredential,
      { fieldManager, force: true },
    );
  }

  function namespaceTerminating(namespace: string): boolean {
    const ns = informers.namespaces.get(namespace);
    return ns === undefined || isTerminating(ns);
  }
}

/** The object with its spec as parsed (defaults filled in). */
function withSpec({ object, spec }: Request): RegistryCredential {
  return { ...object, spec };
}

function hasCleanupFinalizer(rc: RegistryCredential): boolean {
  return rc.metadata.finalizers?.includes(CLEANUP_FINALIZER) ?? false;
}
