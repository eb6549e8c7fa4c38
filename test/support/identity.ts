/**
 * The operator's own identity in the test cluster: the ServiceAccount and RBAC
 * of deploy/, and a kubeconfig with a token for it. Tests that run the
 * operator under it prove that deploy/rbac.yaml grants what the operator uses.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterInfo } from '../harness/types.ts';
import { kubectl } from './kubectl.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');

/** Applies deploy/'s namespace and RBAC, and returns a kubeconfig for the operator's ServiceAccount. */
export function operatorKubeconfig(cluster: ClusterInfo): string {
  for (const file of ['namespace.yaml', 'rbac.yaml']) {
    const applied = kubectl(cluster, ['apply', '--server-side', '-f', join(DEPLOY, file)]);
    if (applied.status !== 0) throw new Error(`applying deploy/${file}: ${applied.stderr}`);
  }
  const token = kubectl(cluster, [
    'create',
    'token',
    'prepull-controller',
    '-n',
    'prepull-system',
    '--duration=24h',
  ]);
  if (token.status !== 0) throw new Error(`creating a token: ${token.stderr}`);
  const path = join(cluster.dir, 'prepull-controller.kubeconfig');
  const ca = join(cluster.dir, 'pki', 'ca.crt');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority': ca } }],
      users: [{ name: 'prepull-controller', user: { token: token.stdout.trim() } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'prepull-controller' } }],
      'current-context': 'test',
    }),
  );
  return path;
}
