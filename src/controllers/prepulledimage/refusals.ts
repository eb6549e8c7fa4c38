/**
 * Puller pods the cluster refuses to create. The DaemonSet controller makes
 * the pods, so a PodSecurity level, a missing PriorityClass or a
 * ResourceQuota that refuses them shows nowhere but in its `FailedCreate`
 * Events: this module reads those, so status can name the refusal in the API
 * server's own words instead of waiting silently. Pure.
 */
import { type CoreEvent, type DaemonSet, keyOf } from '../../kube/objects.ts';
import type { PullerPod } from './pods.ts';
import { podCreatedAt } from './protocol.ts';

/** The Events the informer lists: the DaemonSet controller's refusals, of any DaemonSet. */
export const POD_REFUSAL_FIELD_SELECTOR = 'involvedObject.kind=DaemonSet,reason=FailedCreate';

/** Refusal Events by the `namespace/name` of their DaemonSet. */
export const REFUSAL_DAEMONSET_INDEX = 'prepulledimage-refused-daemonset';

/** What the informer keeps of an Event: whose it is, what it says, and when it last happened. */
export function slimRefusal(event: CoreEvent): CoreEvent {
  const { name, namespace, uid, resourceVersion } = event.metadata;
  const { kind, name: objectName, namespace: objectNamespace } = event.involvedObject;
  return {
    metadata: { name, namespace, uid, resourceVersion },
    involvedObject: { kind, name: objectName, namespace: objectNamespace },
    ...(event.message !== undefined && { message: event.message }),
    lastTimestamp: lastSeen(event) ?? null,
  };
}

/** The `namespace/name` of the DaemonSet an Event is about. */
export function refusedDaemonSetKey(event: CoreEvent): string | undefined {
  const { name, namespace } = event.involvedObject;
  return name && namespace ? `${namespace}/${name}` : undefined;
}

/**
 * The latest refusal of `daemonSet`'s pods, if it is newer than every pod it
 * has: once a pod could be created again, older refusals are history.
 */
export function currentRefusal(
  events: CoreEvent[],
  daemonSet: DaemonSet | undefined,
  pods: PullerPod[],
): string | undefined {
  if (!daemonSet) return undefined;
  const key = keyOf(daemonSet);
  const newestPod = Math.max(
    Number.NEGATIVE_INFINITY,
    ...pods.map((p) => podCreatedAt(p) ?? Number.NEGATIVE_INFINITY),
  );
  let latest: { at: number; message: string } | undefined;
  for (const event of events) {
    if (refusedDaemonSetKey(event) !== key) continue;
    const at = Date.parse(lastSeen(event) ?? '');
    if (Number.isNaN(at) || at < newestPod || (latest && latest.at >= at)) continue;
    latest = { at, message: event.message ?? 'the DaemonSet controller could not create a pod' };
  }
  return latest?.message;
}

/** One of an object's puller DaemonSets, with the refusal Events about it and the pods it made. */
export interface RefusableDaemonSet {
  daemonSet: DaemonSet;
  events: CoreEvent[];
  pods: PullerPod[];
}

/**
 * The first current refusal among an object's DaemonSets: its own, then the
 * architecture ones (platforms.ts). Each is judged by its own pods only, so
 * pods of one DaemonSet never hide the refusal of another's.
 */
export function currentRefusalOfAny(daemonSets: readonly RefusableDaemonSet[]): string | undefined {
  for (const { daemonSet, events, pods } of daemonSets) {
    const refusal = currentRefusal(events, daemonSet, pods);
    if (refusal !== undefined) return refusal;
  }
  return undefined;
}

function lastSeen(event: CoreEvent): string | undefined {
  return (
    event.series?.lastObservedTime ??
    event.lastTimestamp ??
    event.eventTime ??
    event.firstTimestamp ??
    undefined
  );
}
