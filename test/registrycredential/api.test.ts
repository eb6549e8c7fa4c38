/**
 * RegistryCredential against the real API server, controller manager
 * (garbage collector, ServiceAccount controller) and audit log: hundreds of
 * namespaces, new and relabelled namespaces, rotation, conflicts with a
 * user's secret, ServiceAccount merges and their cleanup, broken sources, the
 * PrePulledImage link, a quiet steady state, and no secret anywhere it must
 * not be.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Secret, ServiceAccount } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { USER_AGENT } from '../../src/operator/manager.ts';
import { auditedRequests, inNamespaceGoing, liveNamespaces } from '../support/audit.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));

const SOURCE_NS = 'rc-source';
const SCALE = 300;
const SCALE_LABEL = 'rc-test/pull';
/** Namespaces whose PrePulledImages the `scale` RegistryCredential serves. */
const REQUESTS_LABEL = 'rc-test/requests';
const REGISTRY = 'registry.example.com';
const USER = 'robot';
/** Every password this file ever puts in a source: none may show up where it must not. */
const passwords = [1, 2, 3].map((i) => `pw${i}-${randomBytes(9).toString('hex')}`);
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A dockerconfigjson for REGISTRY, and what must never leak of it. */
function dockerConfig(password: string): string {
  return JSON.stringify({
    auths: { [REGISTRY]: { username: USER, password, auth: b64(`${USER}:${password}`) } },
  });
}

const apply = (object: unknown) => serverSideApply(cluster, object);

/** The source secret, dressed like one Argo CD and Flux manage: none of this may reach the copies. */
function sourceSecret(name: string, type: string, data: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: SOURCE_NS,
      labels: {
        'app.kubernetes.io/instance': 'platform-secrets',
        'kustomize.toolkit.fluxcd.io/name': 'platform',
        'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
      },
      annotations: {
        'argocd.argoproj.io/tracking-id': 'platform:/Secret:rc-source/corp-pull',
        'argocd.argoproj.io/sync-options': 'Prune=false',
      },
    },
    type,
    data,
  };
}

function registryCredential(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'prepull.dev/v1alpha1', kind: 'RegistryCredential', metadata: { name }, spec };
}

function namespace(name: string, labels: Record<string, string> = {}): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

async function getRc(name: string): Promise<RegistryCredential> {
  const rc = await client.get<RegistryCredential>(Resources.registryCredentials, name);
  if (!rc) throw new Error(`RegistryCredential ${name} not found`);
  return rc;
}

/** The CredentialsResolved condition of a PrePulledImage in rc-ppi. */
async function credentialsCondition(name: string) {
  const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, name, 'rc-ppi');
  return ppi?.status?.conditions?.find((c) => c.type === 'CredentialsResolved');
}

function condition(rc: RegistryCredential, type: string) {
  return rc.status?.conditions?.find((c) => c.type === type);
}

/** Waits for `synced n/n`, Ready, at the current generation. */
async function expectSynced(name: string, n: number, timeoutMs = 60_000): Promise<RegistryCredential> {
  let rc: RegistryCredential | undefined;
  await eventually(async () => {
    rc = await getRc(name);
    expect(rc.status?.observedGeneration).toBe(rc.metadata.generation);
    expect(rc.status?.synced).toBe(`${n}/${n}`);
    expect(condition(rc, 'Ready')).toMatchObject({
      status: 'True',
      observedGeneration: rc.metadata.generation,
    });
  }, timeoutMs);
  return rc!;
}

async function expectStalled(name: string, reason: string, text: string): Promise<RegistryCredential> {
  let rc: RegistryCredential | undefined;
  await eventually(async () => {
    rc = await getRc(name);
    expect(condition(rc, 'Stalled')).toMatchObject({ status: 'True', reason });
    expect(condition(rc, 'Ready')).toMatchObject({ status: 'False', reason });
    expect(condition(rc, 'Stalled')?.message).toContain(text);
  });
  return rc!;
}

async function copies(rcName: string): Promise<Secret[]> {
  const list = await client.list<Secret>(Resources.secrets, {
    labelSelector: `app.kubernetes.io/managed-by=prepull,prepull.dev/registrycredential=${rcName}`,
  });
  return list.items;
}

async function secretData(ns: string, name: string): Promise<string | undefined> {
  return (await client.get<Secret>(Resources.secrets, name, ns))?.data?.['.dockerconfigjson'];
}

async function pullSecretsOf(ns: string, sa: string): Promise<string[] | undefined> {
  const found = await client.get<ServiceAccount>(Resources.serviceAccounts, sa, ns);
  return found ? (found.imagePullSecrets ?? []).map((e) => e.name) : undefined;
}

/** Events about a cluster-scoped object land in `default`. */
function eventsAbout(name: string): Array<{ type: string; reason: string; message: string }> {
  const out = kubectl(cluster, ['get', 'events', '-n', 'default', '-o', 'json']);
  const items = JSON.parse(out.stdout).items as Array<{
    type: string;
    reason: string;
    message?: string;
    note?: string;
    involvedObject: { kind: string; name: string };
  }>;
  return items
    .filter((e) => e.involvedObject.kind === 'RegistryCredential' && e.involvedObject.name === name)
    .map((e) => ({ type: e.type, reason: e.reason, message: e.message ?? e.note ?? '' }));
}

const scaleNamespaces = Array.from({ length: SCALE }, (_, i) => `rc-scale-${String(i).padStart(3, '0')}`);

describe('RegistryCredential against the real API server', () => {
  let operator: TestOperator;
  /** Target namespaces of `scale` now; each test keeps it right. */
  let scaleTargets = SCALE;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    apply(namespace(SOURCE_NS));
    apply(
      sourceSecret('corp-pull', 'kubernetes.io/dockerconfigjson', {
        '.dockerconfigjson': b64(dockerConfig(passwords[0]!)),
      }),
    );
    // One request for all of them, as a GitOps tool would.
    apply({
      apiVersion: 'v1',
      kind: 'List',
      items: scaleNamespaces.map((n) => namespace(n, { [SCALE_LABEL]: 'yes' })),
    });
    operator = startTestOperator(cluster, 'rc-api');
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it(`syncs the secret into ${SCALE} namespaces, visible in kubectl get regcred`, async () => {
    apply(
      registryCredential('scale', {
        source: { secretRef: { namespace: SOURCE_NS, name: 'corp-pull' } },
        target: {
          secretName: 'corp-pull',
          namespaceSelector: { matchLabels: { [SCALE_LABEL]: 'yes' } },
          allowRequestsFrom: { namespaceSelector: { matchLabels: { [REQUESTS_LABEL]: 'allowed' } } },
        },
      }),
    );
    const rc = await expectSynced('scale', SCALE, 120_000);
    const source = await client.get<Secret>(Resources.secrets, 'corp-pull', SOURCE_NS);
    expect(rc.status).toMatchObject({
      desiredNamespaces: SCALE,
      syncedNamespaces: SCALE,
      failedNamespaces: 0,
      failures: [],
      sourceResourceVersion: source?.metadata.resourceVersion,
    });
    expect(condition(rc, 'Reconciling')?.status).toBe('False');
    expect(condition(rc, 'Stalled')?.status).toBe('False');
    const found = await copies('scale');
    expect(found.map((s) => s.metadata.namespace).sort()).toEqual(scaleNamespaces);
    for (const copy of found) {
      expect(copy.type).toBe('kubernetes.io/dockerconfigjson');
      expect(copy.data?.['.dockerconfigjson']).toBe(source?.data?.['.dockerconfigjson']);
      expect(copy.metadata.ownerReferences).toEqual([
        {
          apiVersion: 'prepull.dev/v1alpha1',
          kind: 'RegistryCredential',
          name: 'scale',
          uid: rc.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
    const table = kubectl(cluster, ['get', 'regcred', 'scale']);
    expect(table.stdout).toMatch(/NAME\s+SYNCED\s+STATUS\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`scale\\s+${SCALE}/${SCALE}\\s+AllNamespacesSynced`));
    expect(eventsAbout('scale')).toContainEqual(
      expect.objectContaining({ type: 'Normal', reason: 'Synced' }),
    );
  });

  it("gives the copies none of the source's labels or annotations (no Argo CD or Flux tracking)", async () => {
    const copy = await client.get<Secret>(Resources.secrets, 'corp-pull', scaleNamespaces[0]);
    expect(copy?.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'prepull',
      'prepull.dev/registrycredential': 'scale',
    });
    expect(Object.keys(copy?.metadata.annotations ?? {})).toEqual(['prepull.dev/content-hash']);
  });

  it('gives a new namespace its secret, and takes it from a namespace that stops matching', async () => {
    apply(namespace('rc-new', { [SCALE_LABEL]: 'yes' }));
    await eventually(async () => expect(await secretData('rc-new', 'corp-pull')).toBeDefined());
    await expectSynced('scale', ++scaleTargets);

    expect(kubectl(cluster, ['label', 'namespace', 'rc-new', `${SCALE_LABEL}-`]).status).toBe(0);
    await eventually(async () => expect(await secretData('rc-new', 'corp-pull')).toBeUndefined());
    await expectSynced('scale', --scaleTargets);
  });

  it('restores a deleted copy and an edited one', async () => {
    const good = await secretData(scaleNamespaces[1]!, 'corp-pull');
    expect(kubectl(cluster, ['delete', 'secret', 'corp-pull', '-n', scaleNamespaces[0]!]).status).toBe(0);
    const edited = kubectl(cluster, [
      'patch',
      'secret',
      'corp-pull',
      '-n',
      scaleNamespaces[1]!,
      '--type=merge',
      '-p',
      JSON.stringify({ data: { '.dockerconfigjson': b64('{"auths":{}}') } }),
    ]);
    expect(edited.status, edited.stderr).toBe(0);
    await eventually(async () => {
      expect(await secretData(scaleNamespaces[0]!, 'corp-pull')).toBe(good);
      expect(await secretData(scaleNamespaces[1]!, 'corp-pull')).toBe(good);
    });
  });

  it('propagates a rotated source to every copy', async () => {
    apply(
      sourceSecret('corp-pull', 'kubernetes.io/dockerconfigjson', {
        '.dockerconfigjson': b64(dockerConfig(passwords[1]!)),
      }),
    );
    const rotated = b64(dockerConfig(passwords[1]!));
    await eventually(async () => {
      const found = await copies('scale');
      expect(found).toHaveLength(scaleTargets);
      expect(
        found.filter((s) => s.data?.['.dockerconfigjson'] !== rotated).map((s) => s.metadata.namespace),
      ).toEqual([]);
    });
    const source = await client.get<Secret>(Resources.secrets, 'corp-pull', SOURCE_NS);
    await eventually(async () =>
      expect((await getRc('scale')).status?.sourceResourceVersion).toBe(source?.metadata.resourceVersion),
    );
  });

  it("reports a user's secret of the same name as a Conflict and never touches it", async () => {
    apply(namespace('rc-conflict'));
    apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'corp-pull', namespace: 'rc-conflict', labels: { owner: 'user' } },
      type: 'Opaque',
      data: { token: b64('users-own') },
    });
    const before = await client.get<Secret>(Resources.secrets, 'corp-pull', 'rc-conflict');
    expect(kubectl(cluster, ['label', 'namespace', 'rc-conflict', `${SCALE_LABEL}=yes`]).status).toBe(0);
    scaleTargets++;
    await eventually(async () => {
      const rc = await getRc('scale');
      expect(rc.status?.failures).toEqual([
        expect.objectContaining({ namespace: 'rc-conflict', reason: 'Conflict' }),
      ]);
      expect(rc.status?.failedNamespaces).toBe(1);
      expect(rc.status?.synced).toBe(`${scaleTargets - 1}/${scaleTargets}`);
      expect(condition(rc, 'Stalled')).toMatchObject({ status: 'True', reason: 'Conflict' });
      expect(condition(rc, 'Ready')).toMatchObject({ status: 'False', reason: 'Conflict' });
    });
    expect(eventsAbout('scale')).toContainEqual(
      expect.objectContaining({ type: 'Warning', reason: 'Conflict' }),
    );
    const after = await client.get<Secret>(Resources.secrets, 'corp-pull', 'rc-conflict');
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    expect(after).toMatchObject({ type: 'Opaque', data: { token: b64('users-own') } });

    // Once the user's secret goes, the copy takes its place.
    expect(kubectl(cluster, ['delete', 'secret', 'corp-pull', '-n', 'rc-conflict']).status).toBe(0);
    await expectSynced('scale', scaleTargets);
    expect((await client.get<Secret>(Resources.secrets, 'corp-pull', 'rc-conflict'))?.type).toBe(
      'kubernetes.io/dockerconfigjson',
    );
  });

  it('puts the secret where a PrePulledImage names the RegistryCredential only if allowRequestsFrom allows it, and takes it away with it', async () => {
    apply(namespace('rc-ppi'));
    const before = await operator.reconcileCounts('registrycredential');
    apply({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'needs-pull', namespace: 'rc-ppi' },
      spec: {
        images: [{ image: `${REGISTRY}/team/app:1.0` }],
        nodeSelector: { 'rc-test/no-such-node': 'x' },
        registryCredentials: [{ name: 'scale' }],
      },
    });
    // The request is seen and refused, the PrePulledImage says so: the namespace is not allowed yet.
    await eventually(async () =>
      expect((await operator.reconcileCounts('registrycredential')).total).toBeGreaterThan(before.total),
    );
    await eventually(async () =>
      expect(await credentialsCondition('needs-pull')).toMatchObject({
        status: 'False',
        reason: 'RegistryCredentialNotAllowed',
        message: expect.stringContaining(
          'RegistryCredential scale does not allow requests from namespace rc-ppi',
        ),
      }),
    );
    await expectSynced('scale', scaleTargets);
    expect(await secretData('rc-ppi', 'corp-pull')).toBeUndefined();

    expect(kubectl(cluster, ['label', 'namespace', 'rc-ppi', `${REQUESTS_LABEL}=allowed`]).status).toBe(0);
    await eventually(async () => expect(await secretData('rc-ppi', 'corp-pull')).toBeDefined());
    await eventually(async () =>
      expect(await credentialsCondition('needs-pull')).toMatchObject({
        status: 'True',
        reason: 'CredentialsResolved',
      }),
    );
    await expectSynced('scale', scaleTargets + 1);
    expect(kubectl(cluster, ['delete', 'ppi', 'needs-pull', '-n', 'rc-ppi', '--wait=false']).status).toBe(0);
    await eventually(async () => expect(await secretData('rc-ppi', 'corp-pull')).toBeUndefined());
    await expectSynced('scale', scaleTargets);
  });

  it('warns on a PrePulledImage naming a pull secret or RegistryCredential that does not exist, without failing it or looping', async () => {
    apply({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'names-nothing', namespace: 'rc-ppi' },
      spec: {
        images: [{ image: `${REGISTRY}/team/app:1.0` }],
        nodeSelector: { 'rc-test/no-such-node': 'x' },
        imagePullSecrets: [{ name: 'not-yet' }],
        registryCredentials: [{ name: 'no-such-credential' }],
      },
    });
    await eventually(async () => {
      const warning = await credentialsCondition('names-nothing');
      expect(warning).toMatchObject({ status: 'False', reason: 'PullSecretNotFound' });
      expect(warning?.message).toContain(
        'pull secret not-yet (spec.imagePullSecrets) does not exist in namespace rc-ppi',
      );
      expect(warning?.message).toContain('RegistryCredential no-such-credential does not exist');
    });
    // The secret's own watch brings the object back when it appears.
    apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'not-yet', namespace: 'rc-ppi' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': b64(dockerConfig(passwords[0]!)) },
    });
    await eventually(async () =>
      expect(await credentialsCondition('names-nothing')).toMatchObject({
        status: 'False',
        reason: 'RegistryCredentialNotFound',
        message: expect.not.stringContaining('not-yet'),
      }),
    );
    const ppi = await client.get<PrePulledImage>(Resources.prePulledImages, 'names-nothing', 'rc-ppi');
    const ready = ppi?.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.reason).not.toMatch(/RegistryCredential/);
    const before = await operator.reconcileCounts('prepulledimage');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await operator.reconcileCounts('prepulledimage')).total - before.total).toBeLessThan(5);
    expect(kubectl(cluster, ['delete', 'ppi', 'names-nothing', '-n', 'rc-ppi', '--wait=false']).status).toBe(
      0,
    );
  });

  describe('ServiceAccounts', () => {
    beforeAll(async () => {
      apply(namespace('rc-sa'));
      apply(namespace('rc-sa2'));
      // Someone else's entry, there before us.
      await eventually(async () => expect(await pullSecretsOf('rc-sa', 'default')).toBeDefined());
      const patched = kubectl(cluster, [
        'patch',
        'serviceaccount',
        'default',
        '-n',
        'rc-sa',
        '--type=merge',
        '-p',
        JSON.stringify({ imagePullSecrets: [{ name: 'theirs' }] }),
      ]);
      expect(patched.status, patched.stderr).toBe(0);
      await eventually(async () => expect(await pullSecretsOf('rc-sa2', 'default')).toBeDefined());
    });

    it("adds the secret to the named ServiceAccounts, after others' entries, with a cleanup finalizer", async () => {
      apply(
        registryCredential('sa', {
          source: { secretRef: { namespace: SOURCE_NS, name: 'corp-pull' } },
          target: { secretName: 'sa-pull', namespaces: ['rc-sa', 'rc-sa2'] },
          serviceAccounts: ['default', 'builder'],
        }),
      );
      await expectSynced('sa', 2);
      expect(await pullSecretsOf('rc-sa', 'default')).toEqual(['theirs', 'sa-pull']);
      expect(await pullSecretsOf('rc-sa2', 'default')).toEqual(['sa-pull']);
      expect((await getRc('sa')).metadata.finalizers).toEqual(['prepull.dev/cleanup']);
    });

    it('patches a ServiceAccount created later, and keeps entries others add meanwhile', async () => {
      apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'builder', namespace: 'rc-sa' } });
      await eventually(async () => expect(await pullSecretsOf('rc-sa', 'builder')).toEqual(['sa-pull']));
      const sa = await client.get<ServiceAccount>(Resources.serviceAccounts, 'default', 'rc-sa');
      const added = kubectl(
        cluster,
        ['replace', '-f', '-'],
        JSON.stringify({ ...sa, imagePullSecrets: [...(sa?.imagePullSecrets ?? []), { name: 'another' }] }),
      );
      expect(added.status, added.stderr).toBe(0);
      // Removing our entry gets it put back; the others stay.
      const removed = kubectl(cluster, [
        'patch',
        'serviceaccount',
        'builder',
        '-n',
        'rc-sa',
        '--type=json',
        '-p',
        JSON.stringify([{ op: 'replace', path: '/imagePullSecrets', value: [{ name: 'mine' }] }]),
      ]);
      expect(removed.status, removed.stderr).toBe(0);
      await eventually(async () => {
        expect(await pullSecretsOf('rc-sa', 'default')).toEqual(['theirs', 'sa-pull', 'another']);
        expect(await pullSecretsOf('rc-sa', 'builder')).toEqual(['mine', 'sa-pull']);
      });
    });

    it('takes its entry off again where a namespace stops being a target', async () => {
      apply(
        registryCredential('sa', {
          source: { secretRef: { namespace: SOURCE_NS, name: 'corp-pull' } },
          target: { secretName: 'sa-pull', namespaces: ['rc-sa'] },
          serviceAccounts: ['default', 'builder'],
        }),
      );
      await expectSynced('sa', 1);
      await eventually(async () => {
        expect(await pullSecretsOf('rc-sa2', 'default')).toEqual([]);
        expect(await secretData('rc-sa2', 'sa-pull')).toBeUndefined();
      });
    });

    it('removes its entries and then the finalizer when deleted; the garbage collector takes the copies', async () => {
      // No --wait: kubectl blocks this process, and the operator runs in it and must remove the finalizer.
      expect(kubectl(cluster, ['delete', 'regcred', 'sa', '--wait=false']).status).toBe(0);
      await eventually(async () => {
        expect(await client.get(Resources.registryCredentials, 'sa')).toBeUndefined();
        expect(await pullSecretsOf('rc-sa', 'default')).toEqual(['theirs', 'another']);
        expect(await pullSecretsOf('rc-sa', 'builder')).toEqual(['mine']);
        expect(await secretData('rc-sa', 'sa-pull')).toBeUndefined();
      });
      const sa = await client.get<ServiceAccount>(Resources.serviceAccounts, 'default', 'rc-sa');
      expect(sa?.metadata.annotations?.['prepull.dev/added-image-pull-secrets']).toBeUndefined();
    });
  });

  describe('a broken source', () => {
    const spec = (name: string, registry?: string) => ({
      source: { secretRef: { namespace: SOURCE_NS, name }, ...(registry ? { registry } : {}) },
      target: { secretName: 'broken-pull', namespaces: ['rc-broken'] },
    });

    beforeAll(() => apply(namespace('rc-broken')));

    it('is Stalled with SourceNotFound while the source is missing, without a retry storm', async () => {
      apply(registryCredential('broken', spec('later')));
      await expectStalled('broken', 'SourceNotFound', `source secret ${SOURCE_NS}/later not found`);
      expect(eventsAbout('broken')).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'SourceNotFound' }),
      );
      const before = await operator.reconcileCounts('registrycredential');
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      const after = await operator.reconcileCounts('registrycredential');
      // It waits for the source's informer to say something changed.
      expect(after.errors - before.errors).toBe(0);
      expect(after.total - before.total).toBeLessThan(5);
    });

    it('recovers once the source appears', async () => {
      apply(
        sourceSecret('later', 'kubernetes.io/dockerconfigjson', {
          '.dockerconfigjson': b64(dockerConfig(passwords[2]!)),
        }),
      );
      await expectSynced('broken', 1);
      expect(await secretData('rc-broken', 'broken-pull')).toBe(b64(dockerConfig(passwords[2]!)));
      expect(condition(await getRc('broken'), 'Stalled')?.status).toBe('False');
    });

    it('is SourceInvalid for a dockerconfigjson without "auths" (the legacy .dockercfg shape), keeping the last good copy', async () => {
      // The API server itself refuses a dockerconfigjson that is not JSON; a wrong shape gets through.
      const legacy = {
        [REGISTRY]: { username: USER, password: passwords[2], auth: b64(`${USER}:${passwords[2]}`) },
      };
      apply(
        sourceSecret('later', 'kubernetes.io/dockerconfigjson', {
          '.dockerconfigjson': b64(JSON.stringify(legacy)),
        }),
      );
      await expectStalled('broken', 'SourceInvalid', 'has no "auths" object');
      expect(await secretData('rc-broken', 'broken-pull')).toBe(b64(dockerConfig(passwords[2]!)));
    });

    it("is SourceInvalid for a workstation's config.json, whose credentials are in a credsStore", async () => {
      const laptop = { auths: { [REGISTRY]: {} }, credsStore: 'desktop' };
      apply(
        sourceSecret('later', 'kubernetes.io/dockerconfigjson', {
          '.dockerconfigjson': b64(JSON.stringify(laptop)),
        }),
      );
      await expectStalled('broken', 'SourceInvalid', '1 of 1 entries under "auths" carry no credentials');
      expect(condition(await getRc('broken'), 'Stalled')?.message).toContain('which the kubelet never runs');
      expect(await secretData('rc-broken', 'broken-pull')).toBe(b64(dockerConfig(passwords[2]!)));
    });

    it('is SourceInvalid for a secret of the wrong type', async () => {
      // A secret's type is immutable: the user replaces it.
      expect(kubectl(cluster, ['delete', 'secret', 'later', '-n', SOURCE_NS]).status).toBe(0);
      apply(sourceSecret('later', 'Opaque', { password: b64(passwords[2]!) }));
      await expectStalled('broken', 'SourceInvalid', 'has type Opaque');
    });

    it('is SourceInvalid for basic-auth without spec.source.registry, and converts it once the registry is named', async () => {
      expect(kubectl(cluster, ['delete', 'secret', 'later', '-n', SOURCE_NS]).status).toBe(0);
      apply(
        sourceSecret('later', 'kubernetes.io/basic-auth', {
          username: b64(USER),
          password: b64(passwords[2]!),
        }),
      );
      await expectStalled('broken', 'SourceInvalid', 'spec.source.registry must name the registry host');
      apply(registryCredential('broken', spec('later', REGISTRY)));
      await expectSynced('broken', 1);
      const data = await secretData('rc-broken', 'broken-pull');
      const config = JSON.parse(Buffer.from(data ?? '', 'base64').toString('utf8'));
      expect(config.auths[REGISTRY].auth).toBe(b64(`${USER}:${passwords[2]}`));
      expect(eventsAbout('broken')).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'SourceInvalid' }),
      );
    });
  });

  it('removes the copies through the garbage collector when a RegistryCredential is deleted', async () => {
    expect(await copies('broken')).toHaveLength(1);
    expect(kubectl(cluster, ['delete', 'regcred', 'broken', '--wait=false']).status).toBe(0);
    await eventually(async () => {
      expect(await client.get(Resources.registryCredentials, 'broken')).toBeUndefined();
      expect(await copies('broken')).toEqual([]);
    }, 120_000);
  });

  it('issues no API requests at steady state, as the audit log of the API server shows', async () => {
    await expectSynced('scale', scaleTargets);
    // Let the last writes land, then look at a quiet window.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const since = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    // Requests about another file's namespace, still going away, do not count.
    const live = await liveNamespaces(client);
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, since).filter(
      (r) => r.verb !== 'watch' && !inNamespaceGoing(r, live),
    );
    expect(requests).toEqual([]);
    expect(auditedRequests(cluster.auditLog, USER_AGENT).some((r) => r.uri.includes('/secrets'))).toBe(true);
  });

  it('never puts a password or auth string in its log, in status or in Events', () => {
    const forbidden = passwords.flatMap((p) => [p, b64(p), b64(`${USER}:${p}`), b64(dockerConfig(p))]);
    const places = {
      log: operator.logLines(),
      status: kubectl(cluster, ['get', 'regcred', '-o', 'yaml']).stdout.split('\n'),
      events: kubectl(cluster, ['get', 'events', '-A', '-o', 'yaml']).stdout.split('\n'),
    };
    expect(places.log.length).toBeGreaterThan(0);
    for (const [place, lines] of Object.entries(places)) {
      const leaks = lines.filter((line) => forbidden.some((secret) => line.includes(secret)));
      expect(leaks, `secret material in the ${place}`).toEqual([]);
    }
  });
});
