/**
 * How an archive on a tenant's volume claim reaches the node agent, owned here
 * for both ends. The agent runs in Prepull's namespace and cannot mount a
 * claim of another namespace, so the tenant's own puller pod reads it: its
 * `archive-<i>` container (the Prepull image, unprivileged, the claim mounted
 * read-only) sends the file to the agent of its own node, through the agent's
 * Service (internalTrafficPolicy: Local), as
 *
 *   PUT /v1/imports/<PrePulledImage UID>/<index>
 *   Authorization: Bearer <the pod's projected ServiceAccount token, audience ARCHIVE_AUDIENCE>
 *   Content-Type: application/octet-stream   the archive
 *              or application/json           {reason, message}: why the pod cannot read it
 *
 * The agent asks the API server who sent it (TokenReview): a token bound to a
 * pod, which must be a puller pod of that object on this node. The token
 * proves only the namespace, and that namespace's own object decides what is
 * imported and under which name, with the import policy's verdict, exactly as
 * for any other source: a tenant can send, for its own object, only what its
 * claim could hold anyway. The answer is one JSON {@link ArchiveAnswer}.
 * Pure.
 */
import { z } from 'zod';
import { Reason } from '../../../api/conditions.ts';
import { OWNER_UID_LABEL } from '../../../controllers/prepulledimage/labels.ts';
import type { KubeObject } from '../../../kube/objects.ts';
import type { ImportTask } from './plan.ts';
import type { ImportOutcome } from './state.ts';

/** The agent's port for archives, in its pod and on its Service. */
export const ARCHIVE_PORT = 8471;
/** The audience of the projected token a puller pod presents; no other token is accepted. */
export const ARCHIVE_AUDIENCE = 'prepull.dev/agent';
/** The agent's Service, in Prepull's namespace. */
export const AGENT_SERVICE = 'prepull-agent';

/** The agent's Service URL as cluster DNS names it. */
export function defaultAgentUrl(namespace: string): string {
  return `http://${AGENT_SERVICE}.${namespace}.svc:${ARCHIVE_PORT}`;
}

/** Where a puller pod sends image `index` of the object with `uid`. */
export function archivePath(uid: string, index: number): string {
  return `/v1/imports/${uid}/${index}`;
}

/** The task key (`<uid>/<index>`) of a request path, or undefined for any other path. */
export function taskKeyOfPath(path: string): string | undefined {
  const match = /^\/v1\/imports\/([0-9a-f-]{1,64})\/(\d{1,3})$/.exec(path);
  return match ? `${match[1]}/${Number(match[2])}` : undefined;
}

/** The agent's answer to a send. */
export const archiveAnswerSchema = z.object({
  ok: z.boolean(),
  digest: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  /** Send again after this long, not before. */
  retryAfterSeconds: z.number().int().nonnegative().optional(),
});
export type ArchiveAnswer = z.infer<typeof archiveAnswerSchema>;

/** What the puller pod says when it cannot read the archive: only these reasons are taken. */
export const SENDER_REASONS = [Reason.ImportFailed, Reason.PathRefused, Reason.NotRegularFile] as const;

export const senderFailureSchema = z.object({
  reason: z.enum(SENDER_REASONS),
  message: z.string().max(1024),
});
export type SenderFailure = z.infer<typeof senderFailureSchema>;

/** Who sent a request, as the API server's TokenReview tells. */
export interface Sender {
  namespace: string;
  serviceAccount: string;
  /** The pod the token is bound to (undefined: a token not bound to a pod). */
  podUid?: string;
  podName?: string;
}

/** The parts of a TokenReview's status this reads. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; extra?: Record<string, string[]> };
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** The sender of an authenticated review, or why it is refused. */
export function senderOf(
  status: TokenReviewStatus,
): { ok: true; sender: Sender } | { ok: false; message: string } {
  if (status.authenticated !== true) {
    return { ok: false, message: `the token was not accepted${status.error ? `: ${status.error}` : ''}` };
  }
  if (!(status.audiences ?? []).includes(ARCHIVE_AUDIENCE)) {
    return { ok: false, message: `the token is not for the audience ${ARCHIVE_AUDIENCE}` };
  }
  const match = SERVICE_ACCOUNT_USER.exec(status.user?.username ?? '');
  if (!match) return { ok: false, message: 'the token is not a ServiceAccount token' };
  const podUid = status.user?.extra?.['authentication.kubernetes.io/pod-uid']?.[0];
  const podName = status.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0];
  return {
    ok: true,
    sender: {
      namespace: match[1]!,
      serviceAccount: match[2]!,
      ...(podUid && { podUid }),
      ...(podName && { podName }),
    },
  };
}

/** Whether a task's archive comes from a volume claim, so that its puller pod sends it. */
export function isClaimTask(task: Pick<ImportTask, 'tarball'>): boolean {
  return task.tarball.persistentVolumeClaim !== undefined;
}

/** What the agent does with a send. */
export type Admission =
  | { kind: 'queue'; task: ImportTask }
  | { kind: 'answer'; status: number; answer: ArchiveAnswer };

/** How a task stands in the agent's memory, as far as a send cares. */
export type RecordView =
  | { state: 'Imported'; digest?: string }
  | { state: 'Failed'; reason?: string; message?: string; retryInMs?: number }
  | { state: 'Importing' }
  | undefined;

/**
 * Whether `sender` may send the archive of task `key` now. The pod the token
 * is bound to must be one of the node's puller pods, in the sender's
 * namespace, of the object the task is for; the task must take its archive
 * from a claim and be allowed by the policy. An import done already is
 * answered at once (the body is not read), one in back-off with when to send
 * again.
 */
export function admitSend(input: {
  sender: Sender;
  key: string;
  nodeName: string;
  tasks: readonly ImportTask[];
  pods: readonly KubeObject[];
  record: (task: ImportTask) => RecordView;
}): Admission {
  const { sender, key, nodeName } = input;
  const refuse = (status: number, message: string, reason?: string): Admission => ({
    kind: 'answer',
    status,
    answer: { ok: false, message, ...(reason && { reason }) },
  });
  if (sender.podUid === undefined) {
    return refuse(403, "the token is not bound to a pod: send with the puller pod's own projected token");
  }
  const pod = input.pods.find((p) => p.metadata.uid === sender.podUid && !p.metadata.deletionTimestamp);
  if (!pod || pod.metadata.namespace !== sender.namespace) {
    return refuse(
      403,
      `the token's pod ${sender.namespace}/${sender.podName ?? '?'} is no puller pod on node ${nodeName}`,
    );
  }
  const task = input.tasks.find((t) => t.key === key);
  if (
    !task ||
    !isClaimTask(task) ||
    task.namespace !== sender.namespace ||
    pod.metadata.labels?.[OWNER_UID_LABEL] !== task.uid
  ) {
    return refuse(
      404,
      `no import from a volume claim is owed to pod ${sender.namespace}/${pod.metadata.name} for ${key} on node ${nodeName}`,
    );
  }
  if (task.refusal !== undefined) return refuse(403, task.refusal, Reason.ImportNotAllowed);
  const record = input.record(task);
  if (record?.state === 'Imported') {
    return {
      kind: 'answer',
      status: 200,
      answer: { ok: true, ...(record.digest && { digest: record.digest }) },
    };
  }
  if (record?.state === 'Failed' && record.retryInMs !== undefined && record.retryInMs > 0) {
    return {
      kind: 'answer',
      status: 503,
      answer: {
        ok: false,
        ...(record.reason && { reason: record.reason }),
        message: `the last import failed: ${record.message ?? 'no message'}; send again later`,
        retryAfterSeconds: Math.ceil(record.retryInMs / 1000),
      },
    };
  }
  return { kind: 'queue', task };
}

/** The answer to a send the agent imported (or failed to): a failure says when to send again. */
export function answerOf(
  outcome: ImportOutcome,
  after: RecordView,
): { status: number; answer: ArchiveAnswer } {
  if (outcome.ok)
    return { status: 200, answer: { ok: true, ...(outcome.digest && { digest: outcome.digest }) } };
  const retryInMs = after?.state === 'Failed' ? after.retryInMs : undefined;
  return {
    status: 422,
    answer: {
      ok: false,
      reason: outcome.reason,
      message: outcome.message,
      ...(retryInMs !== undefined && { retryAfterSeconds: Math.max(1, Math.ceil(retryInMs / 1000)) }),
    },
  };
}
