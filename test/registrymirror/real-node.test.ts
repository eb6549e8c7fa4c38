/**
 * RegistryMirror on the real node, end to end as a user sees it (containerd
 * 2.x, or 1.6 with PREPULL_TEST_RUNTIME=containerd16): the operator and the
 * node agent from deploy/ run; a RegistryMirror sends a host that does not
 * exist (registry.example.invalid) to the harness's password-protected
 * registry; the agent finds containerd's config_path by reading containerd's
 * own config (the harness's certs.d, not /etc/containerd/certs.d) and writes
 * hosts.toml there; `kubectl get regmirror` says 1/1; a pod pulling
 * `registry.example.invalid/<repo>:<tag>` runs, its manifest not rewritten
 * and containerd not restarted. A RegistryMirror for the harness's own
 * registry host is a Conflict naming the harness's hosts.toml, which stays
 * as it was. Deleting the objects restores the node's files exactly and the
 * same pull fails again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RegistryMirror } from '../../src/api/registrymirror.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { Resources } from '../../src/kube/resources.ts';
import { type NodeAgent, startNodeAgent } from '../support/agent.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { mirroredImage, mirroredPods, snapshot, UPSTREAM } from './node.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const NAMESPACE = 'mirror-real';
const MIRRORED_IMAGE = mirroredImage(cluster);
const pods = mirroredPods(cluster, NAMESPACE);
/** Where the harness's containerd reads hosts.toml files (its config_path). */
const HOSTS_DIR = join(cluster.dir, 'node', 'certs.d');
const REAL_NODE = { matchLabels: { 'prepull.dev/test-node': 'real' } };

async function getMirror(name: string): Promise<RegistryMirror | undefined> {
  return client.get<RegistryMirror>(Resources.registryMirrors, name);
}

function eventsAbout(name: string): Array<{ type: string; reason: string }> {
  const out = kubectl(cluster, ['get', 'events', '-n', 'default', '-o', 'json']);
  const items = JSON.parse(out.stdout).items as Array<{
    type: string;
    reason: string;
    involvedObject: { kind: string; name: string };
  }>;
  return items
    .filter((e) => e.involvedObject.kind === 'RegistryMirror' && e.involvedObject.name === name)
    .map((e) => ({ type: e.type, reason: e.reason }));
}

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.skipIf(!cluster.node)(`RegistryMirror on the real node (${cluster.node?.runtime})`, () => {
  let operator: TestOperator;
  let agent: NodeAgent;
  let before: Record<string, string>;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    pods.prepare();
    before = snapshot(HOSTS_DIR);
    // The harness's own hosts.toml for its registry: someone else's file, which must survive.
    expect(Object.keys(before)).toContain(join(HOSTS_DIR, registry.host, 'hosts.toml'));
    operator = startTestOperator(cluster, 'registrymirror-real');
    await eventually(() => expect(operator.ready()).toBe(true));
    agent = await startNodeAgent(cluster);
  });

  afterAll(async () => {
    kubectl(cluster, ['delete', 'regmirror', '--all', '--wait=true']);
    await eventually(() => expect(snapshot(HOSTS_DIR)).toEqual(before)).catch(() => undefined);
    await agent?.stop();
    await operator?.stop();
    kubectl(cluster, ['delete', 'namespace', NAMESPACE, '--wait=false']);
  });

  it(`writes hosts.toml under containerd's own config_path and makes a pod pull ${UPSTREAM}/… from the mirror`, async () => {
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'RegistryMirror',
      metadata: { name: 'example-invalid' },
      spec: {
        host: UPSTREAM,
        upstream: 'Replaced',
        nodeSelector: REAL_NODE,
        mirrors: [{ url: `https://${registry.host}`, caBundle: readFileSync(registry.caFile, 'utf8') }],
      },
    });
    await eventually(async () => {
      const rm = await getMirror('example-invalid');
      expect(rm?.status?.applied).toBe('1/1');
      expect(rm?.status?.observedGeneration).toBe(rm?.metadata.generation);
      expect(rm?.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        status: 'True',
        reason: 'AllNodesApplied',
      });
    }, 120_000);
    expect(readFileSync(join(HOSTS_DIR, UPSTREAM, 'hosts.toml'), 'utf8')).toContain(
      `server = "https://${registry.host}"`,
    );
    expect(kubectl(cluster, ['get', 'regmirror', 'example-invalid']).stdout).toMatch(
      /example-invalid\s+registry\.example\.invalid\s+1\/1\s+AllNodesApplied/,
    );
    // Recorded right after the status write that made the transition.
    await eventually(() =>
      expect(eventsAbout('example-invalid')).toContainEqual({ type: 'Normal', reason: 'MirrorsApplied' }),
    );

    pods.create('mirrored');
    await eventually(async () => expect((await pods.state('mirrored'))?.running).toBeDefined(), 120_000);
    const pod = await pods.get('mirrored');
    expect(pod?.spec?.containers?.[0]?.image).toBe(MIRRORED_IMAGE);
    expect(pod?.status?.containerStatuses?.[0]?.imageID).toContain(registry.images.hold.digest);
  });

  it("reports a Conflict for a host whose hosts.toml is someone else's, and leaves that file alone", async () => {
    const theirs = join(HOSTS_DIR, registry.host, 'hosts.toml');
    const content = readFileSync(theirs, 'utf8');
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'RegistryMirror',
      metadata: { name: 'harness-registry' },
      spec: {
        host: registry.host,
        nodeSelector: REAL_NODE,
        mirrors: [{ url: 'https://mirror.example.invalid' }],
      },
    });
    await eventually(async () => {
      const rm = await getMirror('harness-registry');
      expect(rm?.status?.failures).toEqual([
        expect.objectContaining({
          node: 'localhost',
          reason: 'Conflict',
          message: expect.stringContaining(theirs),
        }),
      ]);
      expect(rm?.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');
    }, 120_000);
    // Recorded right after the status write that made the transition.
    await eventually(() =>
      expect(eventsAbout('harness-registry')).toContainEqual({ type: 'Warning', reason: 'Conflict' }),
    );
    expect(readFileSync(theirs, 'utf8')).toBe(content);
    kubectl(cluster, ['delete', 'regmirror', 'harness-registry', '--wait=true']);
  });

  it("restores the node's files exactly when the object is deleted, and the same pull fails again", async () => {
    kubectl(cluster, ['delete', 'regmirror', 'example-invalid', '--wait=true']);
    await eventually(() => expect(snapshot(HOSTS_DIR)).toEqual(before), 120_000);
    pods.create('unmirrored');
    await eventually(async () => {
      const reason = (await pods.state('unmirrored'))?.waiting?.reason;
      expect(['ErrImagePull', 'ImagePullBackOff']).toContain(reason);
    }, 120_000);
  });
});
