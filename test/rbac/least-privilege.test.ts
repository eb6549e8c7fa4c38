/**
 * deploy/rbac.yaml grants only what the operator uses. Every cluster tier runs
 * the operator under deploy/'s ServiceAccount (test/support/operator.ts), so
 * the API server's audit log of the whole suite lists every request it made;
 * a verb on a resource that no request used fails here, unless its rule's
 * comment names the code path that needs it.
 *
 * Only meaningful after every other file: vitest.config.ts's sequencer runs
 * this file last, and scripts/test.sh sets PREPULL_TEST_WHOLE_SUITE=1 when it
 * runs the whole suite (a narrowed run would see only some of the requests).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { auditedUses, readRules, unusedGrants } from './grants.ts';

const cluster = inject('cluster');
const OPERATOR = 'system:serviceaccount:prepull-system:prepull-controller';
const RBAC = join(import.meta.dirname, '..', '..', 'deploy', 'rbac.yaml');

describe.runIf(process.env.PREPULL_TEST_WHOLE_SUITE === '1')(
  "deploy/rbac.yaml against the suite's audit log",
  () => {
    it('grants no verb the operator never used, unless a comment names the code path', () => {
      const uses = auditedUses(cluster.auditLog, OPERATOR);
      // The suite did run the operator under its ServiceAccount.
      expect(uses.some((u) => u.resource === 'prepulledimages/status' && u.verb === 'patch')).toBe(true);
      expect(unusedGrants(readRules(readFileSync(RBAC, 'utf8')), uses)).toEqual([]);
    });
  },
);
