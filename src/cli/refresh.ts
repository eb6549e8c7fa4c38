/**
 * `prepull refresh` (`kubectl prepull refresh` as a kubectl plugin): asks for
 * a refresh of PrePulledImages now, whatever their interval says, by setting
 * their `prepull.dev/refresh-requested-at` annotation to the current time
 * (the operator handles each value once; status.lastHandledRefreshAt then
 * holds it). With `--wait`, returns once every object has handled it.
 *
 *   kubectl prepull refresh app -n team-a
 *   kubectl prepull refresh --all -n team-a --wait
 */
import { parseArgs } from 'node:util';
import { type PrePulledImage, REFRESH_REQUESTED_ANNOTATION } from '../api/prepulledimage.ts';
import { KubeClient } from '../kube/client.ts';
import { contextNamespace, findKubeconfig, loadKubeConfig } from '../kube/config.ts';
import { isNotFound } from '../kube/errors.ts';
import { Resources } from '../kube/resources.ts';

export const refreshUsage = `usage: prepull refresh (NAME... | --all) [flags]

Asks the operator to refresh PrePulledImages now: with registry checks, every
tag is asked about at its registry at once (a moved tag rolls); without them,
objects with spec.refresh have their puller pods replaced, pulling their tags
again. Sets the prepull.dev/refresh-requested-at annotation to the time.

  --all                 every PrePulledImage of the namespace
  -n, --namespace NS    the namespace (default: the kubeconfig context's)
  --wait                wait until every object has handled the request
  --timeout DURATION    with --wait, how long at most, in seconds (default 120)
  --kubeconfig PATH     cluster to use (default $KUBECONFIG, ~/.kube/config)
`;

export interface RefreshIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** The request's value; the current time by default. */
  now?: () => Date;
}

export async function runRefresh(args: string[], io: RefreshIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      all: { type: 'boolean' },
      namespace: { type: 'string', short: 'n' },
      wait: { type: 'boolean' },
      timeout: { type: 'string', default: '120' },
      kubeconfig: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(refreshUsage);
    return 0;
  }
  if ((positionals.length === 0) === !values.all) {
    io.stderr.write(`prepull refresh: give names or --all, not both\n\n${refreshUsage}`);
    return 2;
  }
  const timeoutMs = Number(values.timeout) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    io.stderr.write(`prepull refresh: --timeout must be a number of seconds, not ${values.timeout}\n`);
    return 2;
  }
  const found = findKubeconfig(values.kubeconfig, io.env);
  if (!found) {
    io.stderr.write('prepull refresh: no cluster: set KUBECONFIG or pass --kubeconfig\n');
    return 2;
  }
  const kc = loadKubeConfig(found.path);
  const namespace = values.namespace ?? contextNamespace(kc);
  const client = new KubeClient(kc, { userAgent: 'kubectl-prepull' });
  const names = values.all
    ? (await client.list<PrePulledImage>(Resources.prePulledImages, { namespace })).items.map(
        (p) => p.metadata.name ?? '',
      )
    : positionals;
  const value = (io.now ?? (() => new Date()))().toISOString();
  const patch = { metadata: { annotations: { [REFRESH_REQUESTED_ANNOTATION]: value } } };
  let failed = 0;
  for (const name of names) {
    try {
      await client.patch(Resources.prePulledImages, name, namespace, patch, 'merge');
      io.stdout.write(`prepulledimage.prepull.dev/${name} refresh requested at ${value}\n`);
    } catch (err) {
      failed++;
      io.stderr.write(
        isNotFound(err)
          ? `prepull refresh: prepulledimage ${name} not found in namespace ${namespace}\n`
          : `prepull refresh: ${name}: ${err instanceof Error ? err.message : String(err)}\n`,
      );
    }
  }
  if (!values.wait || failed === names.length) return failed > 0 ? 1 : 0;
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(names);
  while (waiting.size > 0 && Date.now() < deadline) {
    for (const name of [...waiting]) {
      const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, name, namespace);
      if (!ppi || ppi.status?.lastHandledRefreshAt === value) {
        waiting.delete(name);
        if (ppi) io.stdout.write(`prepulledimage.prepull.dev/${name} refreshed\n`);
      }
    }
    if (waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  for (const name of waiting) {
    io.stderr.write(
      `prepull refresh: ${name} has not handled the request after ${values.timeout} s (is the operator running?)\n`,
    );
  }
  return failed > 0 || waiting.size > 0 ? 1 : 0;
}
