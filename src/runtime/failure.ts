/**
 * Failures, classified once: what went wrong in a reconcile step becomes a
 * condition reason and a message, and the runtime decides from the class, not
 * from message text, whether to retry. A step names itself with
 * {@link StepError} so the message says what was being done. Pure.
 */
import { Reason } from '../api/conditions.ts';
import { ApiError, isForbidden, isInvalid } from '../kube/errors.ts';

/** A failure as status shows it. */
export interface Failure {
  reason: string;
  message: string;
  /** Retry with back-off; false: wait until the object (or something it depends on) changes. */
  retry: boolean;
}

/** A reconcile step that failed: `step` says what it was doing, `cause` why it failed. */
export class StepError extends Error {
  readonly code = 'PREPULL_ERR_STEP';
  readonly step: string;
  override readonly cause: unknown;

  constructor(step: string, cause: unknown) {
    super(`${step}: ${messageOf(cause)}`);
    this.name = 'StepError';
    this.step = step;
    this.cause = cause;
  }
}

/**
 * A failure the kind has already classified (and usually already reported in
 * the status it returned); thrown so that the runtime backs off, or not.
 */
export class ClassifiedError extends Error {
  readonly code = 'PREPULL_ERR_CLASSIFIED';
  readonly failure: Failure;

  constructor(failure: Failure) {
    super(failure.message);
    this.name = 'ClassifiedError';
    this.failure = failure;
  }
}

/** Runs `fn` as the step `step`: a failure carries the step's name. */
export async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof StepError ? err : new StepError(name, err);
  }
}

export interface ClassifyOptions {
  /**
   * Leave the API server's own text out: for writes whose body is secret (a
   * server may quote what it was sent). The HTTP status and reason stay.
   */
  redactServerText?: boolean;
}

/**
 * The reason, message and retry decision for any error a reconcile throws.
 * A 403 (RBAC, a ResourceQuota, an admission plugin) and a 400/422 (schema,
 * CEL, a webhook) are retried with back-off too, since the cluster's
 * configuration may change, but they show in status with the server's message
 * from the first time.
 */
export function classifyFailure(err: unknown, options: ClassifyOptions = {}): Failure {
  if (err instanceof ClassifiedError) return err.failure;
  const stepName = err instanceof StepError ? err.step : undefined;
  const cause = causeOf(err);
  const prefix = stepName ? `${stepName}: ` : '';
  const text = (api: ApiError) =>
    options.redactServerText ? `${api.status} ${api.reason}` : `${api.status} ${api.reason}: ${api.message}`;
  if (isForbidden(cause)) {
    return { reason: Reason.Forbidden, message: prefix + text(cause as ApiError), retry: true };
  }
  if (isInvalid(cause)) {
    return { reason: Reason.Rejected, message: prefix + text(cause as ApiError), retry: true };
  }
  if (cause instanceof ApiError) {
    return { reason: Reason.ApiUnavailable, message: prefix + text(cause), retry: true };
  }
  // A network failure says enough by its code (ECONNREFUSED, …).
  const code = (cause as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  if (typeof code === 'string') return { reason: Reason.ApiUnavailable, message: prefix + code, retry: true };
  return { reason: Reason.ReconcileFailed, message: prefix + messageOf(cause), retry: true };
}

/** What went wrong, without the step that wraps it. */
export function causeOf(err: unknown): unknown {
  return err instanceof StepError ? err.cause : err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
