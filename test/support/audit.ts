/**
 * Requests as the API server saw them, from its audit log: the count a test
 * trusts when it asks "how many requests did the operator make?", since the
 * operator's own counters could be wrong in the same way as the operator.
 */
import { readFileSync } from 'node:fs';

export interface AuditedRequest {
  verb: string;
  uri: string;
  userAgent: string;
  code: number | undefined;
  at: number;
}

/** Completed requests whose user agent starts with `userAgent`, at or after `sinceMs`. */
export function auditedRequests(auditLog: string, userAgent: string, sinceMs = 0): AuditedRequest[] {
  const out: AuditedRequest[] = [];
  for (const line of readFileSync(auditLog, 'utf8').split('\n')) {
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
