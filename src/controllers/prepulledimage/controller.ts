/**
 * The PrePulledImage controller: for each object, one puller DaemonSet applied
 * with server-side apply, pods admitted through the pull-slot gate when
 * `maxConcurrentPulls` is set, and a status computed from the caches and
 * written only when it changed. Everything is read from informers; the API
 * server is written to, never polled.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { ConditionType, Reason } from '../../api/conditions.ts';
import {
  type PrePulledImage,
  type PrePulledImageStatus,
  prePulledImageSpecSchema,
} from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import { isConflict } from '../../kube/errors.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Informer } from '../../kube/informer.ts';
import { type DaemonSet, keyOf, type Node, type Pod } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { ReconcileContext, ReconcileResult, Reconciler } from '../../runtime/controller.ts';
import type { WorkQueue } from '../../runtime/queue.ts';
import { findCondition } from '../conditions.ts';
import { OWNER_ANNOTATION, PULL_SLOT_GATE, REFRESH_ROUND_ANNOTATION } from './labels.ts';
import { refreshSchedule } from './refresh.ts';
import { daemonSetName, type RenderOptions, renderPullDaemonSet } from './render.ts';
import { DEFAULT_IMPORT_RETRY, type ImportRetryPolicy, planImportRetries } from './retry.ts';
import { computePrePulledImageStatus, invalidSpecStatus, isWaitingForPullSlot } from './status.ts';
import { podsToAdmit, resolvePullLimit } from './throttle.ts';

/** Field manager of the DaemonSets; status has its own so the two never fight. */
export const FIELD_MANAGER = 'prepull';
export const STATUS_FIELD_MANAGER = 'prepull-status';
/** Status writes per object are at least this far apart (the first one is immediate). */
export const STATUS_WRITE_INTERVAL_MS = 2_000;
/** Hash of the rendered DaemonSet, so an unchanged spec costs no request. */
export const SPEC_HASH_ANNOTATION = 'prepull.dev/spec-hash';

export interface PrePulledImageInformers {
  prePulledImages: Informer<PrePulledImage>;
  daemonSets: Informer<DaemonSet>;
  pods: Informer<Pod>;
  nodes: Informer<Node>;
  registryCredentials?: Informer<RegistryCredential>;
}

export interface PrePulledImageControllerDeps {
  client: KubeClient;
  clock: Clock;
  events: EventRecorder;
  informers: PrePulledImageInformers;
  render: Omit<RenderOptions, 'extraPullSecrets'>;
  /** Back-off between retries of a node's failed tarball import. */
  importRetry?: ImportRetryPolicy;
}

/** The key of the PrePulledImage that owns a puller DaemonSet or pod. */
export function ownerKeyOf(obj: { metadata: { annotations?: Record<string, string> } }): string | undefined {
  return obj.metadata.annotations?.[OWNER_ANNOTATION];
}

/** Informer events → keys. Nodes joining or leaving touch every PrePulledImage. */
export function enqueuePrePulledImageEvents(
  informers: PrePulledImageInformers,
  queue: WorkQueue<string>,
): void {
  const byOwner = (obj: { metadata: { annotations?: Record<string, string> } }) => {
    const key = ownerKeyOf(obj);
    if (key) queue.add(key);
  };
  informers.prePulledImages.addHandler({
    add: (ppi) => queue.add(keyOf(ppi)),
    update: (_, ppi) => queue.add(keyOf(ppi)),
    delete: (ppi) => queue.add(keyOf(ppi)),
  });
  for (const informer of [informers.daemonSets, informers.pods] as Informer<DaemonSet | Pod>[]) {
    informer.addHandler({ add: byOwner, update: (_, obj) => byOwner(obj), delete: byOwner });
  }
  const all = () => {
    for (const ppi of informers.prePulledImages.list()) queue.add(keyOf(ppi));
  };
  informers.nodes.addHandler({
    add: all,
    delete: all,
    update: (previous, node) => {
      if (diskPressure(previous) !== diskPressure(node)) all();
    },
  });
  informers.registryCredentials?.addHandler({ add: all, update: all, delete: all });
}

function diskPressure(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'DiskPressure' && c.status === 'True') ?? false;
}

export function prePulledImageReconciler(deps: PrePulledImageControllerDeps): Reconciler {
  const { informers, client, clock, events } = deps;
  /** Pods whose gate we removed but whose update the cache has not shown yet: they count as pulling. */
  const admitted = new Set<string>();
  /**
   * The status we last wrote per key, and the resourceVersion it was written
   * over: while the cache still shows that version, our write is not in it yet
   * and this is the status to compare with (no second write, no second Event).
   */
  const written = new Map<string, { over: string | undefined; status: PrePulledImageStatus }>();
  /** When each object's status was last written, for {@link STATUS_WRITE_INTERVAL_MS}. */
  const lastWrite = new Map<string, number>();
  /** Per PrePulledImage, per node: retries of a failed import made so far. */
  const importAttempts = new Map<string, Map<string, number>>();
  /** Per PrePulledImage: pods deleted for a retry, until the cache lets go of them. */
  const retriedPods = new Map<string, Set<string>>();
  const importRetry = deps.importRetry ?? DEFAULT_IMPORT_RETRY;

  return async (key: string, { log }: ReconcileContext): Promise<ReconcileResult | undefined> => {
    const cached = informers.prePulledImages.get(key);
    // Gone: its DaemonSet and pods go with it through their owner reference.
    if (!cached || cached.metadata.deletionTimestamp) {
      written.delete(key);
      lastWrite.delete(key);
      importAttempts.delete(key);
      retriedPods.delete(key);
      return undefined;
    }
    const mine = written.get(key);
    const ppi: PrePulledImage =
      mine && mine.over === cached.metadata.resourceVersion ? { ...cached, status: mine.status } : cached;
    const now = new Date(clock.now());

    const parsed = prePulledImageSpecSchema.safeParse(ppi.spec);
    if (!parsed.success) {
      const message = parsed.error.issues
        .map((i) => `${i.path.join('.') || 'spec'}: ${i.message}`)
        .join('; ');
      await writeStatus(ppi, invalidSpecStatus(ppi, message, now), log);
      await events.record(ppi, 'Warning', Reason.InvalidSpec, 'Validate', message);
      return undefined;
    }

    const refresh = refreshSchedule(ppi, clock.now());
    const desired = renderPullDaemonSet(ppi, {
      ...deps.render,
      extraPullSecrets: registryCredentialSecrets(ppi),
      ...(refresh ? { refreshRound: refresh.round } : {}),
    });
    const hash = createHash('sha256').update(JSON.stringify(desired)).digest('hex').slice(0, 16);
    desired.metadata.annotations = { ...desired.metadata.annotations, [SPEC_HASH_ANNOTATION]: hash };
    const dsKey = `${ppi.metadata.namespace}/${daemonSetName(ppi.metadata.name ?? '')}`;
    let daemonSet = informers.daemonSets.get(dsKey);
    if (daemonSet?.metadata.annotations?.[SPEC_HASH_ANNOTATION] !== hash) {
      const round = daemonSet?.spec.template.metadata?.annotations?.[REFRESH_ROUND_ANNOTATION];
      if (refresh && round !== undefined && round !== String(refresh.round)) {
        await events.record(
          ppi,
          'Normal',
          Reason.Refreshing,
          'Refresh',
          `refresh round ${refresh.round}: every node asks the registry for its tags again (every ${ppi.spec.refresh?.interval})`,
        );
      }
      daemonSet = await client.apply(Resources.daemonSets, desired, {
        fieldManager: FIELD_MANAGER,
        force: true,
      });
      log.info(
        { daemonSet: dsKey, generation: daemonSet.metadata.generation },
        'applied the puller DaemonSet',
      );
    }

    const pods = informers.pods.byIndex('owner', key);
    await admitPods(ppi, pods, daemonSet, log);
    const retryInMs = await retryFailedImports(key, ppi, pods, log);
    // Back for the next import retry or refresh round, whichever comes first.
    const comeBack = [retryInMs, refresh?.nextInMs].filter((ms) => ms !== undefined);
    const nextInMs = comeBack.length > 0 ? Math.min(...comeBack) : undefined;
    const later = nextInMs === undefined ? undefined : { requeueAfterMs: nextInMs };

    const nodes = new Map(informers.nodes.list().map((n) => [n.metadata.name ?? '', n]));
    const status = computePrePulledImageStatus({ ppi, pods, nodes, daemonSet, now });
    if (isDeepStrictEqual(ppi.status ?? {}, status)) return later;
    // While a rollout moves, pods change many times a second: write at most once
    // per interval per object, and come back for the rest.
    const wait = (lastWrite.get(key) ?? Number.NEGATIVE_INFINITY) + STATUS_WRITE_INTERVAL_MS - clock.now();
    if (wait > 0) return { requeueAfterMs: Math.min(wait, nextInMs ?? wait) };
    await recordTransitions(ppi, status);
    await writeStatus(ppi, status, log);
    lastWrite.set(key, clock.now());
    return later;
  };

  /**
   * Deletes the pods of nodes whose import failed, once their back-off has
   * passed (see retry.ts); returns when to look again while one waits.
   */
  async function retryFailedImports(
    key: string,
    ppi: PrePulledImage,
    pods: Pod[],
    log: ReconcileContext['log'],
  ): Promise<number | undefined> {
    const retried = retriedPods.get(key) ?? new Set<string>();
    for (const uid of retried) {
      if (!pods.some((p) => p.metadata.uid === uid)) retried.delete(uid);
    }
    const attempts = importAttempts.get(key) ?? new Map<string, number>();
    const live = pods.filter((p) => !retried.has(p.metadata.uid ?? ''));
    const plan = planImportRetries(live, attempts, clock.now(), importRetry);
    for (const node of plan.succeeded) attempts.delete(node);
    for (const { pod, node, attempt, images } of plan.due) {
      // Pinned to this pod: a newer one on the node is left to run its steps
      // (the precondition fails with a conflict, and there is nothing to retry).
      try {
        await client.delete(Resources.pods, pod.metadata.name ?? '', pod.metadata.namespace, {
          uid: pod.metadata.uid ?? '',
        });
      } catch (err) {
        if (!isConflict(err)) throw err;
        continue;
      }
      retried.add(pod.metadata.uid ?? '');
      attempts.set(node, attempt);
      const message = `importing ${images.join(', ')} on node ${node} failed; trying again (retry ${attempt})`;
      log.info({ node, pod: pod.metadata.name, attempt }, message);
      await events.record(ppi, 'Normal', Reason.RetryingImport, 'Import', message);
    }
    if (attempts.size > 0) importAttempts.set(key, attempts);
    else importAttempts.delete(key);
    if (retried.size > 0) retriedPods.set(key, retried);
    else retriedPods.delete(key);
    return plan.nextInMs;
  }

  function registryCredentialSecrets(ppi: PrePulledImage): string[] {
    const names: string[] = [];
    for (const ref of ppi.spec.registryCredentials ?? []) {
      const credential = informers.registryCredentials?.get(ref.name);
      names.push(credential?.spec.target.secretName ?? ref.name);
    }
    return names;
  }

  async function admitPods(
    ppi: PrePulledImage,
    pods: Pod[],
    daemonSet: DaemonSet | undefined,
    log: ReconcileContext['log'],
  ): Promise<void> {
    for (const uid of admitted) {
      const pod = pods.find((p) => p.metadata.uid === uid);
      if (!pod || !isWaitingForPullSlot(pod)) admitted.delete(uid);
    }
    const gatedPods = pods.filter(isWaitingForPullSlot);
    if (gatedPods.length === 0) return;
    const view = pods.map((pod) =>
      admitted.has(pod.metadata.uid ?? '') ? { ...pod, spec: { ...pod.spec, schedulingGates: [] } } : pod,
    );
    const desiredNodes = Math.max(daemonSet?.status?.desiredNumberScheduled ?? 0, pods.length, 1);
    const limit = resolvePullLimit(ppi.spec.maxConcurrentPulls, desiredNodes);
    for (const pod of podsToAdmit(view, limit)) {
      const gates = (pod.spec.schedulingGates ?? []).filter((g) => g.name !== PULL_SLOT_GATE);
      await client.patch(
        Resources.pods,
        pod.metadata.name ?? '',
        pod.metadata.namespace,
        [
          // The test makes the patch fail instead of dropping a gate someone else added meanwhile.
          { op: 'test', path: '/metadata/uid', value: pod.metadata.uid },
          { op: 'replace', path: '/spec/schedulingGates', value: gates },
        ],
        'json',
        { fieldManager: FIELD_MANAGER },
      );
      admitted.add(pod.metadata.uid ?? '');
      log.debug({ pod: pod.metadata.name, limit }, 'admitted a puller pod');
    }
  }

  async function writeStatus(
    ppi: PrePulledImage,
    status: PrePulledImageStatus,
    log: ReconcileContext['log'],
  ) {
    if (isDeepStrictEqual(ppi.status ?? {}, status)) return;
    await client.apply(
      Resources.prePulledImages,
      { metadata: { name: ppi.metadata.name, namespace: ppi.metadata.namespace }, status } as PrePulledImage,
      { fieldManager: STATUS_FIELD_MANAGER, force: true, subresource: 'status' },
    );
    written.set(keyOf(ppi), { over: ppi.metadata.resourceVersion, status });
    log.debug({ ready: status.ready }, 'wrote status');
  }

  async function recordTransitions(ppi: PrePulledImage, status: PrePulledImageStatus): Promise<void> {
    const before = ppi.status?.conditions;
    const after = status.conditions;
    const ready = findCondition(after, ConditionType.Ready);
    const degraded = findCondition(after, ConditionType.Degraded);
    if (ready?.status === 'True' && findCondition(before, ConditionType.Ready)?.status !== 'True') {
      await events.record(ppi, 'Normal', ready.reason, 'Pull', ready.message);
    }
    if (
      degraded?.status === 'True' &&
      findCondition(before, ConditionType.Degraded)?.message !== degraded.message
    ) {
      await events.record(ppi, 'Warning', degraded.reason, 'Pull', degraded.message);
    }
  }
}
