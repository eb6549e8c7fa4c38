/**
 * The pull-secret MutatingAdmissionPolicies against the real API server: the
 * objects renderAdmissionObjects gives are applied as they are, the API server
 * accepts them, and pods created in the same `kubectl apply` as their
 * namespace (a Deployment's pod and a bare Pod) get the secret in
 * spec.imagePullSecrets, round after round. Every branch of the CEL is
 * exercised here, because a wrong expression fails silently under
 * failurePolicy Ignore. Without the policy, the same rounds against the
 * running operator (which patches the ServiceAccounts) measure how often a
 * pod misses the secret; that figure is printed, not asserted.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import {
  type AdmissionObjects,
  admissionObjectsSelector,
  renderAdmissionObjects,
} from '../../src/controllers/registrycredential/admission.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod, ServiceAccount } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));

const ROUNDS = 20;
const SOURCE_NS = 'adm-source';
const LABEL = 'adm-test/pulls';
/** Pods never need to run here: only what the API server admitted is checked. */
const IMAGE = 'registry.example.com/team/app:1.0';
const b64 = (text: string) => Buffer.from(text).toString('base64');

function registryCredential(name: string, secretName: string, labelValue: string): object {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryCredential',
    metadata: { name },
    spec: {
      source: { secretRef: { namespace: SOURCE_NS, name: 'pull' } },
      target: { secretName, namespaceSelector: { matchLabels: { [LABEL]: labelValue } } },
      serviceAccounts: ['default', 'builder'],
    },
  };
}

async function getRc(name: string): Promise<RegistryCredential> {
  const rc = await client.get<RegistryCredential>(Resources.registryCredentials, name);
  if (!rc) throw new Error(`RegistryCredential ${name} not found`);
  return rc;
}

/** Applies every rendered object with kubectl (server-side), failing on any warning. */
function applyAdmission(objects: AdmissionObjects): void {
  for (const object of [...objects.policies, ...objects.bindings]) {
    const applied = kubectl(
      cluster,
      ['apply', '--server-side', '--field-manager=prepull-test', '-f', '-'],
      JSON.stringify(object),
    );
    expect(applied.status, applied.stderr).toBe(0);
    expect(applied.stderr).toBe('');
  }
}

function deleteAdmission(rcName: string): void {
  for (const kind of ['mutatingadmissionpolicybindings', 'mutatingadmissionpolicies']) {
    const deleted = kubectl(cluster, ['delete', kind, '-l', admissionObjectsSelector(rcName)]);
    expect(deleted.status, deleted.stderr).toBe(0);
  }
}

/** The pod spec's imagePullSecrets, which objects.ts leaves untyped. */
type AdmittedPod = Pod & { spec: Pod['spec'] & { imagePullSecrets?: Array<{ name?: string }> } };

function pullSecretNames(pod: AdmittedPod | undefined): string[] {
  return (pod?.spec.imagePullSecrets ?? []).map((e) => e.name ?? '');
}

async function podPullSecrets(namespace: string, name: string): Promise<string[]> {
  const pod = await client.get<AdmittedPod>(Resources.pods, name, namespace);
  if (!pod) throw new Error(`pod ${namespace}/${name} not found`);
  return pullSecretNames(pod);
}

/**
 * Creates a throwaway pod in `namespace` and gives the pull secrets it was
 * admitted with. The API server learns of a new or changed policy, binding or
 * namespace label through its own watch, a moment after the write: tests
 * probe until it has, rather than wait for a fixed time.
 */
async function probe(namespace: string): Promise<string[]> {
  const created = kubectl(
    cluster,
    ['create', '-o', 'name', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'probe-', namespace },
      spec: { containers: [{ name: 'app', image: IMAGE }] },
    }),
  );
  expect(created.status, created.stderr).toBe(0);
  return podPullSecrets(namespace, created.stdout.trim().replace(/^pod\//, ''));
}

/** A namespace made up front for {@link probe}. */
function probeNamespace(name: string, labels: Record<string, string>): string {
  serverSideApply(cluster, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  return newNamespace(name);
}

/** One `kubectl apply` of a new namespace, a Deployment and a bare Pod in it, as one GitOps sync would. */
function applyNamespaceWithPods(namespace: string, labels: Record<string, string>, pod: object = {}): void {
  const podSpec = { containers: [{ name: 'app', image: IMAGE }], ...pod };
  const list = {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', namespace },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'app' } },
          template: { metadata: { labels: { app: 'app' } }, spec: podSpec },
        },
      },
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare', namespace }, spec: podSpec },
    ],
  };
  const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(list));
  expect(applied.status, applied.stderr).toBe(0);
}

/** The imagePullSecrets names of the bare pod and the Deployment's pod, once both exist. */
async function admittedPullSecrets(namespace: string): Promise<{ bare: string[]; deployment: string[] }> {
  let found: { bare: string[]; deployment: string[] } | undefined;
  await eventually(async () => {
    const pods = (await client.list<AdmittedPod>(Resources.pods, { namespace })).items;
    const bare = pods.find((p) => p.metadata.name === 'bare');
    const deployment = pods.find((p) => p.metadata.name?.startsWith('app-'));
    expect(bare).toBeDefined();
    expect(deployment).toBeDefined();
    found = { bare: pullSecretNames(bare), deployment: pullSecretNames(deployment) };
  });
  return found!;
}

const namespacesMade: string[] = [];
function newNamespace(name: string): string {
  namespacesMade.push(name);
  return name;
}

describe('pull secrets added at admission, on the real API server', () => {
  let corp: AdmissionObjects;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    serverSideApply(cluster, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: SOURCE_NS } });
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'pull', namespace: SOURCE_NS },
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': b64(JSON.stringify({ auths: { 'registry.example.com': { auth: b64('u:p') } } })),
      },
    });
    serverSideApply(cluster, registryCredential('adm-corp', 'corp-pull', 'corp'));
    serverSideApply(cluster, registryCredential('adm-mirror', 'mirror-pull', 'corp'));
    corp = renderAdmissionObjects({ rc: await getRc('adm-corp'), requestedBy: [] });
  });

  afterAll(() => {
    deleteAdmission('adm-corp');
    deleteAdmission('adm-mirror');
    kubectl(cluster, [
      'delete',
      'regcred',
      'adm-corp',
      'adm-mirror',
      'adm-race',
      '--ignore-not-found',
      '--wait=false',
    ]);
    if (namespacesMade.length > 0)
      kubectl(cluster, ['delete', 'namespace', ...namespacesMade, '--wait=false']);
  });

  it('accepts the policies and bindings without a warning, and compiles their CEL', () => {
    applyAdmission(corp);
    const listed = kubectl(cluster, [
      'get',
      'mutatingadmissionpolicies,mutatingadmissionpolicybindings',
      '-l',
      admissionObjectsSelector('adm-corp'),
      '-o',
      'name',
    ]);
    expect(listed.stdout.trim().split('\n').sort()).toEqual([
      'mutatingadmissionpolicy.admissionregistration.k8s.io/prepull-rc-adm-corp-append',
      'mutatingadmissionpolicy.admissionregistration.k8s.io/prepull-rc-adm-corp-create',
      'mutatingadmissionpolicybinding.admissionregistration.k8s.io/prepull-rc-adm-corp-append-selector',
      'mutatingadmissionpolicybinding.admissionregistration.k8s.io/prepull-rc-adm-corp-create-selector',
    ]);
    // MutatingAdmissionPolicy v1 has no status, so no typeChecking warnings
    // to read (should a later API server add them, there must be none).
    for (const p of corp.policies) {
      const served = JSON.parse(
        kubectl(cluster, ['get', 'mutatingadmissionpolicy', p.metadata.name!, '-o', 'json']).stdout,
      );
      expect(served.status?.typeChecking?.expressionWarnings ?? []).toEqual([]);
    }
    // The API server parses every expression when a policy is written: the
    // same policy with one expression broken is refused, so acceptance above
    // means the CEL compiled. It does not type-check then (a misspelt field
    // is accepted, and fails silently under Ignore), so the tests below
    // prove each expression by what it does to pods.
    const broken = structuredClone(corp.policies[0]!);
    broken.metadata.name = 'prepull-test-broken';
    broken.spec.mutations[0]!.jsonPatch.expression = '[JSONPatch{op: "add", path: }]';
    const refused = kubectl(cluster, ['create', '--dry-run=server', '-f', '-'], JSON.stringify(broken));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('compilation failed');
  });

  it('is in force once the API server has seen it', async () => {
    const namespace = probeNamespace('adm-probe', { [LABEL]: 'corp' });
    await eventually(async () => expect(await probe(namespace)).toEqual(['corp-pull']));
  });

  it(`gives both pods of a one-apply namespace the secret, ${ROUNDS} rounds out of ${ROUNDS}`, async () => {
    const missed: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const namespace = newNamespace(`adm-on-${round}`);
      applyNamespaceWithPods(namespace, { [LABEL]: 'corp' });
      const { bare, deployment } = await admittedPullSecrets(namespace);
      if (!bare.includes('corp-pull')) missed.push(`${namespace}/bare`);
      if (!deployment.includes('corp-pull')) missed.push(`${namespace}/deployment`);
    }
    expect(missed).toEqual([]);
  });

  it('appends to a list the pod has, and never lists the secret twice', async () => {
    const others = newNamespace('adm-other-secret');
    applyNamespaceWithPods(others, { [LABEL]: 'corp' }, { imagePullSecrets: [{ name: 'own' }] });
    expect(await admittedPullSecrets(others)).toEqual({
      bare: ['own', 'corp-pull'],
      deployment: ['own', 'corp-pull'],
    });

    const already = newNamespace('adm-already');
    applyNamespaceWithPods(already, { [LABEL]: 'corp' }, { imagePullSecrets: [{ name: 'corp-pull' }] });
    expect(await admittedPullSecrets(already)).toEqual({ bare: ['corp-pull'], deployment: ['corp-pull'] });
  });

  it('adds the secret only for the listed ServiceAccounts, and never to a mirror pod', async () => {
    const namespace = newNamespace('adm-service-accounts');
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace, labels: { [LABEL]: 'corp' } },
    });
    for (const name of ['builder', 'other']) {
      serverSideApply(cluster, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
    }
    for (const name of ['builder', 'other']) {
      const created = kubectl(
        cluster,
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace },
          spec: { serviceAccountName: name, containers: [{ name: 'app', image: IMAGE }] },
        }),
      );
      expect(created.status, created.stderr).toBe(0);
    }
    expect(await podPullSecrets(namespace, 'builder')).toEqual(['corp-pull']);
    expect(await podPullSecrets(namespace, 'other')).toEqual([]);

    // A static pod's mirror may reference no secret (NodeRestriction): never touched.
    const mirror = kubectl(
      cluster,
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'mirror', namespace, annotations: { 'kubernetes.io/config.mirror': 'x' } },
        spec: { nodeName: 'no-such-node', containers: [{ name: 'app', image: IMAGE }] },
      }),
    );
    expect(mirror.status, mirror.stderr).toBe(0);
    expect(await podPullSecrets(namespace, 'mirror')).toEqual([]);
  });

  it('leaves namespaces alone that do not match, or stop matching, or are excluded', async () => {
    const unlabelled = newNamespace('adm-unlabelled');
    applyNamespaceWithPods(unlabelled, {});
    expect(await admittedPullSecrets(unlabelled)).toEqual({ bare: [], deployment: [] });

    // The selector is read at admission: relabel, and the next pods get nothing.
    const relabelled = newNamespace('adm-relabelled');
    applyNamespaceWithPods(relabelled, { [LABEL]: 'corp' });
    expect((await admittedPullSecrets(relabelled)).bare).toEqual(['corp-pull']);
    expect(kubectl(cluster, ['label', 'namespace', relabelled, `${LABEL}-`]).status).toBe(0);
    await eventually(async () => expect(await probe(relabelled)).toEqual([]));

    // Exclusions: once the API server has the new bindings (seen in a probe
    // namespace excluded too), a one-apply namespace that is excluded gets nothing.
    const excludedProbe = probeNamespace('adm-excluded-probe', { [LABEL]: 'corp' });
    const excluded = newNamespace('adm-excluded');
    const rc = await getRc('adm-corp');
    rc.spec.target.excludeNamespaces = [excluded, excludedProbe];
    applyAdmission(renderAdmissionObjects({ rc, requestedBy: [] }));
    await eventually(async () => expect(await probe(excludedProbe)).toEqual([]));
    applyNamespaceWithPods(excluded, { [LABEL]: 'corp' });
    expect(await admittedPullSecrets(excluded)).toEqual({ bare: [], deployment: [] });
    applyAdmission(corp);
    await eventually(async () => expect(await probe(excludedProbe)).toEqual(['corp-pull']));
  });

  it('gives the pods the secrets of two RegistryCredentials that target one namespace', async () => {
    applyAdmission(renderAdmissionObjects({ rc: await getRc('adm-mirror'), requestedBy: [] }));
    await eventually(async () =>
      expect((await probe('adm-probe')).sort()).toEqual(['corp-pull', 'mirror-pull']),
    );
    for (let round = 0; round < 3; round++) {
      const namespace = newNamespace(`adm-two-${round}`);
      applyNamespaceWithPods(namespace, { [LABEL]: 'corp' });
      const { bare, deployment } = await admittedPullSecrets(namespace);
      expect(bare.sort()).toEqual(['corp-pull', 'mirror-pull']);
      expect(deployment.sort()).toEqual(['corp-pull', 'mirror-pull']);
    }
    deleteAdmission('adm-mirror');
  });

  describe('without the policy, only the operator patching ServiceAccounts', () => {
    let operator: TestOperator;

    beforeAll(async () => {
      serverSideApply(cluster, registryCredential('adm-race', 'race-pull', 'race'));
      operator = startTestOperator(cluster, 'rc-admission-race');
      await eventually(() => expect(operator.ready()).toBe(true));
    });

    afterAll(async () => {
      await operator?.stop();
    });

    it(`measures how often a pod misses the secret in ${ROUNDS} one-apply rounds`, async () => {
      expect(
        kubectl(cluster, [
          'get',
          'mutatingadmissionpolicies',
          '-l',
          admissionObjectsSelector('adm-race'),
          '-o',
          'name',
        ]).stdout,
      ).toBe('');
      let bareMissed = 0;
      let deploymentMissed = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const namespace = newNamespace(`adm-off-${round}`);
        applyNamespaceWithPods(namespace, { [LABEL]: 'race' });
        const { bare, deployment } = await admittedPullSecrets(namespace);
        if (!bare.includes('race-pull')) bareMissed++;
        if (!deployment.includes('race-pull')) deploymentMissed++;
        // The operator did its part: the ServiceAccount lists the secret, only too late for some pods.
        await eventually(async () => {
          const sa = await client.get<ServiceAccount>(Resources.serviceAccounts, 'default', namespace);
          expect((sa?.imagePullSecrets ?? []).map((e) => e.name)).toContain('race-pull');
        });
      }
      process.stderr.write(
        `[admission] without the policy, ${ROUNDS} rounds: the bare Pod missed the secret ${bareMissed}/${ROUNDS}, ` +
          `the Deployment's pod ${deploymentMissed}/${ROUNDS}\n`,
      );
    });
  });
});
