/**
 * What the in-cluster tier reads back from the harness cluster: the
 * operator's pods, their logs and Lease, puller pods, and the API server's
 * audit log of the operator's ServiceAccount. Reads only.
 */
import { readFileSync } from 'node:fs';
import { PULLER_NAME } from '../../src/controllers/prepulledimage/labels.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import type { ClusterInfo } from '../harness/types.ts';
import { kubectl } from '../support/kubectl.ts';
import { watchObjects, whenWatched } from '../support/watch.ts';
import { NAMESPACE } from './install.ts';

export const OPERATOR_USER = 'system:serviceaccount:prepull-system:prepull-controller';
const CONTROLLER_SELECTOR = 'app.kubernetes.io/name=prepull,app.kubernetes.io/component=controller';

export interface PodSummary {
  name: string;
  phase: string;
  nodeName?: string;
  deleting: boolean;
  serviceAccountName?: string;
  ready: boolean;
  gated: boolean;
  restarts: number;
  containerId?: string;
  image?: string;
  imageID?: string;
  labels: Record<string, string>;
  spec: Record<string, unknown>;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    schedulingGates?: { name: string }[];
    [field: string]: unknown;
  };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { containerID?: string; image?: string; imageID?: string; restartCount?: number }[];
  };
}

function getJson<T>(cluster: ClusterInfo, args: string[]): T {
  const got = kubectl(cluster, [...args, '-o', 'json']);
  if (got.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${got.stderr}`);
  return JSON.parse(got.stdout) as T;
}

/** Pods of `namespace` matching `selector`, summarised. */
export function pods(cluster: ClusterInfo, namespace: string, selector: string): PodSummary[] {
  const list = getJson<{ items: PodJson[] }>(cluster, ['get', 'pods', '-n', namespace, '-l', selector]);
  return list.items.map((pod) => {
    const container = pod.status?.containerStatuses?.[0];
    return {
      name: pod.metadata.name,
      phase: pod.status?.phase ?? 'Unknown',
      ...(pod.spec.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      deleting: pod.metadata.deletionTimestamp !== undefined,
      ...(pod.spec.serviceAccountName ? { serviceAccountName: pod.spec.serviceAccountName } : {}),
      ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      gated: (pod.spec.schedulingGates ?? []).length > 0,
      restarts: container?.restartCount ?? 0,
      ...(container?.containerID
        ? { containerId: container.containerID.replace(/^containerd:\/\//, '') }
        : {}),
      ...(container?.image ? { image: container.image } : {}),
      ...(container?.imageID ? { imageID: container.imageID } : {}),
      labels: pod.metadata.labels ?? {},
      spec: pod.spec,
    };
  });
}

/** The operator's own pods (the Deployment's). */
export function operatorPods(cluster: ClusterInfo): PodSummary[] {
  return pods(cluster, NAMESPACE, CONTROLLER_SELECTOR);
}

/** Who holds the operator's leader Lease now. */
export function leaseHolder(cluster: ClusterInfo): string | undefined {
  const got = kubectl(cluster, [
    'get',
    'lease',
    'prepull-operator',
    '-n',
    NAMESPACE,
    '-o',
    'jsonpath={.spec.holderIdentity}',
  ]);
  return got.status === 0 && got.stdout !== '' ? got.stdout : undefined;
}

/** The log lines of a pod's current container (JSON lines, as the operator writes them in a pod). */
export function podLog(cluster: ClusterInfo, namespace: string, pod: string): string[] {
  const got = kubectl(cluster, ['logs', '-n', namespace, pod]);
  if (got.status !== 0) throw new Error(`kubectl logs ${pod}: ${got.stderr}`);
  return got.stdout.split('\n').filter(Boolean);
}

/** A PrePulledImage's status as `kubectl get -o json` shows it. */
export function ppiStatus(
  cluster: ClusterInfo,
  namespace: string,
  name: string,
): {
  uid: string;
  ready?: string;
  desiredNodes?: number;
  readyNodes?: number;
  conditions: { type: string; status: string; reason?: string }[];
} {
  const ppi = getJson<{
    metadata: { uid: string };
    status?: {
      ready?: string;
      desiredNodes?: number;
      readyNodes?: number;
      conditions?: { type: string; status: string; reason?: string }[];
    };
  }>(cluster, ['get', 'ppi', name, '-n', namespace]);
  return { uid: ppi.metadata.uid, ...ppi.status, conditions: ppi.status?.conditions ?? [] };
}

/** Whether a condition of that type is True. */
export function isTrue(conditions: { type: string; status: string }[], type: string): boolean {
  return conditions.some((c) => c.type === type && c.status === 'True');
}

/** Source addresses of the API requests the operator's ServiceAccount made since `sinceMs`, with their counts. */
export function operatorSourceAddresses(auditLog: string, sinceMs: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(auditLog, 'utf8').split('\n')) {
    if (!line.includes(OPERATOR_USER)) continue;
    const event = JSON.parse(line) as {
      stage: string;
      user?: { username?: string };
      sourceIPs?: string[];
      requestReceivedTimestamp: string;
    };
    if (event.stage !== 'ResponseComplete' || event.user?.username !== OPERATOR_USER) continue;
    if (Date.parse(event.requestReceivedTimestamp) < sinceMs) continue;
    const address = event.sourceIPs?.[0] ?? 'unknown';
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  return counts;
}

/** How far a rollout has come: puller pods that are Ready with no gate left, and pods still gated. */
export interface RolloutMoment {
  ready: number;
  gated: number;
}

/**
 * A watch of the puller pods whose names start with `prefix` (one DaemonSet's),
 * for a moment of a rollout too short to catch by polling: `first` resolves at
 * the first watch event after which the pods show it.
 */
export function watchPullerPods(client: KubeClient, namespace: string, prefix: string) {
  const informer = watchObjects<Pod>(client, 'rollout-pods', {
    type: Resources.pods,
    namespace,
    labelSelector: `app.kubernetes.io/name=${PULLER_NAME}`,
  });
  const now = (): RolloutMoment => {
    const mine = informer
      .list()
      .filter((p) => p.metadata.name?.startsWith(prefix) && !p.metadata.deletionTimestamp);
    const gated = (p: Pod) => (p.spec?.schedulingGates ?? []).length > 0;
    const ready = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    return { ready: mine.filter((p) => !gated(p) && ready(p)).length, gated: mine.filter(gated).length };
  };
  return {
    async start(): Promise<void> {
      informer.start();
      await informer.waitForSync();
    },
    stop: (): Promise<void> => informer.stop(),
    first(wanted: (moment: RolloutMoment) => boolean, timeoutMs: number): Promise<RolloutMoment> {
      const moment = () => {
        const at = now();
        return wanted(at) ? at : undefined;
      };
      return whenWatched(informer, moment, timeoutMs, 'the moment').catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; the last: ${JSON.stringify(now())}`);
      });
    },
  };
}
