/**
 * The node readiness gate: a node that registers with the
 * `prepull.dev/images-not-ready:NoSchedule` startup taint takes no workload
 * until every PrePulledImage that gates it (`spec.nodeReadiness.taint`) and
 * selects it holds its images there; then the taint is removed. It fails open:
 * a node whose images fail, or that waits past the timeout, is released
 * anyway, with a Warning Event on the node and on the objects, and an
 * annotation that status reports. The gate only ever removes the taint, never
 * adds it, and removes it with a patch that fails if the node's taints
 * changed meanwhile, so it never drops a taint someone else added.
 *
 * A kind of its own on the runtime, keyed by node: it writes no status.
 * {@link decideRelease} is pure; the kind does the reading and the patch.
 */
import { z } from 'zod';
import { durationMs } from '../../api/common.ts';
import {
  DEFAULT_NODE_READINESS_TIMEOUT,
  IMAGES_NOT_READY_TAINT,
  type PrePulledImage,
  RELEASED_UNREADY_ANNOTATION,
} from '../../api/prepulledimage.ts';
import type { KubeClient } from '../../kube/client.ts';
import { isPatchTestFailed } from '../../kube/errors.ts';
import type { EventRecorder } from '../../kube/events.ts';
import type { Informer } from '../../kube/informer.ts';
import { type DaemonSet, keyOf, type Node } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { StepError } from '../../runtime/failure.ts';
import { type ObjectKind, type ReconcileRequest, watch } from '../../runtime/object-controller.ts';
import type { AgentPod } from '../agent-reports.ts';
import { importsOf } from './agent-imports.ts';
import { withWorkloadImages } from './images-from.ts';
import { PLATFORM_GROUP_LABEL, planPlatforms } from './platforms.ts';
import { NODE_INDEX, ownerKeyOf, type PullerPod, podsOf } from './pods.ts';
import { daemonSetName } from './render.ts';
import { checkedImages, resolutionsInStatus } from './resolution.ts';
import { selectsNode } from './selection.ts';
import { type NodeProgress, nodeProgress } from './status.ts';
import type { ImagesFromPlans } from './workload-caches.ts';

export const GATE_CONTROLLER_NAME = 'nodegate';

/** What one gating PrePulledImage says of the node. */
export interface GateInput {
  key: string;
  progress: NodeProgress;
  timeoutMs: number;
}

/** What to do with a node that carries the startup taint. */
export type ReleaseDecision =
  | { release: false; recheckInMs: number }
  | { release: true; why: 'ready' | 'ungated' }
  | { release: true; why: 'failed' | 'timeout'; reason: string; message: string };

/**
 * Releases the node when every gating object is ready on it (or none gates
 * it), or at once when one failed there, or once the earliest timeout since
 * the node registered has passed; else says when to look again.
 */
export function decideRelease(gates: GateInput[], registeredAt: number, now: number): ReleaseDecision {
  if (gates.length === 0) return { release: true, why: 'ungated' };
  if (gates.every((g) => g.progress.state === 'ready')) return { release: true, why: 'ready' };
  const failed = gates.find((g) => g.progress.state === 'failed');
  if (failed && failed.progress.state === 'failed') {
    const { reason, message } = failed.progress;
    return { release: true, why: 'failed', reason, message: `${failed.key}: ${message}` };
  }
  const deadline = registeredAt + Math.min(...gates.map((g) => g.timeoutMs));
  if (now >= deadline) {
    const waiting = gates.filter((g) => g.progress.state !== 'ready').map((g) => g.key);
    return {
      release: true,
      why: 'timeout',
      reason: 'Timeout',
      message: `released after waiting ${Math.round((now - registeredAt) / 1000)} s for ${waiting.join(', ')}`,
    };
  }
  return { release: false, recheckInMs: deadline - now };
}

/** Whether the node carries the startup taint. */
export function isGated(node: Node): boolean {
  return node.spec?.taints?.some((t) => t.key === IMAGES_NOT_READY_TAINT) ?? false;
}

/** Nodes by whether they carry the startup taint: only those are reconciled. */
export const GATED_NODE_INDEX = 'prepull-gated';

export interface GateKindDeps {
  client: KubeClient;
  events: EventRecorder;
  informers: {
    nodes: Informer<Node>;
    prePulledImages: Informer<PrePulledImage>;
    pods: Informer<PullerPod>;
    daemonSets: Informer<DaemonSet>;
    /** The node agents' pods: a tarball image is there when the agent's report says so. */
    agentPods: Informer<AgentPod>;
  };
  /** spec.imagesFrom: a node waits for the workloads' images too. */
  imagesFrom?: ImagesFromPlans;
}

/** The node gate, for {@link createObjectController}. */
export function nodeGateKind(deps: GateKindDeps): ObjectKind<Node, unknown, NonNullable<Node['status']>> {
  const { informers, client, events } = deps;
  const gatedNodes = () => informers.nodes.byIndex(GATED_NODE_INDEX, 'true').map(keyOf);
  const gating = (ppi: PrePulledImage) =>
    ppi.spec.nodeReadiness?.taint === true && !ppi.metadata.deletionTimestamp;

  return {
    name: GATE_CONTROLLER_NAME,
    resource: Resources.nodes,
    informer: informers.nodes,
    specSchema: z.unknown(),
    // Only a node the taint holds, or held until now, has anything to reconcile.
    updateMatters: (node, previous) => isGated(node) || isGated(previous),
    transitions: [],
    watches: [
      // A gating object that appears, changes or goes may release any held node.
      watch(informers.prePulledImages, Resources.prePulledImages, (ppi, previous) =>
        gating(ppi) || (previous && gating(previous)) ? gatedNodes() : [],
      ),
      // A puller pod that changes is news for its node, if that is held (the rest pass at once).
      watch(informers.pods, Resources.pods, (pod) => {
        const node = pod.spec.nodeName ? informers.nodes.get(pod.spec.nodeName) : undefined;
        return node && isGated(node) ? [pod.spec.nodeName ?? ''] : [];
      }),
    ],
    reconcile,
  };

  /**
   * The object's own DaemonSet and the architecture DaemonSets (platforms.ts)
   * that control `pods` and that the object controls.
   */
  function ownDaemonSets(ppi: PrePulledImage, pods: PullerPod[]): DaemonSet[] {
    const namespace = ppi.metadata.namespace ?? '';
    const own = informers.daemonSets.get(`${namespace}/${daemonSetName(ppi.metadata.name ?? '')}`);
    const controllers = new Set(
      pods.flatMap((p) => p.metadata.ownerReferences?.filter((o) => o.controller).map((o) => o.name) ?? []),
    );
    const archSets = [...controllers].flatMap((name) => {
      const ds = informers.daemonSets.get(`${namespace}/${name}`);
      const ownedByObject = ds?.metadata.ownerReferences?.some(
        (o) => o.controller && o.uid === ppi.metadata.uid,
      );
      return ds && ds !== own && ownedByObject && ds.metadata.labels?.[PLATFORM_GROUP_LABEL] ? [ds] : [];
    });
    return own ? [own, ...archSets] : archSets;
  }

  async function reconcile({ object: node, now, log }: ReconcileRequest<Node, unknown>) {
    if (!isGated(node)) return {};
    const name = node.metadata.name ?? '';
    const onNode = informers.pods.byIndex(NODE_INDEX, name);
    const gates: GateInput[] = [];
    const gatingObjects: PrePulledImage[] = [];
    for (const ppi of informers.prePulledImages.list()) {
      if (!gating(ppi) || !selectsNode(ppi, node)) continue;
      const key = keyOf(ppi);
      // Its own DaemonSets' pods only, as status counts them: a forged pod releases nothing.
      const candidates = onNode.filter((p) => ownerKeyOf(p) === key);
      const own = ownDaemonSets(ppi, candidates);
      const pods =
        own.length > 0
          ? own.flatMap((ds) => podsOf(ppi, ds, candidates))
          : podsOf(ppi, undefined, candidates);
      // The architectures the images lack, from the registry checks status holds (platforms.ts).
      const arch = node.metadata.labels?.['kubernetes.io/arch'];
      const platforms = planPlatforms(ppi, resolutionsInStatus(ppi, checkedImages(ppi)), arch ? [arch] : []);
      const timeout = ppi.spec.nodeReadiness?.timeout ?? DEFAULT_NODE_READINESS_TIMEOUT;
      const held = withWorkloadImages(ppi, deps.imagesFrom?.planFor(ppi));
      const imports = importsOf(informers.agentPods, ppi.metadata.uid ?? '');
      gates.push({
        key,
        progress: nodeProgress(held, pods, node, imports, platforms),
        timeoutMs: durationMs(timeout) ?? 900_000,
      });
      gatingObjects.push(ppi);
    }
    const registeredAt = Date.parse(node.metadata.creationTimestamp ?? '') || now.getTime();
    const decision = decideRelease(gates, registeredAt, now.getTime());
    if (!decision.release) return { requeueAfterMs: decision.recheckInMs };

    const taints = node.spec?.taints ?? [];
    const unready = decision.why === 'failed' || decision.why === 'timeout' ? decision : undefined;
    try {
      await client.patch(
        Resources.nodes,
        name,
        undefined,
        [
          // Fails if the taints changed since the cache saw them: nobody else's taint is dropped.
          { op: 'test', path: '/spec/taints', value: taints },
          {
            op: 'replace',
            path: '/spec/taints',
            value: taints.filter((t) => t.key !== IMAGES_NOT_READY_TAINT),
          },
          ...(unready
            ? [
                node.metadata.annotations
                  ? {
                      op: 'add',
                      path: `/metadata/annotations/${RELEASED_UNREADY_ANNOTATION.replace('/', '~1')}`,
                      value: unready.reason,
                    }
                  : {
                      op: 'add',
                      path: '/metadata/annotations',
                      value: { [RELEASED_UNREADY_ANNOTATION]: unready.reason },
                    },
              ]
            : []),
        ],
        'json',
        { fieldManager: `prepull/${GATE_CONTROLLER_NAME}` },
      );
    } catch (err) {
      // The taints moved under us: the node's update event brings it back with the new ones.
      if (isPatchTestFailed(err)) return {};
      throw new StepError('removing the startup taint', err);
    }
    if (unready) {
      log.warn({ node: name, reason: unready.reason }, 'released a node before its images were there');
      const note = `node ${name} ${unready.message}; released anyway so workloads can use it`;
      await events.record(node, 'Warning', 'ReleasedUnready', 'Gate', note);
      for (const ppi of gatingObjects) await events.record(ppi, 'Warning', 'ReleasedUnready', 'Gate', note);
    } else {
      log.info({ node: name, why: decision.why }, 'released a node: its images are there');
      const note =
        decision.why === 'ready'
          ? `node ${name} holds every image of ${gates.map((g) => g.key).join(', ')}; startup taint removed`
          : `node ${name}: no PrePulledImage gates it; startup taint removed`;
      await events.record(node, 'Normal', 'ImagesReady', 'Gate', note);
    }
    return {};
  }
}
