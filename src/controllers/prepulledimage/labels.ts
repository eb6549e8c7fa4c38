/**
 * The names Prepull stamps on the puller DaemonSets and pods it owns. The
 * controller's informers select on them, so they change only with a migration.
 */

/** `app.kubernetes.io/name`: what the workload is. */
export const NAME_LABEL = 'app.kubernetes.io/name';
/** Value of {@link NAME_LABEL} on puller DaemonSets and pods. */
export const PULLER_NAME = 'prepull-puller';
/** `app.kubernetes.io/managed-by`: which tool writes the object. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Value of {@link MANAGED_BY_LABEL}. */
export const MANAGER_NAME = 'prepull';
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
