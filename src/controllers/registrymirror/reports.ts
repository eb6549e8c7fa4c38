/**
 * The RegistryMirror controller's view of the node agents' mirrors reports:
 * the report of the agent pod on a node, parsed with the report schema, and
 * a callback whenever an agent pod's mirrors report changes (or the pod comes
 * or goes). Over the operator's agent-pod informer; no requests.
 */

import { reportAnnotation } from '../../agent/node/report.ts';
import {
  MIRRORS_AGENT_MODULE,
  type MirrorNodeReport,
  mirrorNodeReportSchema,
} from '../../api/registrymirror.ts';
import type { Informer } from '../../kube/informer.ts';
import { keyOf } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { type AgentPod, agentReport, reportChanged } from '../agent-reports.ts';
import type { MirrorReportSource } from './controller.ts';

/** The mirrors reports of the agent pods in `agentPods`. */
export function agentMirrorReports(agentPods: Informer<AgentPod>): MirrorReportSource {
  const annotation = reportAnnotation(MIRRORS_AGENT_MODULE);
  return {
    resource: Resources.pods,
    reportFor(node: string): MirrorNodeReport | undefined {
      const read = agentReport(agentPods, node, MIRRORS_AGENT_MODULE, mirrorNodeReportSchema);
      // An unreadable report counts as none: the node shows as pending, never as applied.
      return read.state === 'present' ? read.report : undefined;
    },
    subscribe(onChange) {
      agentPods.addHandler({
        add: (pod) => onChange(keyOf(pod), false),
        update: (previous, pod) => {
          if (
            reportChanged(previous, pod, annotation) ||
            previous.metadata.deletionTimestamp !== pod.metadata.deletionTimestamp
          ) {
            onChange(keyOf(pod), false);
          }
        },
        delete: (pod) => onChange(keyOf(pod), true),
      });
    },
  };
}
