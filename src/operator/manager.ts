/**
 * Puts the operator together: one API client, the informers every controller
 * reads, the controllers, and leader election. Informers run in every
 * replica (a standby has a warm cache); controllers run only in the leader and
 * stop the moment it loses the lease.
 */

import type { Logger } from 'pino';
import { NODE_COPIES_SELECTOR } from '../agent/nodecreds/protocol.ts';
import type { PrePulledImage } from '../api/prepulledimage.ts';
import { WORKLOAD_KINDS } from '../api/prepulledimage.ts';
import type { RegistryCredential } from '../api/registrycredential.ts';
import type { RegistryMirror } from '../api/registrymirror.ts';
import {
  type AgentPod,
  addAgentPodIndexes,
  agentPodSelection,
  slimAgentPod,
} from '../controllers/agent-reports.ts';
import { addCredentialReferenceIndex } from '../controllers/indexes.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME, NAME_LABEL } from '../controllers/labels.ts';
import { prePulledImageKind } from '../controllers/prepulledimage/controller.ts';
import {
  addDownloadCredentialsIndex,
  createDownloadCredentialsController,
} from '../controllers/prepulledimage/download-credentials-controller.ts';
import { GATED_NODE_INDEX, isGated, nodeGateKind } from '../controllers/prepulledimage/gate.ts';
import { WORKLOAD_RESOURCES } from '../controllers/prepulledimage/images-from-watches.ts';
import { PULLER_NAME } from '../controllers/prepulledimage/labels.ts';
import {
  addPullerPodIndexes,
  addPullerPodNodeIndex,
  addRefusalIndexes,
  type PullerPod,
  slimPullerPod,
} from '../controllers/prepulledimage/pods.ts';
import { POD_REFUSAL_FIELD_SELECTOR, slimRefusal } from '../controllers/prepulledimage/refusals.ts';
import { createRegistryChecks } from '../controllers/prepulledimage/registry-checks.ts';
import type { RenderOptions } from '../controllers/prepulledimage/render.ts';
import {
  addWorkloadIndexes,
  ImagesFromPlans,
  type WorkloadInformers,
} from '../controllers/prepulledimage/workload-caches.ts';
import {
  ADMISSION_OBJECTS_SELECTOR,
  type AdmissionMode,
  addAdmissionIndexes,
  addRegistryCredentialIndexes,
  COPIES_SELECTOR,
  createRegistryCredentialController,
} from '../controllers/registrycredential/index.ts';
import { registryMirrorKind } from '../controllers/registrymirror/controller.ts';
import { agentMirrorReports } from '../controllers/registrymirror/reports.ts';
import { DOWNLOAD_CREDENTIALS_SELECTOR } from '../image/download-credentials.ts';
import { IMPORT_POLICY_CONFIGMAP } from '../image/import-policy.ts';
import { KubeClient } from '../kube/client.ts';
import type { KubeConfig } from '../kube/config.ts';
import { servesResource } from '../kube/discovery.ts';
import { EventRecorder } from '../kube/events.ts';
import { apiSource, Informer, type Selection } from '../kube/informer.ts';
import { leaseLock } from '../kube/lease.ts';
import type {
  ConfigMap,
  CoreEvent,
  DaemonSet,
  KubeObject,
  Namespace,
  Node,
  PriorityClass,
  Secret,
  ServiceAccount,
} from '../kube/objects.ts';
import { Resources, type ResourceType } from '../kube/resources.ts';
import { SecretWatches } from '../kube/secret-watches.ts';
import { slimNode } from '../kube/slim.ts';
import { type SlimWorkload, slimWorkload } from '../kube/workloads.ts';
import { RegistryClient, type RegistryTlsOptions } from '../registry/index.ts';
import type { Clock } from '../runtime/clock.ts';
import { ConsistencyStore } from '../runtime/consistency.ts';
import type { Controller } from '../runtime/controller.ts';
import { LeaderElector, type LeadershipEnd } from '../runtime/leader.ts';
import { createObjectController } from '../runtime/object-controller.ts';
import type { OperatorMetrics } from './metrics.ts';
import { registerStatusMetrics } from './status-metrics.ts';

export interface OperatorOptions {
  kc: KubeConfig;
  log: Logger;
  clock: Clock;
  metrics: OperatorMetrics;
  /** This replica, for the lease and for Events. */
  identity: string;
  /** Prepull's own namespace, where the node agent's pods run (default prepull-system). */
  namespace?: string;
  /** Where the leader Lease lives; no leader election when undefined (one replica). */
  leaderElection?: { namespace: string; name: string };
  agent: RenderOptions['agent'];
  defaultPriorityClassName?: string;
  /** Priority classes a PrePulledImage may name besides those of value 0 or less (default prepull-low). */
  allowedPriorityClasses?: readonly string[];
  /** Keys reconciled at once per controller. */
  concurrency?: number;
  /**
   * Check each PrePulledImage's images at their registry (tag → digest,
   * platforms) and show the answers in status; with these TLS settings.
   * Off when undefined.
   */
  registryChecks?: { tls: RegistryTlsOptions };
  /**
   * Keep a MutatingAdmissionPolicy per RegistryCredential with
   * serviceAccounts, so that new pods get the secret at admission (default
   * true; the cluster must serve admissionregistration.k8s.io/v1).
   */
  admissionPolicies?: boolean;
}

export interface RunningOperator {
  /** Informers synced: the /readyz answer. */
  ready(): boolean;
  /** Resolves when leadership ends: `lost` means exit non-zero and let Kubernetes restart us. */
  ended: Promise<LeadershipEnd>;
  stop(): Promise<void>;
  client: KubeClient;
}

export const USER_AGENT = 'prepull-operator';
/** Prepull's namespace when none is given. */
export const DEFAULT_NAMESPACE = 'prepull-system';
/** Metrics name of the PrePulledImage controller's pull-secret informers (one label value for all). */
const PULL_SECRET_WATCHES = 'prepulledimage-pull-secrets';
/** Metrics name of the download-credentials controller's source informers. */
const DOWNLOAD_CREDENTIALS_WATCHES = 'download-credentials-sources';

export function startOperator(options: OperatorOptions): RunningOperator {
  const { log, clock, metrics } = options;
  const client = new KubeClient(options.kc, { observe: metrics.apiRequest, userAgent: USER_AGENT });
  const informer = <T extends KubeObject>(name: string, selection: Selection, transform?: (obj: T) => T) =>
    new Informer<T>({
      name,
      source: apiSource<T>(client, selection),
      clock,
      log,
      ...(transform ? { transform } : {}),
      onRestart: (reason) => metrics.watchRestart(name, reason),
      onEvent: (type) => metrics.watchEvent(name, type),
    });

  const informers = {
    prePulledImages: informer<PrePulledImage>('prepulledimages', { type: Resources.prePulledImages }),
    registryCredentials: informer<RegistryCredential>('registrycredentials', {
      type: Resources.registryCredentials,
    }),
    registryMirrors: informer<RegistryMirror>('registrymirrors', { type: Resources.registryMirrors }),
    daemonSets: informer<DaemonSet>('daemonsets', {
      type: Resources.daemonSets,
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGER_NAME}`,
    }),
    // Pods and nodes are kept slim: only what the controllers read (see src/kube/slim.ts).
    pods: informer<PullerPod>(
      'pods',
      { type: Resources.pods, labelSelector: `${NAME_LABEL}=${PULLER_NAME}` },
      slimPullerPod,
    ),
    nodes: informer<Node>('nodes', { type: Resources.nodes }, slimNode),
    priorityClasses: informer<PriorityClass>('priorityclasses', { type: Resources.priorityClasses }),
    // Puller pods the cluster refuses to create show only in the DaemonSet controller's Events.
    podRefusals: informer<CoreEvent>(
      'puller-pod-refusals',
      { type: Resources.coreEvents, fieldSelector: POD_REFUSAL_FIELD_SELECTOR },
      slimRefusal,
    ),
    // RegistryCredential: only Prepull's copies among the secrets (sources are watched one by one).
    copies: informer<Secret>('registrycredential-copies', {
      type: Resources.secrets,
      labelSelector: COPIES_SELECTOR,
    }),
    // RegistryCredential spec.nodes: its node copies, in Prepull's namespace only.
    nodeCopies: informer<Secret>('registrycredential-node-copies', {
      type: Resources.secrets,
      namespace: options.namespace ?? DEFAULT_NAMESPACE,
      labelSelector: NODE_COPIES_SELECTOR,
    }),
    namespaces: informer<Namespace>('namespaces', { type: Resources.namespaces }),
    serviceAccounts: informer<ServiceAccount>('serviceaccounts', { type: Resources.serviceAccounts }),
    // spec.imagesFrom: every workload, kept as names, labels, images and pull secrets (src/kube/workloads.ts).
    // Puller pods never count (a DaemonSet controls them), and the pods informer above has them
    // already: left out here, the API server sends each of their events once, not twice.
    workloads: Object.fromEntries(
      WORKLOAD_KINDS.map((kind) => [
        kind,
        informer<SlimWorkload>(
          `workload-${kind.toLowerCase()}s`,
          {
            type: WORKLOAD_RESOURCES[kind],
            ...(kind === 'Pod' ? { labelSelector: `${NAME_LABEL}!=${PULLER_NAME}` } : {}),
          },
          slimWorkload(kind) as (obj: SlimWorkload) => SlimWorkload,
        ),
      ]),
    ) as WorkloadInformers,
    // The node agent's pods, which carry its modules' reports (src/controllers/agent-reports.ts).
    agentPods: informer<AgentPod>(
      'agent-pods',
      agentPodSelection(options.namespace ?? DEFAULT_NAMESPACE),
      slimAgentPod,
    ),
    // Copies of tarball download credentials (src/image/download-credentials.ts), in Prepull's namespace.
    downloadCredentialCopies: informer<Secret>('download-credentials-copies', {
      type: Resources.secrets,
      namespace: options.namespace ?? DEFAULT_NAMESPACE,
      labelSelector: DOWNLOAD_CREDENTIALS_SELECTOR,
    }),
    // The admin's import policy: one ConfigMap, watched by name.
    importPolicies: informer<ConfigMap>('import-policy', {
      type: Resources.configMaps,
      namespace: options.namespace ?? DEFAULT_NAMESPACE,
      fieldSelector: `metadata.name=${IMPORT_POLICY_CONFIGMAP}`,
    }),
  };
  addAgentPodIndexes(informers.agentPods);
  addPullerPodIndexes(informers.pods);
  addPullerPodNodeIndex(informers.pods);
  informers.nodes.addIndex(GATED_NODE_INDEX, (node) => (isGated(node) ? ['true'] : []));
  addRefusalIndexes(informers.podRefusals);
  addCredentialReferenceIndex(informers.prePulledImages);
  addDownloadCredentialsIndex(informers.prePulledImages);
  addRegistryCredentialIndexes(informers);
  addWorkloadIndexes(informers.workloads);
  const imagesFrom = new ImagesFromPlans(informers);
  // Every replica serves them from its warm cache, so a standby's scrape says the same.
  registerStatusMetrics(metrics.registry, informers);
  const { workloads, ...single } = informers;
  const all = [...Object.values(single), ...Object.values(workloads)] as Informer<KubeObject>[];
  for (const i of all) i.start();
  const synced = () => all.every((i) => i.hasSynced);

  // MutatingAdmissionPolicy v1 is served from Kubernetes 1.36 on: discovery
  // says, once, whether to watch Prepull's policies and bindings at all (a
  // watch of a type the cluster lacks would never sync).
  const discovery = new AbortController();
  const admission: Promise<AdmissionMode> =
    options.admissionPolicies === false
      ? Promise.resolve({ state: 'disabled' })
      : servesResource(client, Resources.mutatingAdmissionPolicies, clock, discovery.signal, (err) =>
          log.warn(
            { err: { message: String(err) } },
            'discovery of admissionregistration.k8s.io/v1 failed; retrying',
          ),
        ).then((served): AdmissionMode => {
          if (!served || discovery.signal.aborted) {
            log.warn(
              'the cluster does not serve admissionregistration.k8s.io/v1 MutatingAdmissionPolicy: pull secrets are not added to pods at admission',
            );
            return { state: 'unsupported' };
          }
          const selection = (type: ResourceType) => ({
            type,
            labelSelector: ADMISSION_OBJECTS_SELECTOR,
          });
          const policies = informer<KubeObject>(
            'mutatingadmissionpolicies',
            selection(Resources.mutatingAdmissionPolicies),
          );
          const bindings = informer<KubeObject>(
            'mutatingadmissionpolicybindings',
            selection(Resources.mutatingAdmissionPolicyBindings),
          );
          addAdmissionIndexes(policies, bindings);
          all.push(policies, bindings);
          policies.start();
          bindings.start();
          return { state: 'enabled', policies, bindings };
        });

  const events = new EventRecorder({
    client,
    clock,
    log,
    reportingController: 'prepull.dev/operator',
    reportingInstance: options.identity,
  });

  // One registry client per process: its connections and digest cache outlive a term as leader.
  const registry = options.registryChecks
    ? new RegistryClient({ clock, tls: options.registryChecks.tls, userAgent: USER_AGENT })
    : undefined;

  /** Watches of secrets by name, whose restarts and events count under `metric`. */
  const meteredSecretWatches = (metric: string) =>
    new SecretWatches({
      client,
      newInformer: (name, source) =>
        new Informer<Secret>({
          name,
          source,
          clock,
          log,
          onRestart: (reason) => metrics.watchRestart(metric, reason),
          onEvent: (type) => metrics.watchEvent(metric, type),
        }),
    });

  const makeControllers = (admissionMode: AdmissionMode): Controller[] => {
    // One memory of our own writes for every controller of this term as leader.
    const store = new ConsistencyStore();
    const deps = (name: string) => ({
      client,
      clock,
      log,
      events,
      store,
      concurrency: options.concurrency ?? 4,
      observer: metrics.controller,
      queueObserver: metrics.queue(name),
    });
    const prePulledImages = prePulledImageKind({
      client,
      clock,
      events,
      informers,
      pullSecrets: meteredSecretWatches(PULL_SECRET_WATCHES),
      imagesFrom,
      ...(options.allowedPriorityClasses ? { allowedPriorityClasses: options.allowedPriorityClasses } : {}),
      ...(registry ? { registryChecks: createRegistryChecks({ client, registry, clock }) } : {}),
      render: {
        agent: options.agent,
        ...(options.defaultPriorityClassName
          ? { defaultPriorityClassName: options.defaultPriorityClassName }
          : {}),
      },
    });
    const gate = nodeGateKind({ client, events, informers, imagesFrom });
    const mirrors = registryMirrorKind({
      registryMirrors: informers.registryMirrors,
      nodes: informers.nodes,
      reports: agentMirrorReports(informers.agentPods),
    });
    const downloadCredentials = createDownloadCredentialsController({
      ...deps('download-credentials'),
      namespace: options.namespace ?? DEFAULT_NAMESPACE,
      prePulledImages: informers.prePulledImages,
      copies: informers.downloadCredentialCopies,
      sources: meteredSecretWatches(DOWNLOAD_CREDENTIALS_WATCHES),
    });
    return [
      createObjectController(prePulledImages, deps(prePulledImages.name)),
      downloadCredentials,
      createObjectController(gate, deps(gate.name)),
      createObjectController(mirrors, deps(mirrors.name)),
      createRegistryCredentialController({
        ...deps('registrycredential'),
        informers,
        admission: admissionMode,
        namespace: options.namespace ?? DEFAULT_NAMESPACE,
        watchObserver: { restart: metrics.watchRestart, event: metrics.watchEvent },
      }),
    ];
  };

  let controllers: Controller[] = [];
  let stopping = false;
  const lead = async (signal?: AbortSignal) => {
    const admissionMode = await admission;
    await Promise.all(all.map((i) => i.waitForSync()));
    if (stopping || signal?.aborted) return;
    controllers = makeControllers(admissionMode);
    for (const c of controllers) c.start();
    log.info({ controllers: controllers.map((c) => c.name) }, 'controllers started');
  };
  const stopControllers = async () => {
    const running = controllers;
    controllers = [];
    await Promise.all(running.map((c) => c.stop()));
  };

  let elector: LeaderElector | undefined;
  let ended: Promise<LeadershipEnd>;
  if (options.leaderElection) {
    const { namespace, name } = options.leaderElection;
    elector = new LeaderElector({
      lock: leaseLock(client, namespace, name),
      identity: options.identity,
      clock,
      log,
    });
    ended = elector.run((signal) => {
      metrics.setLeader(true);
      signal.addEventListener('abort', () => {
        metrics.setLeader(false);
        void stopControllers();
      });
      void lead(signal);
    });
  } else {
    void lead();
    ended = new Promise<LeadershipEnd>(() => {});
  }

  return {
    client,
    ready: synced,
    ended,
    async stop() {
      stopping = true;
      discovery.abort();
      elector?.stop();
      await stopControllers();
      if (elector) await ended;
      await admission;
      await Promise.all(all.map((i) => i.stop()));
      await registry?.close();
    },
  };
}
