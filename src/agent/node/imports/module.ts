/**
 * The agent's import module: imports the tarball images of the PrePulledImages
 * whose puller pods run on this node, one at a time, and reports each
 * outcome on the agent's pod. The tenant's puller pod itself is unprivileged:
 * its hold container uses the image with imagePullPolicy Never and starts once
 * the image is here (the kubelet retries ErrImageNeverPull). It reads only the
 * puller pods of its own node, the PrePulledImages, the import policy
 * ConfigMap of Prepull's namespace, and there the copies of download
 * credentials, one GET each when an import needs one (credentials.ts). I/O.
 */
import type { PrePulledImage } from '../../../api/prepulledimage.ts';
import { NAME_LABEL, PULLER_NAME } from '../../../controllers/prepulledimage/labels.ts';
import {
  IMPORT_POLICY_CONFIGMAP,
  type LoadedImportPolicy,
  loadImportPolicy,
} from '../../../image/import-policy.ts';
import { apiSource, Informer } from '../../../kube/informer.ts';
import type { ConfigMap, KubeObject } from '../../../kube/objects.ts';
import { Resources } from '../../../kube/resources.ts';
import { slimMeta } from '../../../kube/slim.ts';
import { Sleeper } from '../../../runtime/clock.ts';
import type { AgentContext, AgentModule } from '../module.ts';
import { answerOf, isClaimTask } from './archive-protocol.ts';
import { ArchiveServer, type QueuedSend } from './archive-server.ts';
import { type DownloadCredential, downloadCredentialFor } from './credentials.ts';
import type { RunImport, RunUnpin } from './importer.ts';
import { type ImportTask, planImports } from './plan.ts';
import { IMPORT_MODULE } from './report.ts';
import { DEFAULT_IMPORT_RETRY, type ImportOutcome, type ImportRetryPolicy, ImportState } from './state.ts';

export interface ImportModuleOptions {
  runImport: RunImport;
  runUnpin: RunUnpin;
  retry?: ImportRetryPolicy;
  /** Where puller pods send archives of volume claims (archive-protocol.ts); undefined: no server, such imports wait. */
  archivePort?: number;
}

/** The import module, running imports with `runImport`. */
export function importModule(options: ImportModuleOptions): AgentModule {
  return { name: IMPORT_MODULE, run: (context) => runImports(context, options) };
}

async function runImports(context: AgentContext, options: ImportModuleOptions): Promise<void> {
  const { client, clock, log, signal, nodeName, namespace } = context;
  const informer = <T extends KubeObject>(
    name: string,
    source: Parameters<typeof apiSource>[1],
    transform?: (o: T) => T,
  ) =>
    new Informer<T>({
      name,
      source: apiSource<T>(client, source),
      clock,
      log,
      ...(transform && { transform }),
    });
  const pods = informer<KubeObject>(
    'puller-pods',
    {
      type: Resources.pods,
      labelSelector: `${NAME_LABEL}=${PULLER_NAME}`,
      fieldSelector: `spec.nodeName=${nodeName}`,
    },
    (pod) => ({ metadata: slimMeta(pod.metadata) }),
  );
  const prePulledImages = informer<PrePulledImage>('prepulledimages', { type: Resources.prePulledImages });
  const policies = informer<ConfigMap>('import-policy', {
    type: Resources.configMaps,
    namespace,
    fieldSelector: `metadata.name=${IMPORT_POLICY_CONFIGMAP}`,
  });
  const all = [pods, prePulledImages, policies] as Informer<KubeObject>[];
  const sleeper = new Sleeper(clock);
  const wake = () => sleeper.wake();
  for (const i of all) i.addHandler({ add: wake, update: wake, delete: wake });
  signal.addEventListener('abort', wake);
  for (const i of all) i.start();
  let sends: ArchiveServer | undefined;
  try {
    await Promise.race([
      Promise.all(all.map((i) => i.waitForSync())),
      new Promise((resolve) => signal.addEventListener('abort', resolve)),
    ]);
    const state = new ImportState(options.retry ?? DEFAULT_IMPORT_RETRY);
    const policy = (): LoadedImportPolicy =>
      loadImportPolicy(policies.get(`${namespace}/${IMPORT_POLICY_CONFIGMAP}`)?.data ?? undefined);
    const plan = () => planImports(pods.list(), (key) => prePulledImages.get(key), policy());
    sends =
      options.archivePort === undefined
        ? undefined
        : new ArchiveServer({
            client,
            nodeName,
            log,
            port: options.archivePort,
            // Planned afresh for each send: the loop's own list may be a long import old.
            tasks: plan,
            pods: () => pods.list(),
            view: (task) => state.view(task, clock.now()),
            wake,
          });
    await sends?.start();
    // The images the node holds for PrePulledImages, as of the last unpin; undefined: unpin again.
    let unpinnedFor: string | undefined;
    while (!signal.aborted) {
      const tasks = plan();
      state.retain(tasks);
      sends?.retain(new Set(tasks.map((t) => t.key)));
      context.report(state.report(tasks));
      // What no PrePulledImage here holds any longer loses its pin (kubelet GC may then remove it).
      const held = [...new Set(tasks.map((t) => t.image))].sort();
      if (unpinnedFor !== held.join(',')) {
        const unpinned = await options.runUnpin(held, signal);
        if (signal.aborted) break;
        if (unpinned.ok) {
          unpinnedFor = held.join(',');
          if (unpinned.unpinned.length > 0)
            log.info({ images: unpinned.unpinned }, 'unpinned images no PrePulledImage holds');
        } else {
          log.warn({ message: unpinned.message }, 'unpinning failed; trying again with the next change');
        }
      }
      // A volume claim's archive can be imported only while its puller pod sends it.
      const next = state.next(tasks, clock.now(), (t) => !isClaimTask(t) || sends?.has(t.key) === true);
      if (!('task' in next)) {
        await sleeper.sleep(next.inMs ?? Number.POSITIVE_INFINITY);
        continue;
      }
      const { task } = next;
      const send = isClaimTask(task) ? sends?.take(task.key) : undefined;
      // A url source's credential, read from Prepull's namespace before the import starts; never logged.
      const credential = send ? undefined : await downloadCredentialFor(client, namespace, task);
      if (signal.aborted) break;
      if (credential && !credential.ok && credential.notYet) {
        log.debug(
          { ppi: task.owner, image: task.image },
          'download credential not copied yet; asking again shortly',
        );
        state.postponed(task, credential.outcome, clock.now());
        continue;
      }
      state.started(task);
      context.report(state.report(tasks));
      log.info({ ppi: task.owner, image: task.image, index: task.index }, 'importing');
      const outcome = await importOne(task, send, credential);
      if (signal.aborted) break;
      state.finished(task, outcome, clock.now());
      if (send) {
        // The sender, and any other pod's send of the same import, learn the outcome.
        const answer = answerOf(outcome, state.view(task, clock.now()));
        send.respond(answer.status, answer.answer);
        sends?.answerAll(task.key, answer.status, answer.answer);
      }
      if (outcome.ok) log.info({ ppi: task.owner, image: task.image, digest: outcome.digest }, 'imported');
      else
        log.warn(
          { ppi: task.owner, image: task.image, reason: outcome.reason, message: outcome.message },
          'import failed',
        );
    }
  } finally {
    await sends?.stop();
    await Promise.all(all.map((i) => i.stop()));
  }

  async function importOne(
    task: ImportTask,
    send: QueuedSend | undefined,
    credential: DownloadCredential | undefined,
  ): Promise<ImportOutcome> {
    if (send?.failure) return { ok: false, ...send.failure };
    if (send) return options.runImport(task, signal, { archive: send.begin() });
    if (credential && !credential.ok) return credential.outcome;
    return options.runImport(task, signal, { authorization: credential?.authorization });
  }
}
