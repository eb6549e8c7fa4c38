/**
 * deploy/grafana's dashboard, read as data: every PromQL query it runs (panel
 * targets and template variables), the metric names each query selects, and
 * the sample names a prom-client registry serves. Pure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';

export const DASHBOARD = join(import.meta.dirname, '..', '..', 'deploy', 'grafana', 'prepull-dashboard.json');

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

interface Dashboard {
  panels: Panel[];
  templating: { list: { query?: string | { query: string } }[] };
}

/** The dashboard's panels (rows' children included) with their queries. */
export function dashboardPanels(path = DASHBOARD): { title: string; queries: string[] }[] {
  const dashboard = JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
  const flat = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  return flat(dashboard.panels)
    .filter((p) => p.type !== 'row')
    .map((p) => ({ title: p.title, queries: (p.targets ?? []).map((t) => t.expr) }));
}

/** Queries of the template variables (`label_values(metric, label)` and the like). */
export function variableQueries(path = DASHBOARD): string[] {
  const dashboard = JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
  return dashboard.templating.list
    .filter((v) => typeof v.query === 'object')
    .map((v) => (v.query as { query: string }).query);
}

/** PromQL functions, aggregations and keywords: every other bare identifier in a query is a metric. */
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'topk',
  'bottomk',
  'quantile',
  'stddev',
  'group',
  'rate',
  'irate',
  'increase',
  'delta',
  'deriv',
  'histogram_quantile',
  'label_values',
  'clamp_min',
  'clamp_max',
  'abs',
  'sort',
  'sort_desc',
  'vector',
  'scalar',
  'time',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
]);

/**
 * The metric names a query selects: what is left once label matchers (`{…}`),
 * grouping labels (`by (…)`), ranges (`[5m]`), strings and numbers are taken out.
 * A `label_values(metric, label)` variable names its metric first.
 */
export function metricNames(query: string): string[] {
  const bare = query
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '$1')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)/g, '$1');
  const identifiers = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return [...new Set(identifiers.filter((id) => !PROMQL_WORDS.has(id)))];
}

/** Every sample name `registry` serves: a histogram's `_bucket`, `_sum` and `_count` included. */
export async function servedSampleNames(registry: Registry): Promise<Set<string>> {
  const served = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const type = String(metric.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) served.add(metric.name + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) served.add(metric.name + s);
    else served.add(metric.name);
  }
  return served;
}
