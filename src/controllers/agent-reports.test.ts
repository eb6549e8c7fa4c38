import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AGENT_NODE_INDEX,
  type AgentPod,
  agentPodOnNode,
  agentReport,
  slimAgentPod,
} from './agent-reports.ts';

const schema = z.object({ ok: z.boolean() });

function pod(
  name: string,
  node: string,
  created: string,
  annotations: Record<string, string> = {},
  deleting = false,
): AgentPod {
  return {
    metadata: {
      name,
      namespace: 'prepull-system',
      creationTimestamp: created,
      annotations,
      ...(deleting ? { deletionTimestamp: created } : {}),
    },
    spec: { nodeName: node },
  };
}

/** The index as the informer keeps it. */
function indexOf(pods: AgentPod[]) {
  return {
    byIndex: (name: string, value: string) =>
      name === AGENT_NODE_INDEX ? pods.filter((p) => p.spec.nodeName === value) : [],
  };
}

describe('agent reports, read by the controllers', () => {
  it("come from the node's newest agent pod that is not being deleted", () => {
    const old = pod('a-old', 'n1', '2026-12-01T00:00:00Z', { 'prepull.dev/report.import': '{"ok":false}' });
    const fresh = pod('a-new', 'n1', '2026-12-01T00:01:00Z', { 'prepull.dev/report.import': '{"ok":true}' });
    const leaving = pod('a-gone', 'n1', '2026-12-01T00:02:00Z', {}, true);
    const pods = indexOf([old, fresh, leaving, pod('b', 'n2', '2026-12-01T00:00:00Z')]);
    expect(agentPodOnNode(pods, 'n1')?.metadata.name).toBe('a-new');
    expect(agentReport(pods, 'n1', 'import', schema)).toEqual({ state: 'present', report: { ok: true } });
    expect(agentReport(pods, 'n2', 'import', schema)).toEqual({ state: 'absent' });
    expect(agentReport(pods, 'n3', 'import', schema)).toEqual({ state: 'absent' });
  });

  it('keep only metadata, node and phase of a pod', () => {
    const full = {
      ...pod('a', 'n1', '2026-12-01T00:00:00Z'),
      spec: { nodeName: 'n1', containers: [{ name: 'agent' }] },
      status: { phase: 'Running', podIP: '10.0.0.1' },
    } as unknown as AgentPod;
    expect(slimAgentPod(full)).toEqual({
      metadata: full.metadata,
      spec: { nodeName: 'n1' },
      status: { phase: 'Running' },
    });
  });
});
