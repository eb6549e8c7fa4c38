/**
 * RegistryCredential on the real node: a kubelet with containerd pulls from
 * the password-protected registry with nothing but the secret Prepull copied
 * into a brand-new namespace and put on its default ServiceAccount; a
 * Deployment applied together with its namespace runs too (the secret added
 * at admission); then the registry's password rotates, and so does every copy.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod, Secret, ServiceAccount } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { writeHtpasswd } from '../harness/registry.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const SOURCE_NS = 'rc-real-source';
const APP_NS = 'rc-real-app';
/** Created in one kubectl apply with its Deployment, as one GitOps sync would. */
const ONE_APPLY_NS = 'rc-real-one-apply';
const SECRET = 'registry-pull';
const LABEL = 'rc-real/registry';
/** Where the harness keeps the registry's htpasswd, which the registry re-reads when it changes. */
const REGISTRY_DIR = join(cluster.dir, 'registry');

const apply = (object: unknown) => serverSideApply(cluster, object);

/** The source secret, as `kubectl create secret docker-registry` makes it, applied so it can be rotated. */
function applySource(password: string): void {
  const rendered = kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    'registry',
    '-n',
    SOURCE_NS,
    `--docker-server=${registry.host}`,
    `--docker-username=${registry.username}`,
    `--docker-password=${password}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  expect(rendered.status, rendered.stderr).toBe(0);
  apply(JSON.parse(rendered.stdout));
}

/** A pod on the real node with no imagePullSecrets of its own: whatever it gets comes from its ServiceAccount. */
function createPod(name: string): void {
  apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: APP_NS },
    spec: {
      nodeSelector: { 'prepull.dev/test-node': 'real' },
      containers: [{ name: 'app', image: registry.images.movable.ref, imagePullPolicy: 'Always' }],
      terminationGracePeriodSeconds: 1,
    },
  });
}

async function getPod(name: string): Promise<Pod> {
  const pod = await client.get<Pod>(Resources.pods, name, APP_NS);
  if (!pod) throw new Error(`pod ${name} not found`);
  return pod;
}

/** The auth string the copy in the app namespace carries for the registry. */
async function copiedAuth(): Promise<string | undefined> {
  const copy = await client.get<Secret>(Resources.secrets, SECRET, APP_NS);
  const data = copy?.data?.['.dockerconfigjson'];
  if (!data) return undefined;
  const config = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
  return config.auths?.[registry.host]?.auth;
}

const authOf = (password: string) => Buffer.from(`${registry.username}:${password}`).toString('base64');

describe('RegistryCredential on the real node', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SOURCE_NS } });
    applySource(registry.password);
    operator = startTestOperator(cluster, 'rc-real');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    // Later test files pull with the harness's password.
    writeHtpasswd(REGISTRY_DIR, registry.password);
    kubectl(cluster, ['delete', 'pods', '--all', '-n', APP_NS, '--wait=false']);
    kubectl(cluster, ['delete', 'namespace', ONE_APPLY_NS, '--wait=false']);
    await operator?.stop();
  });

  it('lets a pod in a brand-new namespace pull a private image with only the synced secret and the default ServiceAccount', async () => {
    apply({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'RegistryCredential',
      metadata: { name: 'real' },
      spec: {
        source: { secretRef: { namespace: SOURCE_NS, name: 'registry' } },
        target: { secretName: SECRET, namespaceSelector: { matchLabels: { [LABEL]: 'yes' } } },
        serviceAccounts: ['default'],
      },
    });
    apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: APP_NS, labels: { [LABEL]: 'yes' } } });
    // The controller manager creates `default` shortly after the namespace; the controller patches it when it appears.
    await eventually(async () => {
      expect(await copiedAuth()).toBe(authOf(registry.password));
      const sa = await client.get<ServiceAccount>(Resources.serviceAccounts, 'default', APP_NS);
      expect(sa?.imagePullSecrets).toEqual([{ name: SECRET }]);
    });
    await eventually(async () => {
      const rc = await client.get<RegistryCredential>(Resources.registryCredentials, 'real');
      expect(rc?.status?.synced).toBe('1/1');
    });

    createPod('pulls');
    // The ServiceAccount admission gave the pod the secret.
    expect((await getPod('pulls')).spec.imagePullSecrets).toEqual([{ name: SECRET }]);
    await eventually(async () => {
      const status = (await getPod('pulls')).status?.containerStatuses?.[0];
      expect(status?.state?.running).toBeDefined();
      expect(status?.imageID).toContain('@sha256:');
    }, 120_000);
  });

  it('runs the pod of a Deployment applied together with its namespace: the secret is added at admission', async () => {
    // The policy is in force: a probe pod with a pull secret of its own gets ours appended.
    await eventually(async () => {
      const probe = kubectl(
        cluster,
        ['create', '-o', 'name', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { generateName: 'probe-', namespace: APP_NS },
          spec: {
            nodeSelector: { 'prepull.dev/no-such-node': 'x' },
            imagePullSecrets: [{ name: 'other' }],
            containers: [{ name: 'app', image: registry.images.movable.ref }],
          },
        }),
      );
      expect(probe.status, probe.stderr).toBe(0);
      const name = probe.stdout.trim().replace(/^pod\//, '');
      expect((await getPod(name)).spec.imagePullSecrets).toEqual([{ name: 'other' }, { name: SECRET }]);
    });
    const app = { app: 'one-apply' };
    const applied = kubectl(
      cluster,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: ONE_APPLY_NS, labels: { [LABEL]: 'yes' } },
          },
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'app', namespace: ONE_APPLY_NS },
            spec: {
              replicas: 1,
              selector: { matchLabels: app },
              template: {
                metadata: { labels: app },
                spec: {
                  nodeSelector: { 'prepull.dev/test-node': 'real' },
                  containers: [
                    { name: 'app', image: registry.images.movable.ref, imagePullPolicy: 'Always' },
                  ],
                  terminationGracePeriodSeconds: 1,
                },
              },
            },
          },
        ],
      }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      const [pod] = (await client.list<Pod>(Resources.pods, { namespace: ONE_APPLY_NS })).items;
      expect(pod?.spec.imagePullSecrets).toEqual([{ name: SECRET }]);
      const status = pod?.status?.containerStatuses?.[0];
      expect(status?.state?.running).toBeDefined();
      expect(status?.imageID).toContain('@sha256:');
    }, 120_000);
  });

  it('follows a rotated registry password once the source secret is rotated', async () => {
    const rotated = `rotated-${randomBytes(9).toString('hex')}`;
    writeHtpasswd(REGISTRY_DIR, rotated);
    // The registry now refuses the old password the copies still carry.
    createPod('old-password');
    await eventually(async () => {
      const waiting = (await getPod('old-password')).status?.containerStatuses?.[0]?.state?.waiting;
      expect(waiting?.reason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
      expect(waiting?.message).toMatch(/unauthori[sz]ed|\b401\b|authorization failed|denied/i);
    }, 120_000);

    applySource(rotated);
    await eventually(async () => expect(await copiedAuth()).toBe(authOf(rotated)));
    createPod('new-password');
    await eventually(async () => {
      expect((await getPod('new-password')).status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    }, 120_000);
    // And the secret never shows up where it must not.
    const everywhere = [
      ...operator.logLines(),
      kubectl(cluster, ['get', 'regcred', '-o', 'yaml']).stdout,
      kubectl(cluster, ['get', 'events', '-A', '-o', 'yaml']).stdout,
    ].join('\n');
    for (const secret of [rotated, registry.password, authOf(rotated), authOf(registry.password)]) {
      expect(everywhere).not.toContain(secret);
    }
  });
});
