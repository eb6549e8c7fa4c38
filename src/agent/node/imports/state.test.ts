import { describe, expect, it } from 'vitest';
import { encodeReport } from '../report.ts';
import type { ImportTask } from './plan.ts';
import { ImportState, MAX_POSTPONED_MS, POSTPONE_MS } from './state.ts';

function task(key: string, fingerprint = 'f1', refusal?: string): ImportTask {
  return {
    key,
    uid: key.split('/')[0]!,
    index: Number(key.split('/')[1]),
    owner: 'team-a/web',
    namespace: 'team-a',
    image: `prepull.local/team-a/app-${key.replace('/', '-')}:v1`,
    tarball: { hostPath: '/var/lib/prepull/archives/team-a/a.tar' },
    fingerprint,
    ...(refusal && { refusal }),
  };
}

describe('ImportState', () => {
  it('runs each owed import once, and reports it', () => {
    const state = new ImportState();
    const tasks = [task('u/0'), task('u/1')];
    const first = state.next(tasks, 0);
    expect(first).toEqual({ task: tasks[0] });
    state.started(tasks[0]!);
    expect(state.report(tasks).imports).toEqual([{ uid: 'u', index: 0, spec: 'f1', state: 'Importing' }]);
    state.finished(tasks[0]!, { ok: true, digest: 'sha256:abc' }, 0);
    expect(state.next(tasks, 0)).toEqual({ task: tasks[1] });
    state.finished(tasks[1]!, { ok: true }, 0);
    expect(state.next(tasks, 0)).toEqual({ inMs: undefined });
    expect(state.held(tasks)).toEqual([tasks[0]!.image, tasks[1]!.image]);
  });

  it('retries a failure after a doubling back-off, counting failures, and starts over when the spec changes', () => {
    const state = new ImportState({ baseMs: 1000, maxMs: 4000 });
    const t = task('u/0');
    state.started(t);
    state.finished(t, { ok: false, reason: 'DownloadFailed', message: 'connection refused' }, 0);
    expect(state.next([t], 500)).toEqual({ inMs: 500 });
    expect(state.next([t], 1000)).toEqual({ task: t });
    state.started(t);
    // Still the failure while it runs again.
    expect(state.report([t]).imports[0]).toMatchObject({ state: 'Failed', failures: 1 });
    state.finished(t, { ok: false, reason: 'DownloadFailed', message: 'again' }, 1000);
    expect(state.next([t], 1000)).toEqual({ inMs: 2000 });
    expect(state.report([t]).imports[0]).toMatchObject({
      state: 'Failed',
      reason: 'DownloadFailed',
      failures: 2,
    });
    const edited = task('u/0', 'f2');
    expect(state.next([edited], 1000)).toEqual({ task: edited });
  });

  it('asks about a postponed import again shortly without reporting it, and reports it failed once postponed a minute', () => {
    const state = new ImportState({ baseMs: 30_000, maxMs: 600_000 });
    const t = task('u/0');
    const notCopied = { ok: false as const, reason: 'CredentialsUnavailable', message: 'not copied yet' };
    state.postponed(t, notCopied, 0);
    expect(state.report([t]).imports).toEqual([]);
    expect(state.view(t, 0)).toBeUndefined();
    expect(state.next([t], 0)).toEqual({ inMs: POSTPONE_MS });
    expect(state.next([t], POSTPONE_MS)).toEqual({ task: t });
    // The copy came: the import runs as a first try, with no failure behind it.
    state.started(t);
    state.finished(t, { ok: true }, POSTPONE_MS);
    expect(state.report([t]).imports).toEqual([{ uid: 'u', index: 0, spec: 'f1', state: 'Imported' }]);

    const other = task('u/1');
    for (let at = 0; at < MAX_POSTPONED_MS; at += POSTPONE_MS) state.postponed(other, notCopied, at);
    expect(state.report([other]).imports).toEqual([]);
    state.postponed(other, notCopied, MAX_POSTPONED_MS);
    expect(state.report([other]).imports[0]).toMatchObject({
      state: 'Failed',
      reason: 'CredentialsUnavailable',
      failures: 1,
    });
    expect(state.next([other], MAX_POSTPONED_MS)).toEqual({ inMs: 30_000 });
  });

  it('keeps the failure and back-off of an import that was failing when it is postponed', () => {
    const state = new ImportState({ baseMs: 1000, maxMs: 4000 });
    const t = task('u/0');
    state.started(t);
    state.finished(t, { ok: false, reason: 'DownloadFailed', message: 'connection refused' }, 0);
    state.postponed(t, { ok: false, reason: 'CredentialsUnavailable', message: 'not copied yet' }, 1000);
    expect(state.report([t]).imports[0]).toMatchObject({ state: 'Failed', failures: 2 });
    expect(state.next([t], 1000)).toEqual({ inMs: 2000 });
  });

  it('never runs a refused import, and reports it as ImportNotAllowed', () => {
    const state = new ImportState();
    const refused = task('u/0', 'f1', 'the import policy does not let namespace team-a import x');
    expect(state.next([refused], 0)).toEqual({ inMs: undefined });
    expect(state.report([refused]).imports).toEqual([
      {
        uid: 'u',
        index: 0,
        spec: 'f1',
        state: 'Failed',
        reason: 'ImportNotAllowed',
        message: refused.refusal,
      },
    ]);
  });

  it('keeps its report within the annotation budget however many imports fail', () => {
    const state = new ImportState();
    const tasks = Array.from({ length: 200 }, (_, i) => task(`u/${i}`));
    for (const t of tasks)
      state.finished(t, { ok: false, reason: 'ImportFailed', message: 'x'.repeat(1000) }, 0);
    const report = state.report(tasks);
    expect(report.imports.length).toBeGreaterThan(50);
    expect(() => encodeReport('import', report)).not.toThrow();
  });

  it('forgets what is no longer owed', () => {
    const state = new ImportState();
    const t = task('u/0');
    state.finished(t, { ok: true }, 0);
    state.retain([]);
    expect(state.next([t], 0)).toEqual({ task: t });
  });

  it('passes over a task that is not ready, and tells how a task stands', () => {
    const state = new ImportState({ baseMs: 1000, maxMs: 4000 });
    const tasks = [task('u/0'), task('u/1')];
    expect(state.next(tasks, 0, (t) => t.key !== 'u/0')).toEqual({ task: tasks[1] });
    expect(state.next(tasks, 0, () => false)).toEqual({ inMs: undefined });
    expect(state.view(tasks[0]!, 0)).toBeUndefined();
    state.started(tasks[0]!);
    expect(state.view(tasks[0]!, 0)).toEqual({ state: 'Importing' });
    state.finished(tasks[0]!, { ok: false, reason: 'ImportFailed', message: 'bad' }, 0);
    expect(state.view(tasks[0]!, 400)).toEqual({
      state: 'Failed',
      reason: 'ImportFailed',
      message: 'bad',
      retryInMs: 600,
    });
    state.started(tasks[0]!);
    state.finished(tasks[0]!, { ok: true, digest: 'sha256:d' }, 2000);
    expect(state.view(tasks[0]!, 2000)).toEqual({ state: 'Imported', digest: 'sha256:d' });
    // Another spec of the entry: nothing known of it.
    expect(state.view(task('u/0', 'f2'), 2000)).toBeUndefined();
  });
});
