/**
 * Requests as the API server saw them, from its audit log: the count a test
 * trusts when it asks "how many requests did the operator make?", since the
 * operator's own counters could be wrong in the same way as the operator.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Namespace } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';

export interface AuditedRequest {
  verb: string;
  uri: string;
  userAgent: string;
  code: number | undefined;
  at: number;
}

/**
 * The audit log's files from `sinceMs` on, oldest first: the API server
 * rotates `audit.log` at its size limit (`audit-<time>.log` beside it), and a
 * rotated file last written before `sinceMs` holds nothing after it.
 */
function auditFiles(auditLog: string, sinceMs: number): string[] {
  const dir = dirname(auditLog);
  const name = basename(auditLog, '.log');
  const rotated = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.log'))
    .sort()
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= sinceMs);
  return [...rotated, auditLog];
}

/** Completed requests whose user agent starts with `userAgent`, at or after `sinceMs`. */
export function auditedRequests(auditLog: string, userAgent: string, sinceMs = 0): AuditedRequest[] {
  const out: AuditedRequest[] = [];
  const lines = auditFiles(auditLog, sinceMs).flatMap((f) => readFileSync(f, 'utf8').split('\n'));
  for (const line of lines) {
    if (!line.includes(userAgent)) continue;
    const event = JSON.parse(line) as {
      stage: string;
      verb: string;
      requestURI: string;
      userAgent?: string;
      responseStatus?: { code?: number };
      requestReceivedTimestamp: string;
    };
    if (event.stage !== 'ResponseComplete' || !event.userAgent?.startsWith(userAgent)) continue;
    const at = Date.parse(event.requestReceivedTimestamp);
    if (at < sinceMs) continue;
    out.push({
      verb: event.verb,
      uri: event.requestURI,
      userAgent: event.userAgent,
      code: event.responseStatus?.code,
      at,
    });
  }
  return out;
}

/**
 * Whether a request is about a namespace that is being deleted, or is gone,
 * by `live` (the namespaces that exist and are not terminating, read after
 * the window). Within a lane, an earlier file's namespaces may still be
 * going away while the next file runs, and that file's operator sees their
 * objects go. A cluster-scoped request is never about one.
 */
export function inNamespaceGoing(request: AuditedRequest, live: ReadonlySet<string>): boolean {
  const named = /\/namespaces\/([^/?]+)\//.exec(request.uri)?.[1];
  return named !== undefined && !live.has(named);
}

/** The namespaces that exist and are not being deleted. */
export async function liveNamespaces(client: KubeClient): Promise<Set<string>> {
  const list = await client.list<Namespace>(Resources.namespaces);
  return new Set(
    list.items.filter((ns) => !ns.metadata.deletionTimestamp).map((ns) => ns.metadata.name ?? ''),
  );
}
