/**
 * Every metric deploy/grafana's dashboard queries is one the operator serves:
 * the names come from the registry the operator builds (its counters and
 * histograms, Node's default metrics and the status metrics), not from source
 * text. The panels the issue lists are all there.
 */
import { describe, expect, it } from 'vitest';
import { createOperatorMetrics } from '../../src/operator/metrics.ts';
import { registerStatusMetrics } from '../../src/operator/status-metrics.ts';
import { dashboardPanels, metricNames, servedSampleNames, variableQueries } from './dashboard.ts';

async function operatorRegistry() {
  const metrics = createOperatorMetrics();
  registerStatusMetrics(metrics.registry, {
    prePulledImages: { list: () => [] },
    registryCredentials: { list: () => [] },
  });
  return servedSampleNames(metrics.registry);
}

describe('deploy/grafana/prepull-dashboard.json', () => {
  it('queries only metrics the operator serves, and every panel queries one', async () => {
    const served = await operatorRegistry();
    const panels = dashboardPanels();
    for (const panel of panels) {
      const named = panel.queries.flatMap(metricNames);
      expect(named.length, `${panel.title} queries no metric`).toBeGreaterThan(0);
      expect(
        named.filter((m) => !served.has(m)),
        `${panel.title} queries metrics the operator does not serve`,
      ).toEqual([]);
    }
    for (const query of variableQueries()) {
      expect(
        metricNames(query).filter((m) => !served.has(m)),
        query,
      ).toEqual([]);
    }
  });

  it('has the panels an operator of Prepull looks for', () => {
    const titles = dashboardPanels().map((p) => p.title);
    for (const title of [
      'Objects by state',
      'Nodes ready per PrePulledImage',
      'Failing node images by reason',
      'Reconciles per second by result',
      'Reconcile errors per second',
      'Work queue depth',
      'API requests per second by verb and code',
      'Memory',
    ]) {
      expect(titles).toContain(title);
    }
  });

  it('finds the metric names in PromQL, and misses none a typo would leave unserved', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, controller) (rate(prepull_reconcile_duration_seconds_bucket{job=~"$job"}[5m])))',
      ),
    ).toEqual(['prepull_reconcile_duration_seconds_bucket']);
    expect(metricNames('max by (namespace, name) (a_b{state="ready"}) / max by (name) (c)')).toEqual([
      'a_b',
      'c',
    ]);
    expect(metricNames('label_values(prepull_leader, job)')).toEqual(['prepull_leader']);
  });
});
