/**
 * The RegistryCredential controller, put together: its work queue, the
 * handlers that fill it, the per-source and per-copy-name secret watches, and
 * the reconciler. The watches belong to the controller, not to the shared
 * informers: they follow the RegistryCredentials and stop with it.
 */
import type { Logger } from 'pino';
import type { KubeClient } from '../../kube/client.ts';
import type { EventRecorder } from '../../kube/events.ts';
import { Informer, type RestartReason } from '../../kube/informer.ts';
import { keyOf, type Secret } from '../../kube/objects.ts';
import type { Clock } from '../../runtime/clock.ts';
import { Controller, type ControllerObserver } from '../../runtime/controller.ts';
import { WorkQueue, type WorkQueueObserver } from '../../runtime/queue.ts';
import { registryCredentialReconciler } from './controller.ts';
import { enqueueRegistryCredentialEvents, type RegistryCredentialInformers } from './informers.ts';
import { PendingWrites } from './pending.ts';
import { SecretWatches } from './watches.ts';

export { addRegistryCredentialIndexes, type RegistryCredentialInformers } from './informers.ts';
export { COPIES_SELECTOR } from './labels.ts';

export const CONTROLLER_NAME = 'registrycredential';
/** Metrics name of the dynamic secret informers (one label value for all of them). */
const WATCHES_METRIC_NAME = 'registrycredential-secrets';

export interface RegistryCredentialControllerOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  events: EventRecorder;
  informers: RegistryCredentialInformers;
  concurrency: number;
  observer?: ControllerObserver;
  queueObserver?: WorkQueueObserver;
  watchObserver?: {
    restart(informer: string, reason: RestartReason): void;
    event(informer: string, type: string): void;
  };
}

/** A controller whose stop also stops the secret watches it started. */
class RegistryCredentialController extends Controller {
  readonly #watches: SecretWatches;

  constructor(options: ConstructorParameters<typeof Controller>[0], watches: SecretWatches) {
    super(options);
    this.#watches = watches;
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.#watches.stop();
  }
}

/** Builds the controller, with every RegistryCredential queued for a first pass; `start()` runs it. */
export function createRegistryCredentialController(options: RegistryCredentialControllerOptions): Controller {
  const { client, clock, log, informers } = options;
  const queue = new WorkQueue<string>({
    clock,
    ...(options.queueObserver ? { observer: options.queueObserver } : {}),
  });
  const pending = new PendingWrites();
  const watches = new SecretWatches({
    client,
    newInformer: (name, source) =>
      new Informer<Secret>({
        name,
        source,
        clock,
        log,
        onRestart: (reason) => options.watchObserver?.restart(WATCHES_METRIC_NAME, reason),
        onEvent: (type) => options.watchObserver?.event(WATCHES_METRIC_NAME, type),
      }),
    notify: (user) => queue.add(user),
    seen: (secret) => pending.seen(keyOf(secret)),
  });
  enqueueRegistryCredentialEvents(informers, queue, pending);
  for (const rc of informers.registryCredentials.list()) queue.add(keyOf(rc));
  return new RegistryCredentialController(
    {
      name: CONTROLLER_NAME,
      queue,
      concurrency: options.concurrency,
      clock,
      log,
      ...(options.observer ? { observer: options.observer } : {}),
      reconcile: registryCredentialReconciler({
        client,
        clock,
        events: options.events,
        informers,
        watches,
        pending,
      }),
    },
    watches,
  );
}
