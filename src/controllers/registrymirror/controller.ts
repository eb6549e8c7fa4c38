/**
 * The RegistryMirror kind: the node agents write the files (src/agent/mirrors);
 * this controller only reads what they report and says it in status, for
 * every node the object selects, new nodes included. It writes nothing but
 * status, so a pass over reports that did not change makes no request. The
 * runtime's object controller runs it, writes its status and records its
 * Events. Deleting the object needs no finalizer: each agent removes its
 * node's files when the object leaves its cache (and again at start-up, from
 * its state on the node).
 */
import type {
  MirrorNodeReport,
  RegistryMirror,
  RegistryMirrorSpec,
  RegistryMirrorStatus,
} from '../../api/registrymirror.ts';
import { registryMirrorSpecSchema } from '../../api/registrymirror.ts';
import type { Informer } from '../../kube/informer.ts';
import { keyOf, type Node } from '../../kube/objects.ts';
import { Resources, type ResourceType } from '../../kube/resources.ts';
import {
  type ObjectKind,
  type ReconcileOutcome,
  type ReconcileRequest,
  type Watch,
  watch,
} from '../../runtime/object-controller.ts';
import { matchesLabelSelector } from '../requests.ts';
import { mirrorStatus, nodeOutcome, REGISTRY_MIRROR_TRANSITIONS, stalledStatus } from './status.ts';

export const CONTROLLER_NAME = 'registrymirror';

/** Where the agents' mirrors reports come from (the agent pods, by node). */
export interface MirrorReportSource {
  /** The watched type, for the consistency store. */
  resource: ResourceType;
  /** The mirrors report of the agent on `node`, parsed; undefined when there is none (yet). */
  reportFor(node: string): MirrorNodeReport | undefined;
  /** Calls back on every change of an agent's report, with the changed object's key. */
  subscribe(onChange: (key: string, deleted: boolean) => void): void;
}

export interface RegistryMirrorKindDeps {
  registryMirrors: Informer<RegistryMirror>;
  nodes: Informer<Node>;
  reports: MirrorReportSource;
}

type Request = ReconcileRequest<RegistryMirror, RegistryMirrorSpec>;

/** Whether a change of a node can change which objects select it. */
function labelsChanged(node: Node, previous: Node | undefined): boolean {
  if (!previous) return true;
  return JSON.stringify(node.metadata.labels ?? {}) !== JSON.stringify(previous.metadata.labels ?? {});
}

/** The RegistryMirror kind, for {@link createObjectController}. */
export function registryMirrorKind(
  deps: RegistryMirrorKindDeps,
): ObjectKind<RegistryMirror, RegistryMirrorSpec, RegistryMirrorStatus> {
  const { registryMirrors, nodes, reports } = deps;
  // Objects are few (one per upstream host): a node or report change revisits them all.
  const everyMirror = () => registryMirrors.list().map(keyOf);
  const reportWatch: Watch = {
    resource: reports.resource,
    subscribe: (onChange) => reports.subscribe((key, deleted) => onChange(key, everyMirror(), deleted)),
  };

  return {
    name: CONTROLLER_NAME,
    resource: Resources.registryMirrors,
    informer: registryMirrors,
    specSchema: registryMirrorSpecSchema,
    watches: [
      watch(nodes, Resources.nodes, (node, previous) => (labelsChanged(node, previous) ? everyMirror() : [])),
      reportWatch,
    ],
    transitions: REGISTRY_MIRROR_TRANSITIONS,
    stalledStatus,
    reconcile,
  };

  async function reconcile({ object, spec, now }: Request): Promise<ReconcileOutcome<RegistryMirrorStatus>> {
    const rm: RegistryMirror = { ...object, spec };
    const selector = spec.nodeSelector ?? {};
    const outcomes = nodes
      .list()
      .filter((node) => matchesLabelSelector(selector, node.metadata.labels))
      .map((node) => {
        const name = node.metadata.name ?? '';
        return nodeOutcome(rm, name, reports.reportFor(name));
      });
    return { status: mirrorStatus(rm, outcomes, now) };
  }
}
