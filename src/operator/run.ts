/**
 * `prepull run`: connect to a cluster (or start the embedded one), serve
 * health and metrics, and stop cleanly on SIGINT or SIGTERM.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AGENT_SERVICE, ARCHIVE_PORT, defaultAgentUrl } from '../agent/node/imports/archive-protocol.ts';
import { KubeClient } from '../kube/client.ts';
import { findKubeconfig, loadKubeConfig, serverVersion } from '../kube/config.ts';
import { systemClock } from '../runtime/clock.ts';
import { untilSignal } from '../runtime/signals.ts';
import { releasedImage } from '../version.ts';
import { startHealthServer } from './health.ts';
import { type LogFormat, prettyLogStream, usePrettyLogs } from './log-format.ts';
import { startOperator, USER_AGENT } from './manager.ts';
import { createOperatorMetrics } from './metrics.ts';
import { resolveOwnImage } from './own-image.ts';

/** How long the operator waits, at start, for the kubelet to report its own image's digest. */
const OWN_IMAGE_TIMEOUT_MS = 30_000;

export interface RunOptions {
  kubeconfig: string | undefined;
  healthAddress: string;
  logLevel: string;
  /** JSON lines (the default in a pod), readable lines, or readable when stdout is a terminal. */
  logFormat: LogFormat;
  env: NodeJS.ProcessEnv;
  leaderElect: boolean;
  leaderElectionNamespace: string | undefined;
  identity: string | undefined;
  agentImage: string | undefined;
  agentPullPolicy: 'IfNotPresent' | 'Always' | 'Never';
  holdPath: string;
  /** The node agents' Service URL for volume claim archives; undefined: its cluster DNS name. */
  agentUrl: string | undefined;
  defaultPriorityClass: string | undefined;
  /** Priority classes a PrePulledImage may name besides those of value 0 or less; empty: the default. */
  allowedPriorityClasses: string[];
  /** Check images at their registries (--registry-checks), with these TLS settings. */
  registryChecks: { caFile: string | undefined; insecureRegistries: string[] } | undefined;
  /** Keep the pull-secret MutatingAdmissionPolicies (--no-admission-policies turns them off). */
  admissionPolicies: boolean;
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code. */
export async function runOperator(options: RunOptions): Promise<number> {
  const pretty = usePrettyLogs(options.logFormat, process.stdout.isTTY === true);
  const log = pino(
    { level: options.logLevel, base: { component: 'prepull' } },
    pretty ? prettyLogStream(process.stdout, { color: process.stdout.isTTY === true }) : undefined,
  );
  const cleanups: Array<() => Promise<void>> = [];
  // Up until a signal, also while its only work is a wait on the clock (its image ID at start).
  const life = untilSignal();
  const stopped: Promise<string> = life.signal;

  try {
    let found = findKubeconfig(options.kubeconfig, options.env);
    let embeddedAgentImage: string | undefined;
    let embeddedAgentUrl: string | undefined;
    if (!found) {
      const embedded = await startEmbeddedCluster(log);
      cleanups.push(embedded.stop);
      found = { source: 'flag', path: embedded.kubeconfig };
      embeddedAgentImage = embedded.agentImage;
      embeddedAgentUrl = embedded.agentUrl;
      // Printed plainly, not as JSON: these lines are for the person at the terminal.
      const plugin = join(import.meta.dirname, '..', '..', 'bin');
      process.stderr.write(
        [
          '',
          'The embedded cluster is up. Point kubectl (and its prepull plugin) at it with:',
          `  export KUBECONFIG=${embedded.kubeconfig}`,
          `  export PATH=${plugin}:${embedded.binDir}:$PATH`,
          "Then pre-pull the local registry's demo image on every node, and watch it go Ready:",
          `  ${embedded.demo.apply}`,
          `  ${embedded.demo.wait}`,
          'Or put an image archive (docker save) on every node, with no registry:',
          `  ${embedded.demo.load}`,
          "or declare it, and Prepull's node agent imports it on every node, new ones included:",
          `  ${embedded.demo.importApply}`,
          '',
          '',
        ].join('\n'),
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

    const checks = options.registryChecks;
    // Read once at start: a changed bundle takes a restart, like the operator's other flags.
    const caBundle = checks?.caFile ? readFileSync(checks.caFile, 'utf8') : undefined;
    const metrics = createOperatorMetrics();
    // Served from the start: the liveness probe has its answer while the
    // operator waits for its own image ID; ready only once its caches sync.
    let ready = (): boolean => false;
    const health = await startHealthServer({
      address: options.healthAddress,
      ready: () => ready(),
      metrics: metrics.registry,
    });
    cleanups.push(() => new Promise<void>((resolve) => health.server.close(() => resolve())));
    log.info({ address: options.healthAddress, port: health.port }, 'serving /healthz, /readyz and /metrics');
    const identity = options.identity ?? options.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    // The puller pods copy hold from this image: by digest, read from the operator's own pod.
    const { POD_NAMESPACE, POD_NAME } = options.env;
    const agentImage = await resolveOwnImage({
      client: new KubeClient(kc, { userAgent: USER_AGENT }),
      clock: systemClock,
      log,
      pod: POD_NAMESPACE && POD_NAME ? { namespace: POD_NAMESPACE, name: POD_NAME } : undefined,
      configured: options.agentImage ?? embeddedAgentImage ?? releasedImage,
      explicit: options.agentImage !== undefined,
      timeoutMs: OWN_IMAGE_TIMEOUT_MS,
    });
    const operator = startOperator({
      kc,
      log,
      clock: systemClock,
      metrics,
      identity,
      namespace: options.env.POD_NAMESPACE ?? 'prepull-system',
      ...(options.leaderElect
        ? {
            leaderElection: {
              namespace: options.leaderElectionNamespace ?? options.env.POD_NAMESPACE ?? 'prepull-system',
              name: 'prepull-operator',
            },
          }
        : {}),
      agent: {
        image: agentImage,
        pullPolicy: options.agentPullPolicy,
        holdPath: options.holdPath,
        archiveUrl:
          options.agentUrl ??
          embeddedAgentUrl ??
          defaultAgentUrl(options.env.POD_NAMESPACE ?? 'prepull-system'),
      },
      ...(options.defaultPriorityClass ? { defaultPriorityClassName: options.defaultPriorityClass } : {}),
      ...(options.allowedPriorityClasses.length > 0
        ? { allowedPriorityClasses: options.allowedPriorityClasses }
        : {}),
      admissionPolicies: options.admissionPolicies,
      ...(checks
        ? {
            registryChecks: {
              tls: { ...(caBundle ? { caBundle } : {}), insecureRegistries: checks.insecureRegistries },
            },
          }
        : {}),
    });
    cleanups.push(() => operator.stop());
    ready = operator.ready;

    const outcome = await Promise.race([stopped, operator.ended]);
    if (outcome === 'lost') {
      log.error('lost leadership: exiting so that a fresh process campaigns again');
      return 1;
    }
    const signal = outcome;
    log.info({ signal }, 'stopping');
    return 0;
  } catch (err) {
    log.error({ err }, 'operator failed');
    return 1;
  } finally {
    life.release();
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
async function startEmbeddedCluster(log: pino.Logger): Promise<{
  kubeconfig: string;
  binDir: string;
  agentImage: string | undefined;
  /** The agent Service by its ClusterIP: the embedded cluster has no DNS. */
  agentUrl: string | undefined;
  containerdSocket: string | undefined;
  demo: { apply: string; wait: string; load: string; importApply: string };
  stop: () => Promise<void>;
}> {
  // A computed specifier: the bundler leaves it out of dist/prepull.mjs, which
  // runs in clusters that have their own kubeconfig or service account.
  const harness = new URL('../../test/harness/cluster.ts', import.meta.url);
  const demoModule = new URL('../../test/harness/demo.ts', import.meta.url);
  let startCluster: typeof import('../../test/harness/cluster.ts').startCluster;
  let prepareDemo: typeof import('../../test/harness/demo.ts').prepareDemo;
  try {
    ({ startCluster } = await import(harness.href));
    ({ prepareDemo } = await import(demoModule.href));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
    if (!missing || !String((err as Error).message).includes(harness.pathname)) throw err;
    throw new Error(
      'no kubeconfig found: pass --kubeconfig, set KUBECONFIG or run in a pod. ' +
        'The embedded local cluster is only part of a source checkout (npm start).',
    );
  }
  log.info('no kubeconfig found: starting the embedded local cluster (the first run builds it)');
  const cluster = await startCluster({
    name: 'embedded',
    // Apart from the test cluster's ports, so `npm start` and `npm test` can run side by side.
    basePort: 23890,
    kwok: true,
    // The local registry, with a demo image a newcomer can pre-pull.
    registry: true,
    realNode: 'containerd2',
    progress: (line) => log.info(line),
  });
  let demo: Awaited<ReturnType<typeof prepareDemo>>;
  let agentUrl: string | undefined;
  try {
    const crds = join(import.meta.dirname, '..', '..', 'crds');
    const applied = spawnSync(
      join(cluster.info.binDir, 'kubectl'),
      ['--kubeconfig', cluster.info.kubeconfig, 'apply', '--server-side', '-f', crds],
      { encoding: 'utf8' },
    );
    if (applied.status !== 0) throw new Error(`installing the CRDs failed: ${applied.stderr}`);
    log.info({ crds }, 'installed the CRDs');
    demo = await prepareDemo(cluster.info);
    // The node agent, as deploy/ installs it, for tarball imports and node settings.
    const kubectlArgs = ['--kubeconfig', cluster.info.kubeconfig, 'apply', '--server-side'];
    const namespace = join(import.meta.dirname, '..', '..', 'deploy', 'namespace.yaml');
    const agent = [
      spawnSync(join(cluster.info.binDir, 'kubectl'), [...kubectlArgs, '-f', namespace], {
        encoding: 'utf8',
      }),
      spawnSync(join(cluster.info.binDir, 'kubectl'), [...kubectlArgs, '-f', '-'], {
        encoding: 'utf8',
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: demo.agentObjects }),
      }),
    ].find((result) => result.status !== 0);
    if (agent) throw new Error(`installing the node agent failed: ${agent.stderr}`);
    log.info('installed the node agent (DaemonSet prepull-agent in prepull-system)');
    const service = spawnSync(
      join(cluster.info.binDir, 'kubectl'),
      [
        '--kubeconfig',
        cluster.info.kubeconfig,
        'get',
        'service',
        AGENT_SERVICE,
        '-n',
        'prepull-system',
        '-o',
        'jsonpath={.spec.clusterIP}',
      ],
      { encoding: 'utf8' },
    );
    agentUrl =
      service.status === 0 && service.stdout ? `http://${service.stdout.trim()}:${ARCHIVE_PORT}` : undefined;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return {
    kubeconfig: cluster.info.kubeconfig,
    binDir: cluster.info.binDir,
    agentImage: cluster.info.node?.agentImage,
    agentUrl,
    containerdSocket: cluster.info.node?.containerdSocket,
    demo,
    stop: cluster.stop,
  };
}
