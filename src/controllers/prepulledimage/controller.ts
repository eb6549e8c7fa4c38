/**
 * The PrePulledImage kind: for each object, one puller DaemonSet applied with
 * server-side apply, pods admitted through the pull-slot gate when
 * `maxConcurrentPulls` is set, failed imports retried, and the status
 * computed from the caches. The runtime's object controller
 * (src/runtime/object-controller.ts) runs it: it writes the status, records
 * the Events of condition transitions, and remembers our writes until the
 * cache shows them. Everything is read from informers; the API server is
 * written to, never polled.
 */
import { createHash } from 'node:crypto';
import { ConditionType, Reason } from '../../api/conditions.ts';
import {
  type PrePulledImage,
  type PrePulledImageSpec,
  type PrePulledImageStatus,
  prePulledImageSpecSchema,
  REFRESH_REQUESTED_ANNOTATION,
  RELEASED_UNREADY_ANNOTATION,
} from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import {
  IMPORT_POLICY_CONFIGMAP,
  importRefusal,
  type LoadedImportPolicy,
  loadImportPolicy,
} from '../../image/import-policy.ts';
import type { KubeClient } from '../../kube/client.ts';
import { isConflict, isNotFound } from '../../kube/errors.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Informer } from '../../kube/informer.ts';
import {
  type ConfigMap,
  type CoreEvent,
  type DaemonSet,
  keyOf,
  type Namespace,
  type Node,
  type PriorityClass,
  type ServiceAccount,
} from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { type SecretWatches, secretSelection } from '../../kube/secret-watches.ts';
import type { Clock } from '../../runtime/clock.ts';
import { ClassifiedError, StepError, step } from '../../runtime/failure.ts';
import {
  type ObjectKind,
  owns,
  type ReconcileOutcome,
  type ReconcileRequest,
  type WatchedChange,
  watch,
} from '../../runtime/object-controller.ts';
import type { AgentPod } from '../agent-reports.ts';
import { prePulledImagesNaming } from '../indexes.ts';
import { IMPORT_REPORT_ANNOTATION, importsOf, reportedUids } from './agent-imports.ts';
import {
  credentialsCondition,
  pullSecretProblems,
  registryCredentialProblems,
  withCredentialsCondition,
} from './credentials.ts';
import { isGated } from './gate.ts';
import { requireImages, withImageSources, withWorkloadImages } from './images-from.ts';
import { imagesFromWatches } from './images-from-watches.ts';
import { OWNER_UID_LABEL, PULL_SLOT_GATE, REFRESH_ROUND_ANNOTATION } from './labels.ts';
import { pinnedDigests, withPinnedImages } from './pinning.ts';
import {
  combinedDaemonSet,
  PLATFORM_GROUP_LABEL,
  type PlatformPlan,
  planForNodes,
  splitByPlatform,
} from './platforms.ts';
import { HOLDING_INDEX, OWNER_INDEX, ownerKeyOf, type PullerPod, podsOf, WAITING_INDEX } from './pods.ts';
import { DEFAULT_ALLOWED_PRIORITY_CLASSES, priorityClassRefusal } from './priority.ts';
import { refreshSchedule } from './refresh.ts';
import { currentRefusalOfAny, REFUSAL_DAEMONSET_INDEX, refusedDaemonSetKey } from './refusals.ts';
import type { RegistryCheckResult, RegistryChecks } from './registry-checks.ts';
import { daemonSetName, type RenderOptions, renderPullDaemonSet } from './render.ts';
import { checkDueInMs, checkedImages, movedTags, resolutionsInStatus } from './resolution.ts';
import { staleNodes } from './stale-nodes.ts';
import {
  computePrePulledImageStatus,
  holdsEveryImage,
  isWaitingForPullSlot,
  mayHaveBecomeReady,
  onlyCountsMoved,
  stalledStatus,
  statusWriteIntervalOf,
} from './status.ts';
import { podsToAdmit, resolvePullLimit } from './throttle.ts';
import type { ImagesFromPlans, WorkloadInformers } from './workload-caches.ts';

export const CONTROLLER_NAME = 'prepulledimage';
/** Hash of the rendered DaemonSet, so an unchanged spec costs no request. */
export const SPEC_HASH_ANNOTATION = 'prepull.dev/spec-hash';

export interface PrePulledImageInformers {
  prePulledImages: Informer<PrePulledImage>;
  daemonSets: Informer<DaemonSet>;
  pods: Informer<PullerPod>;
  nodes: Informer<Node>;
  registryCredentials: Informer<RegistryCredential>;
  /** The DaemonSet controller's FailedCreate Events (refusals.ts). */
  podRefusals: Informer<CoreEvent>;
  priorityClasses: Informer<PriorityClass>;
  /** For the labels a RegistryCredential's allowRequestsFrom selects on. */
  namespaces: Informer<Namespace>;
  /** spec.imagesFrom: slim workloads of every kind, and ServiceAccounts for their pull secrets. */
  workloads: WorkloadInformers;
  serviceAccounts: Informer<ServiceAccount>;
  /** The node agent's pods, whose import reports status folds in (agent-imports.ts). */
  agentPods: Informer<AgentPod>;
  /** The import policy ConfigMap in Prepull's namespace (src/image/import-policy.ts), alone. */
  importPolicies: Informer<ConfigMap>;
}

export interface PrePulledImageKindDeps {
  client: KubeClient;
  clock: Clock;
  events: EventRecorder;
  informers: PrePulledImageInformers;
  render: Omit<RenderOptions, 'extraPullSecrets'>;
  /** Registry checks of the images (tag → digest, platforms), when the operator makes them. */
  registryChecks?: RegistryChecks;
  /** Priority classes a spec may name besides those of value 0 or less (priority.ts). */
  allowedPriorityClasses?: readonly string[];
  /** One watch per spec.imagePullSecrets entry, so status can say which does not exist. */
  pullSecrets: SecretWatches;
  /** spec.imagesFrom's plans, shared with the node gate. */
  imagesFrom: ImagesFromPlans;
}

/** The PrePulledImage kind, for {@link createObjectController}. */
export function prePulledImageKind(
  deps: PrePulledImageKindDeps,
): ObjectKind<PrePulledImage, PrePulledImageSpec, PrePulledImageStatus> {
  const { informers, client, clock, events } = deps;
  /**
   * Per object, the refresh asked for (annotation value) that status does not
   * hold yet: when this process first saw it, and whether its Event is out.
   */
  const pendingRefreshes = new Map<string, PendingRefresh>();
  /** Per object, the tag moves (image@digest) already logged and sent as Events, until status holds them. */
  const announcedMoves = new Map<string, Set<string>>();
  const everyObject = () => informers.prePulledImages.list().map(keyOf);
  const objectsWithTarballs = () =>
    informers.prePulledImages
      .list()
      .filter((p) => p.spec.images.some((entry) => entry.tarball))
      .map(keyOf);

  return {
    name: CONTROLLER_NAME,
    resource: Resources.prePulledImages,
    informer: informers.prePulledImages,
    specSchema: prePulledImageSpecSchema,
    watches: [
      // A node agent's import report changed: the objects it speaks of, before and after.
      watch(informers.agentPods, Resources.pods, (pod, previous) => {
        if (
          previous?.metadata.annotations?.[IMPORT_REPORT_ANNOTATION] ===
          pod.metadata.annotations?.[IMPORT_REPORT_ANNOTATION]
        ) {
          return previous === undefined || pod.metadata.deletionTimestamp ? objectsWithTarballs() : [];
        }
        const uids = new Set([...reportedUids(previous), ...reportedUids(pod)]);
        return informers.prePulledImages
          .list()
          .filter((p) => uids.has(p.metadata.uid ?? ''))
          .map(keyOf);
      }),
      // The import policy changed: every object that imports may be allowed or refused now.
      watch(informers.importPolicies, Resources.configMaps, () => objectsWithTarballs()),
      owns(informers.daemonSets, Resources.daemonSets, ownerKeyOf, { urgent: daemonSetChangeIsUrgent }),
      owns(informers.pods, Resources.pods, ownerKeyOf, { urgent: podChangeIsUrgent }),
      // A node that joins or leaves, or whose disk pressure changes, may change any object's nodes.
      // So may the startup taint leaving it, or a release before its images were there (nodeReadiness).
      watch(informers.nodes, Resources.nodes, (node, previous) =>
        previous === undefined ||
        diskPressure(previous) !== diskPressure(node) ||
        isGated(previous) !== isGated(node) ||
        releasedUnready(previous) !== releasedUnready(node)
          ? everyObject()
          : [],
      ),
      watch(informers.podRefusals, Resources.coreEvents, (event) => {
        const daemonSet = informers.daemonSets.get(refusedDaemonSetKey(event) ?? '');
        const owner = daemonSet && ownerKeyOf(daemonSet);
        return owner ? [owner] : [];
      }),
      // A class that appears, goes or changes value may allow or refuse the objects naming it.
      watch(informers.priorityClasses, Resources.priorityClasses, (pc) =>
        informers.prePulledImages
          .list()
          .filter((ppi) => ppi.spec.priorityClassName === pc.metadata.name)
          .map(keyOf),
      ),
      // Only the copy's name and whom it serves matter here, never a RegistryCredential's status.
      watch(informers.registryCredentials, Resources.registryCredentials, (rc, previous) =>
        previous === undefined ||
        previous.spec.target.secretName !== rc.spec.target.secretName ||
        JSON.stringify(previous.spec.target.allowRequestsFrom) !==
          JSON.stringify(rc.spec.target.allowRequestsFrom)
          ? prePulledImagesNaming(informers.prePulledImages, rc.metadata.name ?? '').map(keyOf)
          : [],
      ),
      // A relabelled namespace may be allowed, or refused, by a RegistryCredential its objects name.
      watch(informers.namespaces, Resources.namespaces, (ns, previous) =>
        previous !== undefined &&
        JSON.stringify(previous.metadata.labels) !== JSON.stringify(ns.metadata.labels)
          ? informers.prePulledImages
              .list()
              .filter(
                (p) =>
                  p.metadata.namespace === ns.metadata.name && (p.spec.registryCredentials?.length ?? 0) > 0,
              )
              .map(keyOf)
          : [],
      ),
      ...imagesFromWatches(informers),
    ],
    statusWriteIntervalMs: statusWriteIntervalOf,
    transitions: [
      { condition: ConditionType.Ready, when: 'becameTrue', type: 'Normal', action: 'Pull' },
      { condition: ConditionType.Degraded, when: 'trueAndNew', type: 'Warning', action: 'Pull' },
    ],
    stalledStatus,
    reconcile,
    forget: (key) => {
      deps.pullSecrets.forget(key);
      deps.imagesFrom.forget(key);
      pendingRefreshes.delete(key);
      announcedMoves.delete(key);
    },
    connect: (enqueue) => deps.pullSecrets.notifyWith(enqueue),
    stop: () => deps.pullSecrets.stop(),
  };

  async function reconcile(
    asWritten: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
  ): Promise<ReconcileOutcome<PrePulledImageStatus>> {
    // With spec.imagesFrom, everything below sees the workloads' images as if listed.
    // The parsed spec: images defaults to [] (the API server defaults it too).
    const parsed = { ...asWritten.object, spec: asWritten.spec };
    const plan = deps.imagesFrom.planFor(parsed);
    const request = { ...asWritten, object: requireImages(withWorkloadImages(parsed, plan)) };
    const { key, object: ppi, now, log } = request;
    // A refresh asked for by annotation (REFRESH_REQUESTED_ANNOTATION), handled once per value.
    const asked = pendingRefresh(key, ppi);
    // Checked first: with registry checks, the pods are pinned to the digests
    // resolved (a moved tag rolls them once), not replaced on a timer.
    const checks = await checkRegistry(request, asked?.seenAt);
    const refresh = checks && ppi.spec.refresh ? undefined : refreshSchedule(ppi, clock.now());
    // With checks, the images an architecture lacks are known before any pull (platforms.ts).
    const platforms = checks ? planForNodes(ppi, checks.resolutions, informers.nodes.list()) : undefined;
    const [own, ...archSets] = renderDaemonSets(request, refresh, checks, platforms);
    const ownSet = await applyDaemonSet(request, own!, refresh);
    const applied = [ownSet, ...(await applyArchDaemonSets(request, archSets))];
    if (asked !== undefined) await handledRefresh(request, asked, checks, refresh);
    // Back for the next refresh round.
    const comeBack = [refresh?.nextInMs].filter((ms) => ms !== undefined);
    // While a rollout moves, pods change many times a second and the status
    // could not be written before the throttle allows: computing it over every
    // node each time would only cost CPU the control plane needs. Only pods
    // waiting for a pull slot (maxConcurrentPulls) are seen to at once, and a
    // rollout that may just have ended (Ready is a transition, which the
    // runtime writes at once). Both are counts, kept by the informer's indexes.
    const throttled = { requeueAfterMs: Math.min(request.statusDueInMs, ...comeBack) };
    const daemonSet = combinedDaemonSet(applied);
    const holding = informers.pods.countByIndex(HOLDING_INDEX, key);
    const holdBack = request.statusDueInMs > 0 && !mayHaveBecomeReady(ppi, holding, daemonSet);
    if (holdBack && informers.pods.countByIndex(WAITING_INDEX, key) === 0) return throttled;
    const candidates = informers.pods.byIndex(OWNER_INDEX, key);
    const podsBySet = applied.map((ds) => podsOf(ppi, ds, candidates));
    const pods = podsBySet.flat();
    await admitPods(request, pods, daemonSet);
    if (holdBack) return throttled;
    const stale =
      checks && ppi.spec.refresh
        ? staleNodes({ pods, refs: checkedImages(ppi), resolutions: checks.resolutions }).length
        : undefined;

    const nodes = new Map(informers.nodes.list().map((n) => [n.metadata.name ?? '', n]));
    const computed = computePrePulledImageStatus({
      ppi,
      pods,
      nodes,
      daemonSet,
      imports: importsOf(informers.agentPods, ppi.metadata.uid ?? ''),
      podRefusal: currentRefusalOfAny(
        applied.map((ds, i) => ({
          daemonSet: ds,
          events: informers.podRefusals.byIndex(REFUSAL_DAEMONSET_INDEX, keyOf(ds)),
          pods: podsBySet[i] ?? [],
        })),
      ),
      ...(checks && { resolutions: checks.resolutions }),
      ...(stale !== undefined && { staleNodes: stale }),
      ...(platforms && { platforms }),
      now,
    });
    // A pull secret or RegistryCredential that is missing or refuses this namespace is a warning, never a failed Ready.
    const problems = [
      ...pullSecretProblems(ppi, pullSecretExists(key, ppi)),
      ...registryCredentialProblems(ppi, informers.namespaces.get(ppi.metadata.namespace ?? ''), (name) =>
        informers.registryCredentials.get(name),
      ),
    ];
    const handled = asked?.value ?? ppi.status?.lastHandledRefreshAt;
    const status = withImageSources(
      withCredentialsCondition(
        { ...computed, ...(handled !== undefined && { lastHandledRefreshAt: handled }) },
        credentialsCondition(ppi, problems),
        now,
      ),
      plan,
    );
    if (checks?.nextInMs !== undefined) comeBack.push(checks.nextInMs);
    log.debug({ ready: status.ready }, 'computed status');
    return { status, ...(comeBack.length > 0 ? { requeueAfterMs: Math.min(...comeBack) } : {}) };
  }

  /**
   * The puller DaemonSets as rendered now: the object's own, its tags pinned
   * to the digests the checks resolved (pinning.ts), then one per set of
   * architectures that lacks an image (platforms.ts), usually none.
   */
  function renderDaemonSets(
    { object: ppi }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    refresh: ReturnType<typeof refreshSchedule>,
    checks: RegistryCheckResult | undefined,
    platforms: PlatformPlan | undefined,
  ): DaemonSet[] {
    const priorityClass = ppi.spec.priorityClassName;
    if (priorityClass !== undefined) {
      const refusal = priorityClassRefusal(
        priorityClass,
        deps.allowedPriorityClasses ?? DEFAULT_ALLOWED_PRIORITY_CLASSES,
        informers.priorityClasses.get(priorityClass)?.value,
      );
      // Nothing is applied: the object waits for an edit (or for the class to change).
      if (refusal)
        throw new ClassifiedError({ reason: Reason.PriorityClassNotAllowed, message: refusal, retry: false });
    }
    const namespace = ppi.metadata.namespace ?? '';
    for (const entry of ppi.spec.images) {
      const refusal = importRefusal(importPolicy(), namespace, entry);
      // Nothing is applied: the object waits for an edit, or for the admin to change the policy.
      if (refusal) {
        throw new ClassifiedError({
          reason: Reason.ImportNotAllowed,
          message: `${entry.name ?? entry.image}: ${refusal}`,
          retry: false,
        });
      }
    }
    let desired: DaemonSet;
    try {
      desired = renderPullDaemonSet(ppi, {
        ...deps.render,
        extraPullSecrets: registryCredentialSecrets(ppi),
        ...(refresh ? { refreshRound: refreshRoundOf(ppi, refresh) } : {}),
      });
    } catch (err) {
      // The schema let something through that render cannot use: terminal until the spec changes.
      const message = err instanceof Error ? err.message : String(err);
      throw new ClassifiedError({ reason: Reason.InvalidSpec, message, retry: false });
    }
    desired = withPinnedImages(desired, pinnedDigests(ppi, checks?.resolutions));
    return platforms ? splitByPlatform(ppi, desired, platforms) : [desired];
  }

  /** The object's own puller DaemonSet, applied when its hash differs from the cached one. */
  async function applyDaemonSet(
    { object: ppi, log, fieldManager }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    desired: DaemonSet,
    refresh: ReturnType<typeof refreshSchedule>,
  ): Promise<DaemonSet> {
    const dsKey = `${ppi.metadata.namespace}/${daemonSetName(ppi.metadata.name ?? '')}`;
    const cached = informers.daemonSets.get(dsKey);
    const round = cached?.spec.template.metadata?.annotations?.[REFRESH_ROUND_ANNOTATION];
    const hashed = withSpecHash(desired);
    if (cached && sameSpecHash(cached, hashed)) return cached;
    // A new interval's round (a request's part of the round has its own Event).
    if (refresh && round !== undefined && round.split('-')[0] !== String(refresh.round)) {
      await events.record(
        ppi,
        'Normal',
        Reason.Refreshing,
        'Refresh',
        `refresh round ${refresh.round}: every node asks the registry for its tags again (every ${ppi.spec.refresh?.interval})`,
      );
    }
    const applied = await step('applying the puller DaemonSet', () =>
      client.apply(Resources.daemonSets, hashed, { fieldManager, force: true }),
    );
    log.info({ daemonSet: dsKey, generation: applied.metadata.generation }, 'applied the puller DaemonSet');
    return applied;
  }

  /**
   * The architecture DaemonSets (platforms.ts), each applied when its hash
   * differs; those of this object that are no longer rendered are deleted.
   * A DaemonSet of that name that this object does not own is never taken
   * over: the object is Degraded with Conflict.
   */
  async function applyArchDaemonSets(
    { object: ppi, log, fieldManager }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    desired: DaemonSet[],
  ): Promise<DaemonSet[]> {
    const namespace = ppi.metadata.namespace ?? '';
    const uid = ppi.metadata.uid ?? '';
    const applied: DaemonSet[] = [];
    for (const ds of desired) {
      const hashed = withSpecHash(ds);
      const cached = informers.daemonSets.get(`${namespace}/${ds.metadata.name}`);
      if (cached && !cached.metadata.ownerReferences?.some((o) => o.controller && o.uid === uid)) {
        const message = `DaemonSet ${ds.metadata.name} exists and is not this PrePulledImage's`;
        throw new ClassifiedError({ reason: Reason.Conflict, message, retry: true });
      }
      if (cached && sameSpecHash(cached, hashed)) {
        applied.push(cached);
        continue;
      }
      const result = await step('applying an architecture DaemonSet', () =>
        client.apply(Resources.daemonSets, hashed, { fieldManager, force: true }),
      );
      log.info(
        { daemonSet: ds.metadata.name, generation: result.metadata.generation },
        'applied an architecture DaemonSet',
      );
      applied.push(result);
    }
    const wanted = new Set(desired.map((ds) => ds.metadata.name));
    const obsolete = informers.daemonSets
      .list()
      .filter(
        (ds) =>
          ds.metadata.namespace === namespace &&
          ds.metadata.labels?.[OWNER_UID_LABEL] === uid &&
          ds.metadata.labels?.[PLATFORM_GROUP_LABEL] !== undefined &&
          !wanted.has(ds.metadata.name),
      );
    for (const ds of obsolete) {
      try {
        await client.delete(Resources.daemonSets, ds.metadata.name ?? '', namespace, {
          uid: ds.metadata.uid ?? '',
        });
      } catch (err) {
        if (isConflict(err) || isNotFound(err)) continue;
        throw new StepError('deleting an architecture DaemonSet no node needs', err);
      }
      log.info({ daemonSet: ds.metadata.name }, 'deleted an architecture DaemonSet no node needs');
    }
    return applied;
  }

  /**
   * Whether a puller pod's change must reach its object at once, even while
   * the status throttle holds the object's write back ({@link owns}): when it
   * may take or free a pull slot (the object limits them, or the pod waits
   * for one), or when it is the pod that may have made the object Ready. The
   * rest of a rollout's pod changes only move counts in status, and wait for
   * the throttle.
   */
  function podChangeIsUrgent({ obj: pod, previous }: WatchedChange<PullerPod>, owner: string): boolean {
    if (isWaitingForPullSlot(pod) || (previous !== undefined && isWaitingForPullSlot(previous))) return true;
    const ppi = informers.prePulledImages.get(owner);
    if (!ppi || ppi.spec.maxConcurrentPulls !== undefined) return true;
    if (!holdsEveryImage(pod) || (previous !== undefined && holdsEveryImage(previous))) return false;
    return mayBeReadyNow(ppi, owner);
  }

  /**
   * Whether a puller DaemonSet's change must reach its object at once: it was
   * made or deleted, more than its status counts changed ({@link onlyCountsMoved}),
   * the object limits pull slots (their number may follow the nodes), or the
   * counts may have made the object Ready. The DaemonSet controller's other
   * status writes wait for the throttle.
   */
  function daemonSetChangeIsUrgent(
    { obj: daemonSet, previous, deleted }: WatchedChange<DaemonSet>,
    owner: string,
  ): boolean {
    if (deleted || previous === undefined || !onlyCountsMoved(previous, daemonSet)) return true;
    const ppi = informers.prePulledImages.get(owner);
    if (!ppi || ppi.spec.maxConcurrentPulls !== undefined) return true;
    return mayBeReadyNow(ppi, owner);
  }

  /** {@link mayHaveBecomeReady} from the index's count and the object's own DaemonSet in the cache. */
  function mayBeReadyNow(ppi: PrePulledImage, owner: string): boolean {
    // The own DaemonSet: with architecture DaemonSets beside it this may be true early, which costs one pass.
    const own = informers.daemonSets.get(
      `${ppi.metadata.namespace}/${daemonSetName(ppi.metadata.name ?? '')}`,
    );
    return mayHaveBecomeReady(ppi, informers.pods.countByIndex(HOLDING_INDEX, owner), own);
  }

  /** Lifts the pull-slot gate from as many of the oldest gated pods as `maxConcurrentPulls` allows. */
  async function admitPods(
    { object: ppi, log, store, fieldManager }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    pods: PullerPod[],
    daemonSet: DaemonSet | undefined,
  ): Promise<void> {
    // Nothing gated, nothing to admit (the view below only drops gates).
    if (!pods.some(isWaitingForPullSlot)) return;
    // A pod we ungated counts as ungated until the cache shows it so.
    const view = pods.map((pod) =>
      store.isPending(Resources.pods, keyOf(pod), pod)
        ? { ...pod, spec: { ...pod.spec, schedulingGates: [] } }
        : pod,
    );
    if (!view.some(isWaitingForPullSlot)) return;
    const desiredNodes = Math.max(daemonSet?.status?.desiredNumberScheduled ?? 0, pods.length, 1);
    const limit = resolvePullLimit(ppi.spec.maxConcurrentPulls, desiredNodes);
    for (const pod of podsToAdmit(view, limit)) {
      const gates = (pod.spec.schedulingGates ?? []).filter((g) => g.name !== PULL_SLOT_GATE);
      const { name, namespace, uid, resourceVersion } = pod.metadata;
      try {
        await client.patch(
          Resources.pods,
          name ?? '',
          namespace,
          // The test makes the patch fail instead of dropping a gate someone else added meanwhile.
          [
            { op: 'test', path: '/metadata/uid', value: uid },
            { op: 'replace', path: '/spec/schedulingGates', value: gates },
          ],
          'json',
          { fieldManager },
        );
      } catch (err) {
        // Gone meanwhile: the DaemonSet makes another, which the next pass admits.
        if (isNotFound(err)) continue;
        throw new StepError('admitting a puller pod', err);
      }
      store.wrote<PullerPod>(Resources.pods, keyOf(pod), resourceVersion, {
        until: (cached) => cached.metadata.uid !== uid || !isWaitingForPullSlot(cached),
      });
      log.debug({ pod: name, limit }, 'admitted a puller pod');
    }
  }

  /**
   * The refresh the object's annotation asks for, while status does not hold
   * its value: every pass until then checks against the time this process
   * first saw it, so the first pass asks the registry and the rest (a status
   * write may wait for the throttle) reuse that answer, and a value that stays
   * never brings another check or rollout.
   */
  function pendingRefresh(key: string, ppi: PrePulledImage): PendingRefresh | undefined {
    const value = requested(ppi);
    if (value === undefined || value === ppi.status?.lastHandledRefreshAt) {
      pendingRefreshes.delete(key);
      return undefined;
    }
    const known = pendingRefreshes.get(key);
    if (known?.value === value) return known;
    const fresh = { value, seenAt: clock.now(), announced: false };
    pendingRefreshes.set(key, fresh);
    return fresh;
  }

  /**
   * The Event of a refresh asked for, once what it asks for is done: with
   * registry checks, every tag asked about (a moved one rolls); else, with
   * spec.refresh, the puller pods replaced (the round rendered with the
   * request); else there is nothing to refresh, and the Event says so.
   * Status then holds the value (lastHandledRefreshAt).
   */
  async function handledRefresh(
    { object: ppi, log }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    asked: PendingRefresh,
    checks: RegistryCheckResult | undefined,
    refresh: ReturnType<typeof refreshSchedule>,
  ): Promise<void> {
    if (asked.announced) return;
    asked.announced = true;
    const message = checks
      ? 'refresh asked for: every tag was asked about at its registry'
      : refresh
        ? 'refresh asked for: the puller pods are replaced and pull their tags again'
        : 'refresh asked for: nothing to refresh, as the object has no spec.refresh and the operator makes no registry checks';
    log.info({ requestedAt: asked.value }, message);
    await events.record(ppi, 'Normal', Reason.Refreshing, 'Refresh', message);
  }

  /**
   * The registry checks status shows: asked anew when due (resolution.ts) or
   * when a refresh was asked for at `fresherThan`, else those status already
   * holds, so a pass between checks costs no request.
   */
  async function checkRegistry(
    { key, object: ppi, log }: ReconcileRequest<PrePulledImage, PrePulledImageSpec>,
    fresherThan: number | undefined,
  ): Promise<RegistryCheckResult | undefined> {
    if (!deps.registryChecks) return undefined;
    const refs = checkedImages(ppi);
    const held = resolutionsInStatus(ppi, refs);
    const dueInMs = checkDueInMs(ppi, refs, held, clock.now());
    if (dueInMs > 0 && fresherThan === undefined) return { resolutions: held, nextInMs: dueInMs };
    const names = [
      ...(ppi.spec.imagePullSecrets ?? []).map((s) => s.name),
      ...registryCredentialSecrets(ppi),
    ];
    const checked = await step('checking the images at the registry', () =>
      deps.registryChecks!.check(ppi, names, fresherThan),
    );
    // Status holds the move only once it is written (the throttle): each move is told once.
    const told = announcedMoves.get(key);
    const moves = movedTags(ppi, refs, held, checked.resolutions);
    const moving = new Set(moves.map((m) => `${m.image}@${m.to}`));
    if (moving.size > 0) announcedMoves.set(key, moving);
    else announcedMoves.delete(key);
    for (const moved of moves) {
      if (told?.has(`${moved.image}@${moved.to}`)) continue;
      const message = `${moved.image} moved from ${moved.from} to ${moved.to}`;
      log.info({ image: moved.image, from: moved.from, to: moved.to }, 'a tag moved');
      await events.record(ppi, 'Normal', Reason.TagMoved, 'Refresh', message);
    }
    return checked;
  }

  /**
   * Whether each spec.imagePullSecrets entry exists, from one watch per entry
   * (started here, stopped when the object goes or drops it); undefined while
   * a watch has not listed or may not read the namespace.
   */
  function pullSecretExists(key: string, ppi: PrePulledImage): (name: string) => boolean | undefined {
    const namespace = ppi.metadata.namespace ?? '';
    const names = (ppi.spec.imagePullSecrets ?? []).map((s) => s.name);
    const states = deps.pullSecrets.use(
      key,
      names.map((name) => secretSelection(namespace, name)),
    );
    const known = new Map(
      names.map((name, i) => {
        const state = states[i]!;
        return [name, state.synced ? state.informer.get(`${namespace}/${name}`) !== undefined : undefined];
      }),
    );
    return (name) => known.get(name);
  }

  /** The admin's import policy, from the one ConfigMap the informer holds; the default without it. */
  function importPolicy(): LoadedImportPolicy {
    const configMap = informers.importPolicies
      .list()
      .find((c) => c.metadata.name === IMPORT_POLICY_CONFIGMAP);
    return loadImportPolicy(configMap ? (configMap.data ?? {}) : undefined);
  }

  function registryCredentialSecrets(ppi: PrePulledImage): string[] {
    return (ppi.spec.registryCredentials ?? []).map(
      (ref) => informers.registryCredentials.get(ref.name)?.spec.target.secretName ?? ref.name,
    );
  }
}

/** `desired` with the hash of its content, so an unchanged spec costs no request. */
function withSpecHash(desired: DaemonSet): DaemonSet {
  const hash = createHash('sha256').update(JSON.stringify(desired)).digest('hex').slice(0, 16);
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      annotations: { ...desired.metadata.annotations, [SPEC_HASH_ANNOTATION]: hash },
    },
  };
}

function sameSpecHash(a: DaemonSet, b: DaemonSet): boolean {
  return a.metadata.annotations?.[SPEC_HASH_ANNOTATION] === b.metadata.annotations?.[SPEC_HASH_ANNOTATION];
}

function releasedUnready(node: Node): string | undefined {
  return node.metadata.annotations?.[RELEASED_UNREADY_ANNOTATION];
}

function diskPressure(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'DiskPressure' && c.status === 'True') ?? false;
}

/** A refresh asked for that status does not hold yet. */
interface PendingRefresh {
  value: string;
  /** When this process first saw it (clock ms): answers from before are not reused. */
  seenAt: number;
  announced: boolean;
}

/** The refresh the object's annotation asks for, if any (REFRESH_REQUESTED_ANNOTATION). */
function requested(ppi: PrePulledImage): string | undefined {
  return ppi.metadata.annotations?.[REFRESH_REQUESTED_ANNOTATION];
}

/**
 * The round the puller pods' template names: the schedule's, and, while the
 * annotation asks for a refresh, a hash of its value, so that each new value
 * replaces the pods once and a value that stays changes nothing.
 */
function refreshRoundOf(
  ppi: PrePulledImage,
  refresh: NonNullable<ReturnType<typeof refreshSchedule>>,
): string {
  const value = requested(ppi);
  if (value === undefined) return String(refresh.round);
  return `${refresh.round}-${createHash('sha256').update(value).digest('hex').slice(0, 10)}`;
}
