/**
 * A `kubernetes.io/dockerconfigjson` pull secret for a password-protected
 * registry of the harness, made with kubectl as a user makes one. For tiers
 * and benchmarks alike (no test runner needed). I/O.
 */
import type { RegistryInfo } from '../harness/types.ts';
import { type KubectlTarget, kubectl, serverSideApply } from './kubectl.ts';

/** Whom a pull secret is for: host and user, and the password unless another is given. */
export type PullSecretRegistry = Pick<RegistryInfo, 'host' | 'username' | 'password'>;

/**
 * Creates `name` in `namespace`, or replaces what it holds, for `registry`
 * (the cluster's by default) with its password unless another is given (a
 * wrong one, an old one); throws with kubectl's message when that fails.
 */
export function createRegistryPullSecret(
  cluster: KubectlTarget & { registry?: PullSecretRegistry },
  namespace: string,
  name: string,
  password?: string,
  registry: PullSecretRegistry | undefined = cluster.registry,
): void {
  if (!registry) throw new Error('this cluster has no registry');
  const made = kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    name,
    '-n',
    namespace,
    `--docker-server=${registry.host}`,
    `--docker-username=${registry.username}`,
    `--docker-password=${password ?? registry.password}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  if (made.status !== 0) throw new Error(`kubectl create secret failed: ${made.stderr}`);
  serverSideApply(cluster, JSON.parse(made.stdout));
}
