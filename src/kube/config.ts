/**
 * Where the operator finds its cluster. This folder is the only importer of
 * @kubernetes/client-node.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';

/** How the cluster was found, for the start-up log line. */
export type KubeconfigSource = 'flag' | 'env' | 'home' | 'in-cluster';

/**
 * The kubeconfig to use, in kubectl's order: an explicit path, $KUBECONFIG,
 * ~/.kube/config, then the in-cluster service account. Undefined when none
 * exists, so the caller can start the embedded cluster instead.
 */
export function findKubeconfig(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
): { source: KubeconfigSource; path?: string } | undefined {
  if (explicit) return { source: 'flag', path: explicit };
  if (env.KUBECONFIG) return { source: 'env', path: env.KUBECONFIG };
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { source: 'home', path: home };
  if (env.KUBERNETES_SERVICE_HOST) return { source: 'in-cluster' };
  return undefined;
}

/** Loads a kubeconfig file, or the in-cluster configuration when no path is given. */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromCluster();
  return kc;
}

/** The API server's version, e.g. v1.36.3: proves the connection and credentials work. */
export async function serverVersion(kc: KubeConfig): Promise<string> {
  const info = await kc.makeApiClient(VersionApi).getCode();
  return info.gitVersion;
}

export type { KubeConfig };

/** The namespace of the kubeconfig's current context, as kubectl defaults to it: `default` when it names none. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}
