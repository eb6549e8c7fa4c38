/**
 * `prepull run`: connect to a cluster (or start the embedded one), serve
 * health and metrics, and stop cleanly on SIGINT or SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { findKubeconfig, loadKubeConfig, serverVersion } from '../kube/config.ts';
import { startHealthServer } from './health.ts';

export interface RunOptions {
  kubeconfig: string | undefined;
  healthAddress: string;
  logLevel: string;
  env: NodeJS.ProcessEnv;
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function runOperator(options: RunOptions): Promise<number> {
  const log = pino({ level: options.logLevel, base: { component: 'prepull' } });
  const cleanups: Array<() => Promise<void>> = [];
  const stopped = new Promise<string>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });

  try {
    let found = findKubeconfig(options.kubeconfig, options.env);
    if (!found) {
      log.info('no kubeconfig found: starting the embedded local cluster (the first run builds it)');
      const embedded = await startEmbeddedCluster(log);
      cleanups.push(embedded.stop);
      found = { source: 'flag', path: embedded.kubeconfig };
      // Printed plainly, not as JSON: this line is for the person at the terminal.
      process.stderr.write(
        `\nThe embedded cluster is up. Point kubectl at it with:\n  export KUBECONFIG=${embedded.kubeconfig}\n  export PATH=${embedded.binDir}:$PATH\n\n`,
      );
    }
    const kc = loadKubeConfig(found.path);
    const version = await serverVersion(kc);
    log.info(
      {
        kubeconfig: found.path ?? 'in-cluster',
        source: found.source,
        server: kc.getCurrentCluster()?.server,
        version,
      },
      'connected to the API server',
    );

    const metrics = new Registry();
    collectDefaultMetrics({ register: metrics, prefix: 'prepull_' });
    const health = await startHealthServer({ address: options.healthAddress, ready: () => true, metrics });
    cleanups.push(() => new Promise<void>((resolve) => health.server.close(() => resolve())));
    log.info({ address: options.healthAddress, port: health.port }, 'serving /healthz, /readyz and /metrics');

    const signal = await stopped;
    log.info({ signal }, 'stopping');
    return 0;
  } catch (err) {
    log.error({ err }, 'operator failed');
    return 1;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        log.error({ err }, 'clean-up failed');
      }
    }
    log.info('stopped');
  }
}

/**
 * The test harness's cluster, with the CRDs installed. Imported lazily: an
 * operator running in a real cluster never loads it.
 */
async function startEmbeddedCluster(
  log: pino.Logger,
): Promise<{ kubeconfig: string; binDir: string; stop: () => Promise<void> }> {
  const { startCluster } = await import('../../test/harness/cluster.ts');
  const cluster = await startCluster({
    name: 'embedded',
    // Apart from the test cluster's ports, so `npm start` and `npm test` can run side by side.
    basePort: 23890,
    kwok: true,
    realNode: 'containerd2',
    progress: (line) => log.info(line),
  });
  try {
    const crds = join(import.meta.dirname, '..', '..', 'crds');
    const applied = spawnSync(
      join(cluster.info.binDir, 'kubectl'),
      ['--kubeconfig', cluster.info.kubeconfig, 'apply', '--server-side', '-f', crds],
      { encoding: 'utf8' },
    );
    if (applied.status !== 0) throw new Error(`installing the CRDs failed: ${applied.stderr}`);
    log.info({ crds }, 'installed the CRDs');
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return { kubeconfig: cluster.info.kubeconfig, binDir: cluster.info.binDir, stop: cluster.stop };
}
