/**
 * The node agent's side of tarball download credentials: for a task whose url
 * source names `credentialsSecretRef`, the copy the controller keeps in
 * Prepull's namespace (src/image/download-credentials.ts), read by name with
 * one GET when the import runs (the agent may read secrets of its own
 * namespace only, and caches none). The value goes to the importer on its
 * standard input, never into its arguments, a report or a log line. I/O.
 */
import { Reason } from '../../../api/conditions.ts';
import { credentialFromCopy, downloadCredentialsCopyName } from '../../../image/download-credentials.ts';
import type { KubeClient } from '../../../kube/client.ts';
import type { Secret } from '../../../kube/objects.ts';
import { Resources } from '../../../kube/resources.ts';
import type { ImportTask } from './plan.ts';
import type { ImportOutcome } from './state.ts';

/**
 * What an import needs besides its task: the `Authorization` value, or why it
 * cannot run; `notYet` when the copy is not there at all, which the controller
 * writes as soon as it sees the object (the agent may see the puller pod first).
 */
export type DownloadCredential =
  | { ok: true; authorization: string | undefined }
  | { ok: false; outcome: Extract<ImportOutcome, { ok: false }>; notYet?: true };

/** Reads the credential `task` needs from Prepull's namespace `namespace`; none for a task without one. */
export async function downloadCredentialFor(
  client: KubeClient,
  namespace: string,
  task: ImportTask,
): Promise<DownloadCredential> {
  const name = task.tarball.url !== undefined ? task.tarball.credentialsSecretRef?.name : undefined;
  if (name === undefined) return { ok: true, authorization: undefined };
  let copy: Secret | undefined;
  try {
    copy = await client.get<Secret>(
      Resources.secrets,
      downloadCredentialsCopyName(task.namespace, name),
      namespace,
    );
  } catch (err) {
    const message = `reading the copy of the Secret ${name} (tarball.credentialsSecretRef): ${(err as Error).message}`;
    return { ok: false, outcome: { ok: false, reason: Reason.CredentialsUnavailable, message } };
  }
  const credential = credentialFromCopy(copy, task.namespace, name);
  if (!credential.ok) {
    return {
      ok: false,
      outcome: { ok: false, reason: Reason.CredentialsUnavailable, message: credential.problem },
      ...(copy === undefined && { notYet: true as const }),
    };
  }
  return { ok: true, authorization: credential.authorization };
}
