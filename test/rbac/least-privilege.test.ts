/**
 * deploy/rbac.yaml grants only what the operator uses, and deploy/agent.yaml's
 * roles only what the node agent uses. Every cluster tier runs
 * the operator under deploy/'s ServiceAccount (test/support/operator.ts), so
 * the API server's audit log of the whole suite lists every request it made;
 * a verb on a resource that no request used fails here, unless its rule's
 * comment names the code path that needs it.
 *
 * Only meaningful after every other file: vitest.config.ts's sequencer runs
 * this file last, and scripts/test.sh sets PREPULL_TEST_WHOLE_SUITE=1 when it
 * runs the whole suite (a narrowed run would see only some of the requests).
 * The whole suite runs in two lanes on two clusters (vitest.config.ts), this
 * file last in the kwok lane: scripts/test.sh names the other lane's audit log
 * in PREPULL_TEST_OTHER_AUDIT_LOG and writes PREPULL_TEST_OTHER_LANE_DONE once
 * that lane's files have all run, which this file waits for.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/eventually.ts';
import { auditedUses, readRules, unusedGrants } from './grants.ts';

const cluster = inject('cluster');
const OPERATOR = 'system:serviceaccount:prepull-system:prepull-controller';
const AGENT = 'system:serviceaccount:prepull-system:prepull-agent';
const RBAC = join(import.meta.dirname, '..', '..', 'deploy', 'rbac.yaml');
/** The node agent's ServiceAccount, Role and ClusterRole. */
const AGENT_RBAC = join(import.meta.dirname, '..', '..', 'deploy', 'agent.yaml');

// Skipped in a narrowed run (`npm test -- FILE`), which sees only some of the operator's requests, so every
// grant would look unused; `npm test` and CI run the whole suite and set PREPULL_TEST_WHOLE_SUITE=1.
describe.runIf(process.env.PREPULL_TEST_WHOLE_SUITE === '1')(
  "deploy/rbac.yaml against the suite's audit log",
  () => {
    it('grants no verb the operator never used, unless a comment names the code path', async () => {
      const otherLog = process.env.PREPULL_TEST_OTHER_AUDIT_LOG;
      const otherDone = process.env.PREPULL_TEST_OTHER_LANE_DONE;
      if (otherDone) await eventually(() => expect(existsSync(otherDone)).toBe(true), 1_800_000, 1_000);
      const uses = [
        ...auditedUses(cluster.auditLog, OPERATOR),
        ...(otherLog ? auditedUses(otherLog, OPERATOR) : []),
      ];
      // Both lanes ran the operator.
      if (otherLog) expect(auditedUses(otherLog, OPERATOR).length).toBeGreaterThan(0);
      // The suite did run the operator under its ServiceAccount.
      expect(uses.some((u) => u.resource === 'prepulledimages/status' && u.verb === 'patch')).toBe(true);
      expect(unusedGrants(readRules(readFileSync(RBAC, 'utf8')), uses)).toEqual([]);
    }, 1_900_000);

    it('grants the node agent no verb it never used, unless a comment names the code path', () => {
      // The node lane runs the agent (deploy/agent.yaml, under its own ServiceAccount); the kwok lane does not.
      const otherLog = process.env.PREPULL_TEST_OTHER_AUDIT_LOG;
      const uses = [
        ...auditedUses(cluster.auditLog, AGENT),
        ...(otherLog ? auditedUses(otherLog, AGENT) : []),
      ];
      // Its reports: the suite did run the agent.
      expect(uses.some((u) => u.resource === 'pods' && u.verb === 'patch')).toBe(true);
      expect(unusedGrants(readRules(readFileSync(AGENT_RBAC, 'utf8')), uses)).toEqual([]);
    });
  },
);
