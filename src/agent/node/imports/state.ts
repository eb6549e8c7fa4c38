/**
 * What the agent remembers of its imports, and what to do next: an import
 * runs when it was never tried for its current spec, or failed and its
 * back-off passed (30 s doubling to 10 min, per image, reset by a success).
 * The failure count is in the report, so it is on the agent's pod for anyone
 * to read; the controller plays no part in retries, so a leader change
 * cannot reset them. Pure.
 */
import { shortenMessage } from '../../../runtime/conditions.ts';
import { MAX_REPORT_BYTES } from '../report.ts';
import type { RecordView } from './archive-protocol.ts';
import type { ImportTask } from './plan.ts';
import {
  type ImportEntryReport,
  type ImportReport,
  MAX_IMPORT_ENTRIES,
  MAX_IMPORT_MESSAGE,
} from './report.ts';

/** Room for the report in its annotation, with a margin for the JSON around the entries. */
const REPORT_BUDGET_BYTES = MAX_REPORT_BYTES - 1024;

export interface ImportRetryPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_IMPORT_RETRY: ImportRetryPolicy = { baseMs: 30_000, maxMs: 600_000 };

/** How soon a postponed import is asked about again. */
export const POSTPONE_MS = 2_000;
/** How long an import may stay postponed before it counts as failed. */
export const MAX_POSTPONED_MS = 60_000;

/** The outcome of one run of the importer. */
export type ImportOutcome = { ok: true; digest?: string } | { ok: false; reason: string; message: string };

interface ImportRecord {
  fingerprint: string;
  /** Postponed: not run yet, for a reason that is not its own failure (never reported). */
  state: 'Importing' | 'Imported' | 'Failed' | 'Postponed';
  /** Since when it has been postponed without a break (ms since the epoch). */
  postponedSince?: number;
  reason?: string;
  message?: string;
  digest?: string;
  failures: number;
  /** When a failed import may run again (ms since the epoch); undefined while it runs again. */
  retryAt?: number | undefined;
}

export class ImportState {
  readonly #records = new Map<string, ImportRecord>();
  readonly #retry: ImportRetryPolicy;

  constructor(retry: ImportRetryPolicy = DEFAULT_IMPORT_RETRY) {
    this.#retry = retry;
  }

  /** Forgets what is no longer owed. */
  retain(tasks: readonly ImportTask[]): void {
    const keys = new Set(tasks.map((t) => t.key));
    for (const key of this.#records.keys()) if (!keys.has(key)) this.#records.delete(key);
  }

  /**
   * The next task to run now, or in how many ms one falls due (undefined: none
   * waits). A task that is not `ready` (an archive its puller pod has not sent
   * yet) is passed over.
   */
  next(
    tasks: readonly ImportTask[],
    now: number,
    ready: (task: ImportTask) => boolean = () => true,
  ): { task: ImportTask } | { inMs: number | undefined } {
    let inMs: number | undefined;
    for (const task of tasks) {
      if (task.refusal !== undefined || !ready(task)) continue;
      const record = this.#records.get(task.key);
      if (!record || record.fingerprint !== task.fingerprint) return { task };
      if ((record.state !== 'Failed' && record.state !== 'Postponed') || record.retryAt === undefined)
        continue;
      const wait = record.retryAt - now;
      if (wait <= 0) return { task };
      inMs = Math.min(inMs ?? wait, wait);
    }
    return { inMs };
  }

  /**
   * A retry of a failed import keeps showing the failure until it ends
   * otherwise, so status does not flap between Failed and Importing.
   */
  started(task: ImportTask): void {
    const previous = this.#records.get(task.key);
    if (previous?.fingerprint === task.fingerprint && previous.state === 'Failed') {
      this.#records.set(task.key, { ...previous, retryAt: undefined });
      return;
    }
    this.#records.set(task.key, { fingerprint: task.fingerprint, state: 'Importing', failures: 0 });
  }

  finished(task: ImportTask, outcome: ImportOutcome, now: number): void {
    const previous = this.#records.get(task.key);
    const failures = previous?.fingerprint === task.fingerprint ? previous.failures : 0;
    if (outcome.ok) {
      this.#records.set(task.key, {
        fingerprint: task.fingerprint,
        state: 'Imported',
        failures: 0,
        ...(outcome.digest && { digest: outcome.digest }),
      });
      return;
    }
    const delay = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** Math.min(failures, 30));
    this.#records.set(task.key, {
      fingerprint: task.fingerprint,
      state: 'Failed',
      reason: outcome.reason,
      message: outcome.message,
      failures: failures + 1,
      retryAt: now + delay,
    });
  }

  /**
   * `task` cannot run yet, for a reason that is not its failure (its download
   * credential has not been copied for the agents yet, which the controller
   * does as soon as it sees the object): asked about again in
   * {@link POSTPONE_MS}, and reported as an untried import is (not at all).
   * Postponed for {@link MAX_POSTPONED_MS} in a row, it has failed with `outcome`.
   */
  postponed(task: ImportTask, outcome: Extract<ImportOutcome, { ok: false }>, now: number): void {
    const previous = this.#records.get(task.key);
    const same = previous?.fingerprint === task.fingerprint;
    // Only an import not already failing waits quietly: a failing one keeps its failure and back-off.
    const since = same && previous.state === 'Postponed' ? (previous.postponedSince ?? now) : now;
    if ((same && previous.state === 'Failed') || now - since >= MAX_POSTPONED_MS) {
      this.finished(task, outcome, now);
      return;
    }
    this.#records.set(task.key, {
      fingerprint: task.fingerprint,
      state: 'Postponed',
      postponedSince: since,
      failures: 0,
      retryAt: now + POSTPONE_MS,
    });
  }

  /**
   * The report of every task: refused ones as Failed ImportNotAllowed, untried
   * ones left out; cut to fit the annotation budget (the controller shows the
   * images left out as waiting for the agent).
   */
  report(tasks: readonly ImportTask[]): ImportReport {
    const imports: ImportEntryReport[] = [];
    let bytes = 16;
    const add = (entry: ImportEntryReport): boolean => {
      bytes += JSON.stringify(entry).length + 1;
      if (bytes > REPORT_BUDGET_BYTES || imports.length >= MAX_IMPORT_ENTRIES) return false;
      imports.push(entry);
      return true;
    };
    for (const task of tasks) {
      const base = { uid: task.uid, index: task.index, spec: task.fingerprint };
      if (task.refusal !== undefined) {
        const refused = add({
          ...base,
          state: 'Failed',
          reason: 'ImportNotAllowed',
          message: shortenMessage(task.refusal, MAX_IMPORT_MESSAGE),
        });
        if (!refused) break;
        continue;
      }
      const record = this.#records.get(task.key);
      if (!record || record.fingerprint !== task.fingerprint || record.state === 'Postponed') continue;
      const added = add({
        ...base,
        state: record.state,
        ...(record.reason && { reason: record.reason }),
        ...(record.message && { message: shortenMessage(record.message, MAX_IMPORT_MESSAGE) }),
        ...(record.digest && { digest: record.digest }),
        ...(record.failures > 0 && { failures: record.failures }),
      });
      if (!added) break;
    }
    return { imports };
  }

  /** How `task` stands, for an answer to its puller pod. */
  view(task: ImportTask, now: number): RecordView {
    const record = this.#records.get(task.key);
    if (!record || record.fingerprint !== task.fingerprint || record.state === 'Postponed') return undefined;
    if (record.state === 'Imported')
      return { state: 'Imported', ...(record.digest && { digest: record.digest }) };
    if (record.state === 'Importing') return { state: 'Importing' };
    return {
      state: 'Failed',
      ...(record.reason && { reason: record.reason }),
      ...(record.message && { message: record.message }),
      ...(record.retryAt !== undefined && { retryInMs: record.retryAt - now }),
    };
  }

  /** Images imported for tasks still owed: what must stay pinned on the node. */
  held(tasks: readonly ImportTask[]): string[] {
    return tasks.filter((t) => this.#records.get(t.key)?.state === 'Imported').map((t) => t.image);
  }
}
