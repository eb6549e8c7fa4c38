/** deploy/ as a user applies it: every object is accepted by the real API server. */
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const deploy = join(import.meta.dirname, '..', '..', 'deploy');

describe('deploy/', () => {
  it('applies with kubectl apply -k (server-side dry run), CRDs, RBAC, admission policy, priority class and Deployment included', () => {
    // The namespace for real, so the namespaced objects can be checked against it.
    expect(kubectl(cluster, ['apply', '-f', join(deploy, 'namespace.yaml')]).status).toBe(0);
    const applied = kubectl(cluster, ['apply', '-k', deploy, '--dry-run=server']);
    expect(applied.status, applied.stderr).toBe(0);
    for (const object of [
      'customresourcedefinition.apiextensions.k8s.io/prepulledimages.prepull.dev',
      'customresourcedefinition.apiextensions.k8s.io/registrycredentials.prepull.dev',
      'priorityclass.scheduling.k8s.io/prepull-low',
      'clusterrole.rbac.authorization.k8s.io/prepull-controller',
      'deployment.apps/prepull-controller',
      'validatingadmissionpolicy.admissionregistration.k8s.io/prepull-registrycredential-source-access',
      'validatingadmissionpolicybinding.admissionregistration.k8s.io/prepull-registrycredential-source-access',
    ]) {
      expect(applied.stdout).toContain(object);
    }
  });
});
