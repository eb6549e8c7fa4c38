/**
 * The operator, started in the test process against the harness's real API
 * server, exactly as `prepull run` wires it. Its JSON log goes to a file in
 * the cluster directory (kept for a failing run) and can be read back.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { type OperatorOptions, type RunningOperator, startOperator } from '../../src/operator/manager.ts';
import { createOperatorMetrics, type OperatorMetrics } from '../../src/operator/metrics.ts';
import { systemClock } from '../../src/runtime/clock.ts';
import { releasedImage } from '../../src/version.ts';
import type { ClusterInfo } from '../../test/harness/types.ts';
import { operatorKubeconfig } from './identity.ts';

export interface TestOperator extends RunningOperator {
  metrics: OperatorMetrics;
  logFile: string;
  /** Every log line written so far. */
  logLines(): string[];
  /** Reconciles so far, of one controller or all, and how many of them failed. */
  reconcileCounts(controller?: string): Promise<{ total: number; errors: number }>;
}

/** The puller pods' Prepull image as the harness's node holds it. */
export function testAgentOptions(cluster: ClusterInfo): OperatorOptions['agent'] {
  return { image: cluster.node?.agentImage ?? releasedImage, pullPolicy: 'IfNotPresent', holdPath: '/hold' };
}

export function startTestOperator(
  cluster: ClusterInfo,
  name: string,
  overrides: Partial<OperatorOptions> = {},
): TestOperator {
  const dir = join(cluster.dir, 'operator-logs');
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, `${name}.log`);
  const log = pino(
    { level: 'debug', base: { test: name } },
    { write: (line: string) => appendFileSync(logFile, line) },
  );
  const metrics = createOperatorMetrics();
  const operator = startOperator({
    // Under deploy/'s ServiceAccount and RBAC, so every test also proves the RBAC is enough.
    kc: loadKubeConfig(operatorKubeconfig(cluster)),
    log,
    clock: systemClock,
    metrics,
    identity: `test-${name}`,
    agent: testAgentOptions(cluster),
    ...overrides,
  });
  return {
    ...operator,
    metrics,
    logFile,
    logLines: () => {
      try {
        return readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    reconcileCounts: async (controller) => {
      const metric = await metrics.registry.getSingleMetric('prepull_reconcile_total')?.get();
      let total = 0;
      let errors = 0;
      for (const v of metric?.values ?? []) {
        if (controller && v.labels.controller !== controller) continue;
        total += v.value;
        if (v.labels.result === 'error') errors += v.value;
      }
      return { total, errors };
    },
  };
}
