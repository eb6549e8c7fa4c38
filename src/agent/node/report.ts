/**
 * The node agent's report protocol, owned here and nowhere else: how the agent
 * pods are labelled, and how each agent module publishes its JSON report as an
 * annotation on the agent's own pod (`prepull.dev/report.<module>`). The agent
 * writes it (reporter.ts); controllers read it (src/controllers/agent-reports.ts).
 * Pure.
 */
import type { z } from 'zod';
import { NAME_LABEL } from '../../controllers/labels.ts';
import { shortenMessage } from '../../runtime/conditions.ts';

/** `app.kubernetes.io/name` of the agent pods (shared with the controller's). */
export const AGENT_NAME = 'prepull';
/** `app.kubernetes.io/component` of the agent DaemonSet and its pods. */
export const AGENT_COMPONENT = 'agent';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
/** Label selector of the agent pods, in Prepull's namespace. */
export const AGENT_POD_SELECTOR = `${NAME_LABEL}=${AGENT_NAME},${COMPONENT_LABEL}=${AGENT_COMPONENT}`;

const REPORT_PREFIX = 'prepull.dev/report.';
/** A module name is the name part of an annotation key after `report.`: a DNS label, short. */
const MODULE_NAME = /^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/;
/**
 * One module's report must stay small: every agent pod is cached by the
 * controller, at 1000 nodes, and all annotations of a pod share 256 KiB.
 */
export const MAX_REPORT_BYTES = 32 * 1024;

/** Throws for a module name that cannot be part of an annotation key. */
export function checkModuleName(name: string): void {
  if (!MODULE_NAME.test(name)) {
    throw new Error(
      `agent module name ${JSON.stringify(name)} must be a lowercase DNS label of 1-40 characters`,
    );
  }
}

/** The annotation holding `module`'s report on the agent's own pod. */
export function reportAnnotation(module: string): string {
  checkModuleName(module);
  return `${REPORT_PREFIX}${module}`;
}

/** The annotation value for a report: compact JSON. Throws when it is larger than {@link MAX_REPORT_BYTES}. */
export function encodeReport(module: string, value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error(`agent module ${module}: a report must be JSON`);
  if (Buffer.byteLength(text) > MAX_REPORT_BYTES) {
    throw new Error(
      `agent module ${module}: report of ${Buffer.byteLength(text)} bytes exceeds ${MAX_REPORT_BYTES}`,
    );
  }
  return text;
}

/** What reading a module's report from an agent pod gave. */
export type ReadReport<T> =
  | { state: 'absent' }
  | { state: 'invalid'; message: string }
  | { state: 'present'; report: T };

/** Reads and validates `module`'s report from an agent pod's annotations. */
export function readReport<T>(
  pod: { metadata: { annotations?: Record<string, string> } },
  module: string,
  schema: z.ZodType<T>,
): ReadReport<T> {
  const text = pod.metadata.annotations?.[reportAnnotation(module)];
  if (text === undefined) return { state: 'absent' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { state: 'invalid', message: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { state: 'invalid', message: parsed.error.message };
  return { state: 'present', report: parsed.data };
}

/** Most bytes of a report the agent publishes: the protocol's cap, less room to spare. */
const REPORT_BUDGET = MAX_REPORT_BYTES - 1024;
/** What an entry's message is shortened to when a report is over budget. */
const SHORT_MESSAGE = 160;

/**
 * A report whose `key` lists one entry per object, within the annotation's
 * budget: the entries' messages shortened first, then entries left out from
 * the end (their objects then show the node as pending, never wrong).
 */
export function fitReportEntries<
  K extends string,
  E extends { message?: string | undefined },
  R extends Record<K, E[]>,
>(report: R, key: K): R {
  const size = (r: R) => Buffer.byteLength(JSON.stringify(r));
  if (size(report) <= REPORT_BUDGET) return report;
  const entries = report[key].map((e) =>
    e.message === undefined ? e : { ...e, message: shortenMessage(e.message, SHORT_MESSAGE) },
  );
  const short = { ...report, [key]: entries };
  while (entries.length > 0 && size(short) > REPORT_BUDGET) entries.pop();
  return short;
}
