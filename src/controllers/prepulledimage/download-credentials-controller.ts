/**
 * Keeps the copies of tarball download credentials in Prepull's namespace
 * (protocol: src/image/download-credentials.ts). One key per source Secret,
 * `namespace/name`: while a PrePulledImage of that namespace names it in a
 * url source's `credentialsSecretRef`, its copy holds the credential (or says
 * why there is none); once none does, the copy is deleted. A copy cannot be
 * owned by an object of another namespace, so the garbage collector cannot
 * remove it: this controller does, and its startup list of the copies finds
 * those whose sources are no longer named. Sources are watched one by one
 * (SecretWatches), so a rotation reaches the copy at once. Secret values are
 * never logged. I/O.
 */

import type { Logger } from 'pino';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import {
  CONTENT_HASH_ANNOTATION,
  credentialFromSource,
  credentialsSecretOf,
  downloadCredentialsCopyName,
  renderCredentialsCopy,
  sourceKeyOfCopy,
} from '../../image/download-credentials.ts';
import type { KubeClient } from '../../kube/client.ts';
import { isConflict, isNotFound } from '../../kube/errors.ts';
import type { Informer } from '../../kube/informer.ts';
import type { Secret } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { type SecretWatches, secretSelection } from '../../kube/secret-watches.ts';
import type { Clock } from '../../runtime/clock.ts';
import { Controller, type ControllerObserver, type ReconcileContext } from '../../runtime/controller.ts';
import { fieldManagerOf } from '../../runtime/object-controller.ts';
import { WorkQueue, type WorkQueueObserver } from '../../runtime/queue.ts';

export const DOWNLOAD_CREDENTIALS_CONTROLLER = 'download-credentials';
/** Index of PrePulledImages by the source Secrets (`namespace/name`) their url sources name. */
export const DOWNLOAD_CREDENTIALS_INDEX = 'download-credentials';

/** The source Secrets (`namespace/name`) a PrePulledImage takes download credentials from. */
export function credentialSourcesOf(ppi: PrePulledImage): string[] {
  const namespace = ppi.metadata.namespace ?? '';
  const names = ppi.spec.images.map(credentialsSecretOf).filter((n) => n !== undefined);
  return [...new Set(names)].map((name) => `${namespace}/${name}`);
}

/** Adds {@link DOWNLOAD_CREDENTIALS_INDEX} to the PrePulledImage informer. */
export function addDownloadCredentialsIndex(prePulledImages: Informer<PrePulledImage>): void {
  prePulledImages.addIndex(DOWNLOAD_CREDENTIALS_INDEX, credentialSourcesOf);
}

export interface DownloadCredentialsDeps {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  /** Prepull's namespace, where the copies live. */
  namespace: string;
  /** With {@link DOWNLOAD_CREDENTIALS_INDEX}. */
  prePulledImages: Informer<PrePulledImage>;
  /** Secrets of `namespace` labelled as copies (DOWNLOAD_CREDENTIALS_SELECTOR). */
  copies: Informer<Secret>;
  /** One watch per source Secret; this controller's own set. */
  sources: SecretWatches;
  concurrency: number;
  observer?: ControllerObserver;
  queueObserver?: WorkQueueObserver;
}

/** The controller; its handlers enqueue from the informers, its queue stops with it. */
export function createDownloadCredentialsController(deps: DownloadCredentialsDeps): Controller {
  const { client, clock, namespace, prePulledImages, copies, sources } = deps;
  const fieldManager = fieldManagerOf(DOWNLOAD_CREDENTIALS_CONTROLLER);
  const queue = new WorkQueue<string>({ clock, ...(deps.queueObserver && { observer: deps.queueObserver }) });
  const enqueue = (keys: Iterable<string>) => {
    for (const key of keys) queue.add(key);
  };
  prePulledImages.addHandler({
    add: (ppi) => enqueue(credentialSourcesOf(ppi)),
    update: (previous, ppi) =>
      enqueue(new Set([...credentialSourcesOf(previous), ...credentialSourcesOf(ppi)])),
    delete: (ppi) => enqueue(credentialSourcesOf(ppi)),
  });
  const ofCopy = (copy: Secret) => {
    const key = sourceKeyOfCopy(copy);
    return key === undefined ? [] : [key];
  };
  copies.addHandler({
    add: (copy) => enqueue(ofCopy(copy)),
    update: (previous, copy) => enqueue(new Set([...ofCopy(previous), ...ofCopy(copy)])),
    delete: (copy) => enqueue(ofCopy(copy)),
  });
  sources.notifyWith((key) => queue.add(key));
  // Startup: every named source, and every copy (those named by nothing are deleted).
  for (const ppi of prePulledImages.list()) enqueue(credentialSourcesOf(ppi));
  for (const copy of copies.list()) enqueue(ofCopy(copy));

  async function reconcile(key: string, { log }: ReconcileContext): Promise<undefined> {
    const slash = key.indexOf('/');
    const sourceNamespace = key.slice(0, slash);
    const sourceName = key.slice(slash + 1);
    const copyName = downloadCredentialsCopyName(sourceNamespace, sourceName);
    const cached = copies.get(`${namespace}/${copyName}`);
    const named = prePulledImages.byIndex(DOWNLOAD_CREDENTIALS_INDEX, key).length > 0;
    if (!named) {
      sources.forget(key);
      if (!cached) return;
      try {
        await client.delete(Resources.secrets, copyName, namespace, { uid: cached.metadata.uid ?? '' });
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) return;
        throw err;
      }
      log.info(
        { source: key, copy: copyName },
        'deleted a download credentials copy no PrePulledImage names',
      );
      return;
    }
    const [state] = sources.use(key, [secretSelection(sourceNamespace, sourceName)]);
    if (!state) return;
    // Not listed yet: the watch notifies once it is.
    if (!state.synced && !state.error) return;
    const credential = state.error
      ? {
          ok: false as const,
          problem: `the operator cannot read the Secret ${sourceName} in namespace ${sourceNamespace}: ${state.error.status} ${state.error.reason}`,
        }
      : credentialFromSource(state.informer.get(key), sourceNamespace, sourceName);
    const desired = renderCredentialsCopy(namespace, sourceNamespace, sourceName, credential);
    if (
      cached &&
      cached.metadata.annotations?.[CONTENT_HASH_ANNOTATION] ===
        desired.metadata.annotations?.[CONTENT_HASH_ANNOTATION]
    ) {
      return;
    }
    await client.apply(Resources.secrets, desired, { fieldManager, force: true });
    // The source and copy names, never a value.
    log.info(
      { source: key, copy: copyName, usable: credential.ok },
      'wrote the download credentials copy for the node agents',
    );
    return;
  }

  return new Controller({
    name: DOWNLOAD_CREDENTIALS_CONTROLLER,
    queue,
    reconcile,
    concurrency: deps.concurrency,
    clock,
    log: deps.log,
    ...(deps.observer && { observer: deps.observer }),
    onStop: () => sources.stop(),
  });
}
