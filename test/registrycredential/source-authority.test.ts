/**
 * The RegistryCredential source policy (deploy/policies.yaml) on the real API
 * server: a platform user, by impersonation, who may manage
 * RegistryCredentials but not read kube-system's secrets, cannot make one
 * that copies such a secret; given `get` on exactly one secret, they can
 * copy that one. No operator runs: the refusal happens at admission.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SOURCE_ACCESS_POLICY } from '../../src/api/policies.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const run = randomBytes(3).toString('hex');
const USER = `platform-user-${run}`;
const SOURCE_NS = `rc-authority-${run}`;
const policies = join(import.meta.dirname, '..', '..', 'deploy', 'policies.yaml');

const asUser = (args: string[], input?: string) => kubectl(cluster, ['--as', USER, ...args], input);

function registryCredential(name: string, source: { namespace: string; name: string }, extra: object = {}) {
  return JSON.stringify({
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryCredential',
    metadata: { name, ...extra },
    spec: {
      source: { secretRef: source },
      target: { secretName: `copy-${run}`, namespaces: ['default'] },
    },
  });
}

describe('a RegistryCredential may only copy a secret its author can read', () => {
  beforeAll(() => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    const applied = kubectl(cluster, ['apply', '-f', policies]);
    expect(applied.status, applied.stderr).toBe(0);
    kubectl(cluster, ['create', 'namespace', SOURCE_NS]);
    for (const name of ['readable', 'unreadable']) {
      const created = kubectl(cluster, [
        'create',
        'secret',
        'docker-registry',
        name,
        '-n',
        SOURCE_NS,
        '--docker-server=registry.example.com',
        '--docker-username=u',
        `--docker-password=${randomBytes(8).toString('hex')}`,
      ]);
      expect(created.status, created.stderr).toBe(0);
    }
    // The platform user: RegistryCredentials yes, secrets only the one named below.
    const rbac = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: `regcred-editor-${run}` },
          rules: [{ apiGroups: ['prepull.dev'], resources: ['registrycredentials'], verbs: ['*'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: `regcred-editor-${run}` },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: `regcred-editor-${run}`,
          },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: USER }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'read-one-secret', namespace: SOURCE_NS },
          rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['readable'], verbs: ['get'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'read-one-secret', namespace: SOURCE_NS },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-one-secret' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: USER }],
        },
      ],
    };
    const granted = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(rbac));
    expect(granted.status, granted.stderr).toBe(0);
    expect(asUser(['auth', 'can-i', 'get', 'secret/unreadable', '-n', SOURCE_NS]).stdout.trim()).toBe('no');
    expect(asUser(['auth', 'can-i', 'get', 'secrets', '-n', 'kube-system']).stdout.trim()).toBe('no');
    expect(asUser(['auth', 'can-i', 'create', 'registrycredentials']).stdout.trim()).toBe('yes');
  });

  it('refuses a source in kube-system, and one the user cannot get, naming the user and the secret', async () => {
    // The policy is enforced once the API server has loaded it: retried until then.
    await eventually(() => {
      const refused = asUser(
        ['create', '-f', '-'],
        registryCredential(`steal-${run}`, { namespace: 'kube-system', name: 'bootstrap-token-abcdef' }),
      );
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toContain(`ValidatingAdmissionPolicy '${SOURCE_ACCESS_POLICY}'`);
      expect(refused.stderr).toContain(
        `the source secret kube-system/bootstrap-token-abcdef is not one that ${USER} may get`,
      );
    });
    const unreadable = asUser(
      ['create', '-f', '-'],
      registryCredential(`unreadable-${run}`, { namespace: SOURCE_NS, name: 'unreadable' }),
    );
    expect(unreadable.status).not.toBe(0);
    expect(unreadable.stderr).toContain(
      `the source secret ${SOURCE_NS}/unreadable is not one that ${USER} may get`,
    );
    expect(kubectl(cluster, ['get', 'regcred', `unreadable-${run}`]).status).not.toBe(0);
  });

  it('accepts the secret the user may get, and refuses switching it to one they may not', () => {
    const created = asUser(
      ['create', '-f', '-'],
      registryCredential(`own-${run}`, { namespace: SOURCE_NS, name: 'readable' }),
    );
    expect(created.status, created.stderr).toBe(0);
    const switched = asUser(
      ['replace', '-f', '-'],
      registryCredential(`own-${run}`, { namespace: SOURCE_NS, name: 'unreadable' }),
    );
    expect(switched.status).not.toBe(0);
    expect(switched.stderr).toContain(`${SOURCE_NS}/unreadable is not one that ${USER} may get`);
  });

  it('lets the user edit an admin’s RegistryCredential without touching its source', () => {
    const byAdmin = kubectl(
      cluster,
      ['create', '-f', '-'],
      registryCredential(`admin-${run}`, { namespace: SOURCE_NS, name: 'unreadable' }),
    );
    expect(byAdmin.status, byAdmin.stderr).toBe(0);
    const labelled = asUser(['label', 'regcred', `admin-${run}`, 'team=platform']);
    expect(labelled.status, labelled.stderr).toBe(0);
    const moved = asUser([
      'patch',
      'regcred',
      `admin-${run}`,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { source: { secretRef: { namespace: 'kube-system', name: 'x' } } } }),
    ]);
    expect(moved.status).not.toBe(0);
    expect(moved.stderr).toContain('kube-system/x is not one that');
  });
});
