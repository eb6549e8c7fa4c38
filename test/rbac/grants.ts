/**
 * Least privilege, measured: the rules of deploy/rbac.yaml's Role and
 * ClusterRole with the comment each carries, the requests one identity made
 * according to the API server's audit log, and the grants no request used.
 * Pure but for reading files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isMap, isSeq, parseAllDocuments } from 'yaml';

export interface Rule {
  /** `ClusterRole prepull-controller` or `Role prepull-system/prepull-leader-election`. */
  role: string;
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** The comment just above the rule: which code path needs it. */
  comment: string | undefined;
}

export interface AuditedUse {
  verb: string;
  apiGroup: string;
  /** `pods`, or `pods/status` for a subresource. */
  resource: string;
  namespace: string | undefined;
}

export interface UnusedGrant {
  role: string;
  apiGroup: string;
  resource: string;
  verb: string;
}

/** Every rule of every Role and ClusterRole in a YAML stream, with its comment. */
export function readRules(yaml: string): Rule[] {
  const rules: Rule[] = [];
  for (const doc of parseAllDocuments(yaml)) {
    const kind = doc.get('kind');
    if (kind !== 'Role' && kind !== 'ClusterRole') continue;
    const namespace = doc.getIn(['metadata', 'namespace']) as string | undefined;
    const name = doc.getIn(['metadata', 'name']) as string;
    const role = `${kind} ${namespace ? `${namespace}/` : ''}${name}`;
    const seq = doc.get('rules', true);
    if (!isSeq(seq)) continue;
    for (const item of seq.items) {
      if (!isMap(item)) continue;
      const rule = item.toJSON() as { apiGroups?: string[]; resources?: string[]; verbs?: string[] };
      const comment = item.commentBefore?.trim();
      rules.push({
        role,
        apiGroups: rule.apiGroups ?? [],
        resources: rule.resources ?? [],
        verbs: rule.verbs ?? [],
        comment: comment ? comment : undefined,
      });
    }
  }
  return rules;
}

/**
 * Requests `username` made that the API server allowed, from the audit log
 * and any rotated files beside it (`audit-<time>.log`).
 */
export function auditedUses(auditLog: string, username: string): AuditedUse[] {
  const dir = dirname(auditLog);
  const stem = basename(auditLog, '.log');
  const files = readdirSync(dir).filter((f) => f.startsWith(stem) && f.endsWith('.log'));
  const uses: AuditedUse[] = [];
  for (const file of files) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line.includes(username)) continue;
      const event = JSON.parse(line) as {
        stage: string;
        verb: string;
        user?: { username?: string };
        objectRef?: { apiGroup?: string; resource?: string; subresource?: string; namespace?: string };
        responseStatus?: { code?: number };
      };
      if (event.stage !== 'ResponseComplete' || event.user?.username !== username) continue;
      const ref = event.objectRef;
      if (!ref?.resource) continue;
      // A refused request shows what the code tried, not what the role needs to grant.
      if (event.responseStatus?.code === 403) continue;
      uses.push({
        verb: event.verb,
        apiGroup: ref.apiGroup ?? '',
        resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource,
        namespace: ref.namespace,
      });
    }
  }
  return uses;
}

/** Each verb on each resource that an uncommented rule grants and no request used. */
export function unusedGrants(rules: Rule[], uses: AuditedUse[]): UnusedGrant[] {
  const used = new Set(uses.map((u) => `${u.apiGroup}|${u.resource}|${u.verb}`));
  const unused: UnusedGrant[] = [];
  for (const rule of rules) {
    if (rule.comment !== undefined) continue;
    for (const apiGroup of rule.apiGroups) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) {
          if (!used.has(`${apiGroup}|${resource}|${verb}`))
            unused.push({ role: rule.role, apiGroup, resource, verb });
        }
      }
    }
  }
  return unused;
}
