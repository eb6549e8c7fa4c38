/** The least-privilege arithmetic of grants.ts on small made-up roles and audit logs. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditedUses, readRules, unusedGrants } from './grants.ts';

const ROLE = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: op
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [list, watch, delete]
  # create: server-side apply of a new object is authorised as create too.
  - apiGroups: [apps]
    resources: [daemonsets]
    verbs: [create]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: op
`;

const SA = 'system:serviceaccount:ns:op';

function event(
  username: string,
  verb: string,
  resource: string,
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    stage: 'ResponseComplete',
    verb,
    user: { username },
    objectRef: { resource, apiGroup: '', ...extra },
    responseStatus: { code: 200 },
  });
}

describe('unusedGrants', () => {
  it('reads each rule with the comment above it', () => {
    const rules = readRules(ROLE);
    expect(rules).toHaveLength(2);
    expect(rules[0]).toMatchObject({
      role: 'ClusterRole op',
      comment: undefined,
      verbs: ['list', 'watch', 'delete'],
    });
    expect(rules[1]?.comment).toBe('create: server-side apply of a new object is authorised as create too.');
  });

  it("names each verb an uncommented rule grants that the identity's requests never used", () => {
    const dir = mkdtempSync(join(tmpdir(), 'grants-'));
    const log = join(dir, 'audit.log');
    writeFileSync(
      log,
      [
        event(SA, 'list', 'pods'),
        event(SA, 'watch', 'pods'),
        // Another identity's delete, a refused delete and an earlier stage do not count.
        event('admin', 'delete', 'pods'),
        JSON.stringify({ ...JSON.parse(event(SA, 'delete', 'pods')), responseStatus: { code: 403 } }),
        JSON.stringify({ ...JSON.parse(event(SA, 'delete', 'pods')), stage: 'ResponseStarted' }),
      ].join('\n'),
    );
    // A rotated file beside it counts too.
    writeFileSync(
      join(dir, 'audit-2026-12-01T00-00-00.000.log'),
      event(SA, 'get', 'pods', { subresource: 'log' }),
    );
    const uses = auditedUses(log, SA);
    expect(uses.map((u) => `${u.verb} ${u.resource}`).sort()).toEqual([
      'get pods/log',
      'list pods',
      'watch pods',
    ]);
    expect(unusedGrants(readRules(ROLE), uses)).toEqual([
      { role: 'ClusterRole op', apiGroup: '', resource: 'pods', verb: 'delete' },
    ]);
  });
});
