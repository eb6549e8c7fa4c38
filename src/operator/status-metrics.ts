/**
 * Metrics read from the informers' caches at scrape time, the way
 * kube-state-metrics reads objects: PrePulledImages and RegistryCredentials by
 * state, each PrePulledImage's nodes by state, node images failing by reason,
 * and each RegistryCredential's namespaces. The controllers count nothing for
 * these; a scrape is one pass over the cached statuses. Pure but for the
 * registry it registers with.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Condition } from '../api/common.ts';
import type { PrePulledImage } from '../api/prepulledimage.ts';
import type { RegistryCredential } from '../api/registrycredential.ts';

/** Where the statuses come from: the operator's informers. */
export interface StatusSources {
  prePulledImages: { list(): PrePulledImage[] };
  registryCredentials: { list(): RegistryCredential[] };
}

/** What a GitOps tool would call an object (the Argo CD health checks in deploy/argocd decide alike). */
export type ObjectState = 'Ready' | 'Progressing' | 'Degraded';

/**
 * The state of one object from its status: Progressing until the controller
 * has written status for the current generation, then Degraded (PrePulledImage
 * `Degraded`, RegistryCredential `Stalled`), Ready, or Progressing.
 */
export function objectState(
  object: PrePulledImage | RegistryCredential,
  failureCondition: 'Degraded' | 'Stalled',
): ObjectState {
  const status = object.status;
  const generation = object.metadata.generation ?? 0;
  if (status?.observedGeneration === undefined || status.observedGeneration < generation)
    return 'Progressing';
  const isTrue = (type: string) =>
    status.conditions?.some((c: Condition) => c.type === type && c.status === 'True') === true;
  if (isTrue(failureCondition)) return 'Degraded';
  return isTrue('Ready') ? 'Ready' : 'Progressing';
}

const STATES: ObjectState[] = ['Ready', 'Progressing', 'Degraded'];

/** Registers the status metrics on `registry`; their values are computed at each scrape. */
export function registerStatusMetrics(registry: Registry, sources: StatusSources): void {
  new Gauge({
    name: 'prepull_objects',
    help: 'PrePulledImages and RegistryCredentials by kind and state (Ready, Progressing, Degraded).',
    labelNames: ['kind', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const count = (kind: string, states: ObjectState[]) => {
        for (const state of STATES) this.set({ kind, state }, states.filter((s) => s === state).length);
      };
      count(
        'PrePulledImage',
        sources.prePulledImages.list().map((o) => objectState(o, 'Degraded')),
      );
      count(
        'RegistryCredential',
        sources.registryCredentials.list().map((o) => objectState(o, 'Stalled')),
      );
    },
  });
  new Gauge({
    name: 'prepull_prepulledimage_nodes',
    help: "Each PrePulledImage's selected nodes by state (desired, ready, pulling, failed), from its status.",
    labelNames: ['namespace', 'name', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const ppi of sources.prePulledImages.list()) {
        const { namespace = '', name = '' } = ppi.metadata;
        const status = ppi.status;
        if (status?.desiredNodes === undefined) continue;
        this.set({ namespace, name, state: 'desired' }, status.desiredNodes);
        this.set({ namespace, name, state: 'ready' }, status.readyNodes ?? 0);
        this.set({ namespace, name, state: 'pulling' }, status.pullingNodes ?? 0);
        this.set({ namespace, name, state: 'failed' }, status.failedNodes ?? 0);
      }
    },
  });
  new Gauge({
    name: 'prepull_node_image_failures',
    help: 'Images failing on a node now, by reason (ErrImagePull, NotFound, ImportFailed, …), over the nodes each status lists.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      const byReason = new Map<string, number>();
      for (const ppi of sources.prePulledImages.list()) {
        for (const node of ppi.status?.nodes ?? []) {
          for (const image of node.images ?? []) {
            if (image.state !== 'Failed') continue;
            const reason = image.reason ?? 'Unknown';
            byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
          }
        }
      }
      for (const [reason, n] of byReason) this.set({ reason }, n);
    },
  });
  new Gauge({
    name: 'prepull_registrycredential_namespaces',
    help: "Each RegistryCredential's target namespaces by state (desired, synced, failed), from its status.",
    labelNames: ['name', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const rc of sources.registryCredentials.list()) {
        const name = rc.metadata.name ?? '';
        const status = rc.status;
        if (status?.desiredNamespaces === undefined) continue;
        this.set({ name, state: 'desired' }, status.desiredNamespaces);
        this.set({ name, state: 'synced' }, status.syncedNamespaces ?? 0);
        this.set({ name, state: 'failed' }, status.failedNamespaces ?? 0);
      }
    },
  });
}
