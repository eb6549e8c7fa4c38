/**
 * RegistryCredential spec.nodes on the real node, end to end: the operator
 * keeps the node copy, the node agent (deploy/agent.yaml's DaemonSet, from
 * the Prepull image) merges it into the kubelet's config.json in its root
 * directory, next to an entry someone else put there, and a pod with no
 * imagePullSecrets at all pulls from the password-protected registry. The
 * password rotates and the file follows; the object goes and the file is
 * byte-for-byte what it was, and the same pull fails again.
 *
 * The kubelet caches what it read from config.json for 5 minutes
 * (credentialprovider.NewDefaultDockerKeyring, Lifetime 5m; an empty read is
 * cached too). So the file changes within seconds, but a pull sees the
 * change only once that cache has expired. Rather than wait for that, the
 * tier restarts the kubelet (the harness's control endpoint; node and pods
 * stay) where a pull must see the file as it is now, and the rotation is
 * done the way rotations are: the registry accepts the old and the new
 * credentials during the overlap, so the next pull works with whichever the
 * kubelet still holds, and once the old ones are revoked the new ones work.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { nodeCopyName } from '../../src/agent/nodecreds/protocol.ts';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { ContainerState, Pod, Secret } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { REGISTRY_USER, writeHtpasswd } from '../harness/registry.ts';
import { type NodeAgent, startNodeAgent } from '../support/agent.ts';
import { eventually } from '../support/eventually.ts';
import { pushFreshImage } from '../support/fresh-image.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAME = 'node-credentials';
const SOURCE_NS = 'nodecreds-source';
/** Where the namespace copy goes (a RegistryCredential always has one); the pods run elsewhere. */
const COPY_NS = 'nodecreds-copy';
const APP_NS = 'nodecreds-app';
const REGISTRY_DIR = join(cluster.dir, 'registry');
/** The harness's kubelet runs with --root-dir here (test/harness/node.ts): its config.json is read first. */
const CONFIG = join(cluster.dir, 'node', 'kubelet', 'config.json');
/** Someone else's node credentials, in docker's own tab-indented style: they must survive byte for byte. */
const THEIRS =
  '{\n\t"auths": {\n\t\t"other.registry.invalid": {\n\t\t\t"auth": "b3RoZXI6c2VjcmV0"\n\t\t}\n\t},\n\t"HttpHeaders": {\n\t\t"User-Agent": "node-admin"\n\t}\n}\n';
const ROTATED_USER = `${REGISTRY_USER}-next`;
const ROTATED_PASSWORD = `rotated-${randomBytes(9).toString('hex')}`;

const authOf = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

function applySource(user: string, password: string): void {
  const rendered = kubectl(cluster, [
    'create',
    'secret',
    'docker-registry',
    'registry',
    '-n',
    SOURCE_NS,
    `--docker-server=${registry.host}`,
    `--docker-username=${user}`,
    `--docker-password=${password}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  expect(rendered.status, rendered.stderr).toBe(0);
  serverSideApply(cluster, JSON.parse(rendered.stdout));
}

/** The registry's users (it re-reads htpasswd when it changes): both during a rotation's overlap. */
function acceptUsers(users: Array<[string, string]>): void {
  const line = ([user, password]: [string, string]) =>
    execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }).trim();
  writeFileSync(join(REGISTRY_DIR, 'htpasswd'), `${users.map(line).join('\n')}\n`);
}

/** Restarts the kubelet, so that its next pull reads config.json as it is now (its 5-minute cache starts empty). */
async function restartKubelet(): Promise<void> {
  const done = await fetch(`${cluster.controlUrl}/restart/kubelet`, { method: 'POST' });
  expect(done.status, await done.text()).toBe(204);
}

/** A pod on the real node with no imagePullSecrets (nor any on its ServiceAccount) pulling the private image. */
function createPod(name: string): void {
  serverSideApply(cluster, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: APP_NS },
    spec: {
      nodeSelector: { 'prepull.dev/test-node': 'real' },
      containers: [{ name: 'app', image, imagePullPolicy: 'Always' }],
      terminationGracePeriodSeconds: 1,
    },
  });
}

async function podState(name: string): Promise<ContainerState | undefined> {
  const pod = await client.get<Pod>(Resources.pods, name, APP_NS);
  expect(pod?.spec.imagePullSecrets ?? []).toEqual([]);
  return pod?.status?.containerStatuses?.[0]?.state;
}

/** Waits until the pod runs or its pull failed; returns which. */
async function pullOutcome(name: string): Promise<ContainerState> {
  let state: ContainerState | undefined;
  await eventually(async () => {
    state = await podState(name);
    expect(
      state?.running ?? /^(ErrImagePull|ImagePullBackOff)$/.exec(state?.waiting?.reason ?? ''),
    ).toBeTruthy();
  }, 120_000);
  return state!;
}

/**
 * The private image the pods pull: one of this run's own. An image the kubelet
 * pulls with node credentials is recorded as open to every pod on the node, so
 * a shared harness image would stay open to pods of later tiers.
 */
let image = '';

const UNAUTHORIZED = /unauthori[sz]ed|\b401\b|authorization failed|denied/i;

async function credential(): Promise<RegistryCredential | undefined> {
  return client.get<RegistryCredential>(Resources.registryCredentials, NAME);
}

function configAuth(): string | undefined {
  if (!existsSync(CONFIG)) return undefined;
  return JSON.parse(readFileSync(CONFIG, 'utf8')).auths?.[registry.host]?.auth;
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.skipIf(!cluster.node)(
  "RegistryCredential spec.nodes: the kubelet's config.json on the real node",
  () => {
    let operator: TestOperator;
    let agent: NodeAgent | undefined;
    let original: string | undefined;

    beforeAll(async () => {
      expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
      for (const ns of [SOURCE_NS, COPY_NS, APP_NS]) {
        serverSideApply(cluster, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      }
      applySource(REGISTRY_USER, registry.password);
      image = await pushFreshImage(cluster, 'prepull-test/nodecreds');
      original = existsSync(CONFIG) ? readFileSync(CONFIG, 'utf8') : undefined;
      writeFileSync(CONFIG, THEIRS, { mode: 0o600 });
      operator = startTestOperator(cluster, 'nodecreds-real');
      await eventually(() => expect(operator.ready()).toBe(true));
      agent = await startNodeAgent(cluster);
    });

    afterAll(async () => {
      kubectl(cluster, ['delete', 'regcred', NAME, '--ignore-not-found']);
      // Later files pull with the harness's password only.
      writeHtpasswd(REGISTRY_DIR, registry.password);
      await agent?.stop();
      await operator?.stop();
      if (original === undefined) rmSync(CONFIG, { force: true });
      else writeFileSync(CONFIG, original, { mode: 0o600 });
      kubectl(cluster, ['delete', 'namespace', SOURCE_NS, COPY_NS, APP_NS, '--wait=false']);
    });

    it('without it, a pod with no imagePullSecrets cannot pull the private image', async () => {
      createPod('before');
      const state = await pullOutcome('before');
      expect(state.running).toBeUndefined();
      expect(state.waiting?.message).toMatch(UNAUTHORIZED);
      kubectl(cluster, ['delete', 'pod', 'before', '-n', APP_NS, '--wait=false']);
    });

    it("merges the credentials into config.json beside the node's own entries, and the pod pulls", async () => {
      serverSideApply(cluster, {
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'RegistryCredential',
        metadata: { name: NAME },
        spec: {
          source: { secretRef: { namespace: SOURCE_NS, name: 'registry' } },
          target: { secretName: 'registry-pull', namespaces: [COPY_NS] },
          nodes: { nodeSelector: { matchLabels: { 'prepull.dev/test-node': 'real' } } },
        },
      });
      await eventually(async () => {
        const status = (await credential())?.status;
        expect(status?.nodes).toMatchObject({ applied: '1/1', appliedNodes: 1 });
        expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      });
      expect(configAuth()).toBe(authOf(REGISTRY_USER, registry.password));
      const text = readFileSync(CONFIG, 'utf8');
      // Their entry and their other key, exactly as they wrote them.
      expect(text).toContain('\t\t"other.registry.invalid": {\n\t\t\t"auth": "b3RoZXI6c2VjcmV0"\n\t\t}');
      expect(text).toContain('\t"HttpHeaders": {\n\t\t"User-Agent": "node-admin"\n\t}');
      expect(mode(CONFIG)).toBe('600');

      // The kubelet cached the empty read of the pull above: a restart makes it read the file now.
      await restartKubelet();
      createPod('node-credentials');
      await eventually(async () => expect((await podState('node-credentials'))?.running).toBeDefined());
    });

    it('follows a rotation within seconds: the next pull works during the overlap, and with the new credentials only', async () => {
      acceptUsers([
        [REGISTRY_USER, registry.password],
        [ROTATED_USER, ROTATED_PASSWORD],
      ]);
      applySource(ROTATED_USER, ROTATED_PASSWORD);
      await eventually(async () => {
        expect(configAuth()).toBe(authOf(ROTATED_USER, ROTATED_PASSWORD));
        expect((await credential())?.status?.nodes?.applied).toBe('1/1');
      });
      expect(mode(CONFIG)).toBe('600');
      // The kubelet may still hold the old credentials (for up to 5 minutes): the overlap covers it.
      createPod('after-rotation');
      await eventually(async () => expect((await podState('after-rotation'))?.running).toBeDefined());
      // The old ones revoked, and the kubelet past its cache: the new ones from config.json work.
      acceptUsers([[ROTATED_USER, ROTATED_PASSWORD]]);
      await restartKubelet();
      createPod('new-credentials-only');
      await eventually(async () => expect((await podState('new-credentials-only'))?.running).toBeDefined());
    });

    it('removes exactly what it added when the object goes: the file is as it was, and the pull fails again', async () => {
      kubectl(cluster, ['delete', 'regcred', NAME, '--wait=true']);
      await eventually(async () => {
        expect(readFileSync(CONFIG, 'utf8')).toBe(THEIRS);
        expect(
          await client.get<Secret>(Resources.secrets, nodeCopyName(NAME), 'prepull-system'),
        ).toBeUndefined();
      });
      expect(mode(CONFIG)).toBe('600');
      // The kubelet would keep the credentials it read for up to 5 minutes: a restart ends that.
      await restartKubelet();
      createPod('after-delete');
      const state = await pullOutcome('after-delete');
      expect(state.running).toBeUndefined();
      expect(state.waiting?.message).toMatch(UNAUTHORIZED);
    });

    it('never shows the credentials in logs, status, Events, annotations or pod args', () => {
      const everywhere = [
        ...operator.logLines(),
        kubectl(cluster, [
          'logs',
          '-n',
          'prepull-system',
          '-l',
          'app.kubernetes.io/component=agent',
          '--tail=-1',
        ]).stdout,
        kubectl(cluster, ['get', 'regcred', '-o', 'yaml']).stdout,
        kubectl(cluster, ['get', 'events', '-A', '-o', 'yaml']).stdout,
        kubectl(cluster, ['get', 'pods', '-n', 'prepull-system', '-o', 'yaml']).stdout,
      ].join('\n');
      for (const secret of [
        registry.password,
        ROTATED_PASSWORD,
        authOf(REGISTRY_USER, registry.password),
        authOf(ROTATED_USER, ROTATED_PASSWORD),
      ]) {
        expect(everywhere).not.toContain(secret);
      }
    });
  },
);
