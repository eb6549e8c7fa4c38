/**
 * The controllers' side of the node agent's reports: the agent pods in
 * Prepull's namespace, kept slim and indexed by node, and each module's report
 * read from the agent pod on a node with a zod schema (the protocol is
 * src/agent/node/report.ts). Pure, over an informer's cache.
 */
import type { z } from 'zod';
import { AGENT_POD_SELECTOR, type ReadReport, readReport } from '../agent/node/report.ts';
import type { Selection } from '../kube/informer.ts';
import type { KubeObject } from '../kube/objects.ts';
import { Resources } from '../kube/resources.ts';
import { slimMeta } from '../kube/slim.ts';

/** An agent pod as {@link slimAgentPod} keeps it: metadata (the reports), its node and phase. */
export interface AgentPod extends KubeObject {
  spec: { nodeName?: string };
  status?: { phase?: string };
}

/** The informer selection of the agent pods, in Prepull's namespace. */
export function agentPodSelection(namespace: string): Selection {
  return { type: Resources.pods, namespace, labelSelector: AGENT_POD_SELECTOR };
}

/** The informer's transform. */
export function slimAgentPod(pod: AgentPod): AgentPod {
  const slim: AgentPod = { metadata: slimMeta(pod.metadata), spec: {} };
  if (pod.spec?.nodeName) slim.spec.nodeName = pod.spec.nodeName;
  if (pod.status?.phase) slim.status = { phase: pod.status.phase };
  if (pod.apiVersion) slim.apiVersion = pod.apiVersion;
  if (pod.kind) slim.kind = pod.kind;
  return slim;
}

/** Index of agent pods by node. */
export const AGENT_NODE_INDEX = 'agent-node';

/** Adds {@link AGENT_NODE_INDEX}; call once. */
export function addAgentPodIndexes(pods: {
  addIndex(name: string, fn: (pod: AgentPod) => string[]): void;
}): void {
  pods.addIndex(AGENT_NODE_INDEX, (pod) => (pod.spec.nodeName ? [pod.spec.nodeName] : []));
}

/**
 * The agent pod that speaks for `node`: the newest one not being deleted
 * (during a rollout the old and the new pod may both exist for a moment).
 */
export function agentPodOnNode(
  pods: { byIndex(name: string, value: string): AgentPod[] },
  node: string,
): AgentPod | undefined {
  let best: AgentPod | undefined;
  for (const pod of pods.byIndex(AGENT_NODE_INDEX, node)) {
    if (pod.metadata.deletionTimestamp) continue;
    if (!best || createdAt(pod) > createdAt(best)) best = pod;
  }
  return best;
}

/** `module`'s report from the agent on `node`; `absent` when there is no agent pod or no report yet. */
export function agentReport<T>(
  pods: { byIndex(name: string, value: string): AgentPod[] },
  node: string,
  module: string,
  schema: z.ZodType<T>,
): ReadReport<T> {
  const pod = agentPodOnNode(pods, node);
  return pod ? readReport(pod, module, schema) : { state: 'absent' };
}

/** Whether `module`'s report differs between two versions of an agent pod (for a watch's filter). */
export function reportChanged(previous: AgentPod | undefined, pod: AgentPod, annotation: string): boolean {
  return previous?.metadata.annotations?.[annotation] !== pod.metadata.annotations?.[annotation];
}

function createdAt(pod: AgentPod): number {
  const time = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(time) ? 0 : time;
}
