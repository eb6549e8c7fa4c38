/** A `kubernetes.io/dockerconfigjson` secret for the harness's password-protected registry, made with kubectl. */
import { expect } from 'vitest';
import type { ClusterInfo } from '../harness/types.ts';
import { kubectl } from './kubectl.ts';

/** Creates `name` in `namespace` for the cluster's registry, with its password unless another is given. */
export function createRegistryPullSecret(
  cluster: ClusterInfo,
  namespace: string,
  name: string,
  password = cluster.registry?.password ?? '',
): void {
  const registry = cluster.registry;
  if (!registry) throw new Error('this cluster has no registry');
  const created = kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    name,
    '-n',
    namespace,
    `--docker-server=${registry.host}`,
    `--docker-username=${registry.username}`,
    `--docker-password=${password}`,
  ]);
  expect(created.status, created.stderr).toBe(0);
}
