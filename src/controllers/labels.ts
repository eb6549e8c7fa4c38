/**
 * The recommended labels every object Prepull makes carries, whatever its
 * kind. Informers select on them, so they change only with a migration.
 */

/** `app.kubernetes.io/name`: what the workload is. */
export const NAME_LABEL = 'app.kubernetes.io/name';
/** `app.kubernetes.io/managed-by`: which tool writes the object. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
/** Value of {@link MANAGED_BY_LABEL}. */
export const MANAGER_NAME = 'prepull';
