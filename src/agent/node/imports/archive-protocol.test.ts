import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../../kube/objects.ts';
import {
  ARCHIVE_AUDIENCE,
  admitSend,
  answerOf,
  archivePath,
  type RecordView,
  senderOf,
  taskKeyOfPath,
} from './archive-protocol.ts';
import type { ImportTask } from './plan.ts';

const uid = '0b9c3f4e-1111-4222-8333-944455556666';

function task(index: number, overrides: Partial<ImportTask> = {}): ImportTask {
  return {
    key: `${uid}/${index}`,
    uid,
    index,
    owner: 'team-a/web',
    namespace: 'team-a',
    image: `prepull.local/team-a/app-${index}:v1`,
    tarball: { persistentVolumeClaim: { claimName: 'images', path: 'app.tar' } },
    fingerprint: 'f',
    ...overrides,
  };
}

const pullerPod = (podUid: string, namespace = 'team-a', ownerUid = uid): KubeObject => ({
  metadata: {
    name: `ppi-web-${podUid}`,
    namespace,
    uid: podUid,
    labels: { 'prepull.dev/owner-uid': ownerUid },
  },
});

const sender = { namespace: 'team-a', serviceAccount: 'default', podUid: 'p1', podName: 'ppi-web-p1' };

function admit(overrides: Partial<Parameters<typeof admitSend>[0]> = {}, record: RecordView = undefined) {
  return admitSend({
    sender,
    key: `${uid}/0`,
    nodeName: 'node-1',
    tasks: [task(0), task(1, { tarball: { hostPath: '/var/lib/prepull/archives/team-a/a.tar' } })],
    pods: [pullerPod('p1'), pullerPod('p2', 'team-b', 'other-uid')],
    record: () => record,
    ...overrides,
  });
}

describe('the archive send protocol', () => {
  it('names a task by path, and reads back only that shape', () => {
    expect(taskKeyOfPath(archivePath(uid, 3))).toBe(`${uid}/3`);
    for (const path of [
      `/v1/imports/${uid}`,
      `/v1/imports/${uid}/x`,
      `/v1/imports/../etc/0`,
      `/v2/imports/${uid}/0`,
    ]) {
      expect(taskKeyOfPath(path), path).toBeUndefined();
    }
  });

  it('takes a sender only from an authenticated ServiceAccount token for its own audience', () => {
    const user = {
      username: 'system:serviceaccount:team-a:default',
      extra: {
        'authentication.kubernetes.io/pod-uid': ['p1'],
        'authentication.kubernetes.io/pod-name': ['ppi-web-p1'],
      },
    };
    expect(senderOf({ authenticated: true, audiences: [ARCHIVE_AUDIENCE], user })).toEqual({
      ok: true,
      sender,
    });
    expect(senderOf({ authenticated: false, error: 'token expired' })).toEqual({
      ok: false,
      message: 'the token was not accepted: token expired',
    });
    expect(
      senderOf({ authenticated: true, audiences: ['https://kubernetes.default.svc'], user }),
    ).toMatchObject({
      ok: false,
    });
    expect(
      senderOf({ authenticated: true, audiences: [ARCHIVE_AUDIENCE], user: { username: 'alice' } }),
    ).toMatchObject({ ok: false, message: 'the token is not a ServiceAccount token' });
  });

  it('queues the send of a puller pod of the object, for an allowed claim task', () => {
    expect(admit()).toEqual({ kind: 'queue', task: task(0) });
  });

  it('refuses a token not bound to a pod, a pod that is not a puller pod here, or one of another namespace', () => {
    const unbound = { namespace: 'team-a', serviceAccount: 'default' };
    expect(admit({ sender: unbound })).toMatchObject({ kind: 'answer', status: 403 });
    expect(admit({ sender: { ...sender, podUid: 'nowhere' } })).toMatchObject({
      kind: 'answer',
      status: 403,
    });
    // team-b's token, bound to team-b's pod, asking for team-a's import.
    expect(admit({ sender: { ...sender, namespace: 'team-b', podUid: 'p2' } })).toMatchObject({
      kind: 'answer',
      status: 404,
    });
    // team-b's token bound to a pod of team-a is impossible, but a mismatch is refused anyway.
    expect(admit({ sender: { ...sender, namespace: 'team-b' } })).toMatchObject({
      kind: 'answer',
      status: 403,
    });
    // A pod going away sends nothing more.
    const going = { ...pullerPod('p1'), metadata: { ...pullerPod('p1').metadata, deletionTimestamp: 'now' } };
    expect(admit({ pods: [going] })).toMatchObject({ kind: 'answer', status: 403 });
  });

  it('refuses a task that does not come from a claim, an unknown one, and one of another object', () => {
    expect(admit({ key: `${uid}/1` })).toMatchObject({ kind: 'answer', status: 404 });
    expect(admit({ key: `${uid}/7` })).toMatchObject({ kind: 'answer', status: 404 });
    expect(admit({ pods: [pullerPod('p1', 'team-a', 'another-object')] })).toMatchObject({
      kind: 'answer',
      status: 404,
    });
  });

  it("gives the policy's refusal, a done import at once, and a back-off's time", () => {
    expect(admit({ tasks: [task(0, { refusal: 'not allowed' })] })).toEqual({
      kind: 'answer',
      status: 403,
      answer: { ok: false, reason: 'ImportNotAllowed', message: 'not allowed' },
    });
    expect(admit({}, { state: 'Imported', digest: 'sha256:d' })).toEqual({
      kind: 'answer',
      status: 200,
      answer: { ok: true, digest: 'sha256:d' },
    });
    expect(
      admit({}, { state: 'Failed', reason: 'ImportFailed', message: 'bad', retryInMs: 2500 }),
    ).toMatchObject({
      kind: 'answer',
      status: 503,
      answer: { retryAfterSeconds: 3, reason: 'ImportFailed' },
    });
    // A failure whose back-off is over: send again now.
    expect(admit({}, { state: 'Failed', retryInMs: 0 })).toMatchObject({ kind: 'queue' });
  });

  it('answers an import with its digest, a failure with when to send again', () => {
    expect(answerOf({ ok: true, digest: 'sha256:d' }, { state: 'Imported' })).toEqual({
      status: 200,
      answer: { ok: true, digest: 'sha256:d' },
    });
    expect(
      answerOf({ ok: false, reason: 'ImportFailed', message: 'bad' }, { state: 'Failed', retryInMs: 30_000 }),
    ).toEqual({
      status: 422,
      answer: { ok: false, reason: 'ImportFailed', message: 'bad', retryAfterSeconds: 30 },
    });
  });
});
