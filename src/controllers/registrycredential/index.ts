/**
 * The RegistryCredential controller, put together: the kind, its per-source
 * and per-copy-name secret watches, and the runtime's object controller that
 * runs them. The watches belong to the controller, not to the shared
 * informers: they follow the RegistryCredentials and stop with it.
 */
import { Informer, type RestartReason } from '../../kube/informer.ts';
import { keyOf, type Secret } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { SecretWatches } from '../../kube/secret-watches.ts';
import type { Controller } from '../../runtime/controller.ts';
import { createObjectController, type ObjectControllerDeps } from '../../runtime/object-controller.ts';
import type { AdmissionMode } from './admission-writes.ts';
import { registryCredentialKind } from './controller.ts';
import type { RegistryCredentialInformers } from './informers.ts';

export { ADMISSION_OBJECTS_SELECTOR } from './admission.ts';
export { type AdmissionMode, addAdmissionIndexes } from './admission-writes.ts';
export { CONTROLLER_NAME } from './controller.ts';
export { addRegistryCredentialIndexes, type RegistryCredentialInformers } from './informers.ts';
export { COPIES_SELECTOR } from './labels.ts';

/** Metrics name of the dynamic secret informers (one label value for all of them). */
const WATCHES_METRIC_NAME = 'registrycredential-secrets';

export interface RegistryCredentialControllerOptions extends ObjectControllerDeps {
  informers: RegistryCredentialInformers;
  /** The pod admission policies: kept (with their caches), unsupported by the cluster, or turned off. */
  admission: AdmissionMode;
  /** Prepull's own namespace (spec.nodes keeps its node copies there). */
  namespace: string;
  watchObserver?: {
    restart(informer: string, reason: RestartReason): void;
    event(informer: string, type: string): void;
  };
}

/** Builds the controller, with every RegistryCredential queued for a first pass; `start()` runs it. */
export function createRegistryCredentialController(options: RegistryCredentialControllerOptions): Controller {
  const { client, clock, log, informers, store } = options;
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
    seen: (secret) => store.seen(Resources.secrets, keyOf(secret), false),
  });
  return createObjectController(
    registryCredentialKind({
      client,
      informers,
      watches,
      admission: options.admission,
      namespace: options.namespace,
    }),
    options,
  );
}
