/** ResourceQuotas that refuse what a test needs refused, applied only once the quota controller enforces them. */
import { expect } from 'vitest';
import { eventually } from './eventually.ts';
import { type KubectlTarget, kubectl, serverSideApply } from './kubectl.ts';

/**
 * Applies ResourceQuota `name` in `namespace` with `hard`, and waits until
 * the quota controller has computed its usage: before that, the API server
 * admits everything.
 */
export async function applyQuota(
  cluster: KubectlTarget,
  namespace: string,
  name: string,
  hard: Record<string, string>,
): Promise<void> {
  serverSideApply(cluster, {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name, namespace },
    spec: { hard },
  });
  await eventually(() => {
    const used = kubectl(cluster, [
      'get',
      'resourcequota',
      name,
      '-n',
      namespace,
      '-o',
      'jsonpath={.status.used}',
    ]);
    for (const resource of Object.keys(hard)) expect(used.stdout).toContain(resource);
  });
}
