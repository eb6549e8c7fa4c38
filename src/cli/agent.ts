/**
 * `prepull agent`: the node agent, one pod per node in Prepull's namespace
 * (deploy/agent.yaml). Parses its flags, connects with the pod's service
 * account (or --kubeconfig), runs the modules until SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ARCHIVE_PORT } from '../agent/node/imports/archive-protocol.ts';
import { buildAgentModules } from '../agent/node/modules.ts';
import { agentIdentityFromEnv, startAgent } from '../agent/node/run.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { systemClock } from '../runtime/clock.ts';
import { untilSignal } from '../runtime/signals.ts';

export const agentUsage = `usage: prepull agent [flags]

The node agent: run by the prepull-agent DaemonSet, one pod per node, with
NODE_NAME, POD_NAMESPACE and POD_NAME from the downward API.
  --kubeconfig PATH        cluster to use (default: the pod's service account)
  --log-level LEVEL        pino level (default info)
  --host-root PATH         where the node's mounted directories appear (default /host)
  --containerd-socket PATH containerd's socket as the agent sees it
                           (default: detected under --host-root: kubeadm, k3s/rke2, microk8s, k0s)
  --containerd-config PATH containerd's config file on the node, a host path
                           (default: /etc/containerd/config.toml; microk8s's own)
  --kubelet-root-dir PATH  the kubelet's --root-dir on the node, a host path, where the nodecreds
                           module merges RegistryCredentials' spec.nodes into config.json
                           (default /var/lib/kubelet)
  --state-dir PATH         the agent's state on the node, a host path (default /var/lib/prepull/agent)
  --importer-path PATH     prepull-import (default /prepull-import)
  --work-dir PATH          where tarball downloads go (default /work)
  --download-ca-file PATH  PEM bundle trusted for https tarball downloads besides the system's
  --max-download-bytes N   largest tarball download accepted, in bytes (default 17179869184, 16 GiB;
                           keep the work emptyDir's sizeLimit above it)
  --archive-port N         where puller pods send archives of volume claims (persistentVolumeClaim
                           tarball sources), behind the prepull-agent Service; 0: none is received
                           (default 8471)
  --import-retry BASE,MAX  seconds between tries of a failed import: first wait, doubling up to
                           MAX (default 30,600)
`;

/** Runs the agent until a signal; resolves with the exit code. */
export async function runAgentCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'host-root': { type: 'string', default: '/host' },
      'containerd-socket': { type: 'string' },
      'containerd-config': { type: 'string' },
      'kubelet-root-dir': { type: 'string' },
      'state-dir': { type: 'string', default: '/var/lib/prepull/agent' },
      'importer-path': { type: 'string', default: '/prepull-import' },
      'work-dir': { type: 'string', default: '/work' },
      'download-ca-file': { type: 'string' },
      'max-download-bytes': { type: 'string' },
      'import-retry': { type: 'string', default: '30,600' },
      'archive-port': { type: 'string', default: String(ARCHIVE_PORT) },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(agentUsage);
    return 0;
  }
  const identity = agentIdentityFromEnv(env);
  const log = pino({
    level: values['log-level'],
    base: { component: 'prepull-agent', node: identity.nodeName },
  });
  const agent = startAgent({
    kc: loadKubeConfig(values.kubeconfig),
    log,
    clock: systemClock,
    identity,
    modules: buildAgentModules({
      hostRoot: values['host-root'],
      runtimeSocket: values['containerd-socket'],
      containerdConfig: values['containerd-config'],
      kubeletRootDir: values['kubelet-root-dir'],
      stateDir: values['state-dir'],
      importerPath: values['importer-path'],
      workDir: values['work-dir'],
      downloadCaFile: values['download-ca-file'],
      maxDownloadBytes: parseByteCount(values['max-download-bytes']),
      importRetry: parseRetry(values['import-retry']),
      archivePort: parsePort(values['archive-port']),
    }),
  });
  const signal = await untilSignal().signal;
  log.info({ signal }, 'stopping');
  await agent.stop();
  return 0;
}

function parseByteCount(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const bytes = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new Error(`--max-download-bytes must be a positive number of bytes, not ${JSON.stringify(value)}`);
  }
  return bytes;
}

function parsePort(value: string): number | undefined {
  const port = Number(value);
  if (!/^[0-9]+$/.test(value) || port > 65535) {
    throw new Error(`--archive-port must be a port number (0: none), not ${JSON.stringify(value)}`);
  }
  return port === 0 ? undefined : port;
}

function parseRetry(value: string): { baseMs: number; maxMs: number } {
  const [base, max] = value.split(',').map(Number);
  if (!base || !max || base <= 0 || max < base || !Number.isFinite(max)) {
    throw new Error(
      `--import-retry must be BASE,MAX in seconds with 0 < BASE <= MAX, not ${JSON.stringify(value)}`,
    );
  }
  return { baseMs: base * 1000, maxMs: max * 1000 };
}
