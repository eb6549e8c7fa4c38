/**
 * What the node agents report of a PrePulledImage's tarball imports, read
 * from the agent pods' import reports (src/agent/node/imports/report.ts), per
 * node. Status folds it into each node's image states. Pure, over the agent
 * pods' cache.
 */
import {
  IMPORT_MODULE,
  type ImportEntryReport,
  importReportSchema,
} from '../../agent/node/imports/report.ts';
import { reportAnnotation } from '../../agent/node/report.ts';
import { type AgentPod, agentPodOnNode, agentReport } from '../agent-reports.ts';

/** The agent's word on one node, for one PrePulledImage. */
export interface NodeImports {
  /** Whether an agent pod runs on the node at all. */
  agent: boolean;
  /** Its report's entries for this object (by UID). */
  entries: ImportEntryReport[];
}

/** Reads the imports of the object with `uid` on a node. */
export type ImportsOnNode = (node: string) => NodeImports;

type AgentPods = { byIndex(name: string, value: string): AgentPod[] };

/** {@link ImportsOnNode} for the object with `uid`, from the agent pods' cache. */
export function importsOf(agentPods: AgentPods, uid: string): ImportsOnNode {
  return (node) => {
    if (!agentPodOnNode(agentPods, node)) return { agent: false, entries: [] };
    const read = agentReport(agentPods, node, IMPORT_MODULE, importReportSchema);
    const entries = read.state === 'present' ? read.report.imports.filter((e) => e.uid === uid) : [];
    return { agent: true, entries };
  };
}

/** The import report annotation, for a watch that reacts when it changes. */
export const IMPORT_REPORT_ANNOTATION = reportAnnotation(IMPORT_MODULE);

/** UIDs of the objects an agent pod's import report speaks of. */
export function reportedUids(pod: AgentPod | undefined): string[] {
  const text = pod?.metadata.annotations?.[IMPORT_REPORT_ANNOTATION];
  if (text === undefined) return [];
  try {
    const parsed = importReportSchema.safeParse(JSON.parse(text));
    return parsed.success ? [...new Set(parsed.data.imports.map((e) => e.uid))] : [];
  } catch {
    return [];
  }
}
