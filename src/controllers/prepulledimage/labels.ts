/**
 * The names Prepull stamps on the puller DaemonSets and pods it owns. The
 * controller's informers select on them, so they change only with a migration.
 */

export { MANAGED_BY_LABEL, MANAGER_NAME, NAME_LABEL } from '../labels.ts';

/** Value of `app.kubernetes.io/name` on puller DaemonSets and pods. */
export const PULLER_NAME = 'prepull-puller';
/**
 * UID of the owning PrePulledImage. A UID, not a name, so a deleted and
 * recreated object never adopts the pods of its predecessor.
 */
export const OWNER_UID_LABEL = 'prepull.dev/owner-uid';
/** `<namespace>/<name>` of the owning PrePulledImage: the work-queue key, for humans and the pod informer. */
export const OWNER_ANNOTATION = 'prepull.dev/owner';
/** On the pod template, with spec.refresh: the refresh round; a new round replaces the pods. */
export const REFRESH_ROUND_ANNOTATION = 'prepull.dev/refresh-round';
/**
 * Scheduling gate on puller pods when `maxConcurrentPulls` is set: the
 * controller removes it from at most that many pods at a time.
 */
export const PULL_SLOT_GATE = 'prepull.dev/pull-slot';
