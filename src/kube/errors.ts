/**
 * Errors from the API server, with the HTTP code and the Status reason, so that
 * callers branch on `code`/`reason`, never on message text.
 */

/** A non-2xx answer of the API server (or a watch ERROR event). */
export class ApiError extends Error {
  readonly code = 'PREPULL_ERR_API';
  /** HTTP status, e.g. 404, 409, 410. */
  readonly status: number;
  /** metav1.Status reason, e.g. NotFound, Conflict, AlreadyExists, Expired, Gone. */
  readonly reason: string;
  readonly verb: string;
  /** The `type` of each metav1.Status `details.causes` entry, e.g. NamespaceTerminating, FieldValueInvalid. */
  readonly causes: readonly string[];

  constructor(status: number, reason: string, message: string, verb: string, causes: readonly string[] = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
    this.verb = verb;
    this.causes = causes;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409 && err.reason !== 'AlreadyExists';
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409 && err.reason === 'AlreadyExists';
}

/** The resourceVersion asked for is too old (compacted): list again. */
export function isGone(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 410 || err.reason === 'Expired' || err.reason === 'Gone');
}

export function isForbidden(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403;
}

/**
 * The namespace is being deleted, so the API server creates nothing new in it
 * (403 from the NamespaceLifecycle admission plugin, cause NamespaceTerminating).
 * Deletion cannot be undone: the objects in it are going too.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403 && err.causes.includes('NamespaceTerminating');
}

/** A rejected object: schema, CEL or admission said no. Retrying the same write cannot help. */
export function isInvalid(err: unknown): boolean {
  return err instanceof ApiError && (err.status === 422 || err.status === 400);
}

/**
 * A JSON patch whose `test` operation failed (422): the object changed since
 * the cache showed it, so the patch was not applied; the next pass reads the
 * new version.
 */
export function isPatchTestFailed(err: unknown): boolean {
  return err instanceof ApiError && err.status === 422;
}
