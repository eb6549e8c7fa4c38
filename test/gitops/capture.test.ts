/**
 * PrePulledImage and RegistryCredential in every state a GitOps tool must
 * tell apart, made by the operator on the real node and read back from the
 * API server: Argo CD's health.lua (run by gopher-lua) and kstatus judge each
 * live object as EXPECTED says, and `kubectl wait --for=condition=…` returns.
 * With PREPULL_GITOPS_CAPTURE=1 the objects are written into the Argo CD
 * customizations' testdata/, which the unit tier checks against health_test.yaml.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { dashboardPanels, metricNames, servedSampleNames } from '../grafana/dashboard.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { buildGitOpsHealth, customizationDir, EXPECTED, judge, type Kind } from './checks.ts';

const cluster = inject('cluster');
const NS = 'gitops';
const QUOTA_NS = 'gitops-no-secrets';
const SOURCE_NS = 'gitops-source';
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };
const SILENT_NODE = 'gitops-silent';
const captureDir = join(cluster.dir, 'gitops-captured');

/** What the tests read of a live object; the rest is captured as it is. */
interface LiveObject {
  metadata: { generation: number; managedFields?: unknown };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

interface Captured {
  kind: Kind;
  state: string;
  file: string;
}

function ppi(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec,
  };
}

function regcred(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'prepull.dev/v1alpha1', kind: 'RegistryCredential', metadata: { name }, spec };
}

function get(kind: Kind, name: string): LiveObject {
  const args = kind === 'PrePulledImage' ? ['get', 'ppi', name, '-n', NS] : ['get', 'regcred', name];
  const got = kubectl(cluster, [...args, '-o', 'json']);
  expect(got.status, got.stderr).toBe(0);
  return JSON.parse(got.stdout);
}

function conditionStatus(object: LiveObject, type: string): string | undefined {
  return (object.status?.conditions ?? []).find((c) => c.type === type)?.status;
}

/** The object as `kubectl get -o yaml` shows it, without the server's field bookkeeping. */
function capture(kind: Kind, name: string, state: string): Captured {
  const object = get(kind, name);
  delete object.metadata.managedFields;
  mkdirSync(join(captureDir, kind), { recursive: true });
  const file = join(captureDir, kind, `${state}.yaml`);
  writeFileSync(file, stringify(object));
  return { kind, state, file };
}

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.runIf(cluster.node)('GitOps health of objects the operator wrote', () => {
  let operator: TestOperator | undefined;
  let binary: string;
  const captured: Captured[] = [];

  beforeAll(async () => {
    binary = buildGitOpsHealth();
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    for (const ns of [NS, QUOTA_NS, SOURCE_NS]) kubectl(cluster, ['create', 'namespace', ns]);
    const registry = cluster.registry!;
    for (const [ns, name] of [
      [NS, 'registry'],
      [SOURCE_NS, 'pull'],
    ] as const) {
      const created = kubectl(cluster, [
        'create',
        'secret',
        'docker-registry',
        name,
        '-n',
        ns,
        `--docker-server=${registry.host}`,
        `--docker-username=${registry.username}`,
        `--docker-password=${registry.password}`,
      ]);
      expect(created.status, created.stderr).toBe(0);
    }
    // A user's own secret where a RegistryCredential wants its copy: a Conflict.
    expect(kubectl(cluster, ['create', 'secret', 'generic', 'taken', '-n', NS]).status).toBe(0);
    // No secret may be made here: every write is refused (403) and retried.
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'no-secrets', namespace: QUOTA_NS },
      spec: { hard: { secrets: '0' } },
    });
    operator = startTestOperator(cluster, 'gitops');
    await eventually(() => expect(operator?.ready()).toBe(true));
  });

  afterAll(async () => {
    // The RegistryCredentials' cleanup finalizer needs a running controller.
    operator ??= startTestOperator(cluster, 'gitops-cleanup');
    kubectl(cluster, [
      'delete',
      'regcred',
      'gitops-healthy',
      'gitops-progressing',
      'gitops-degraded',
      '--timeout=60s',
    ]);
    kubectl(cluster, ['delete', 'namespace', NS, QUOTA_NS, SOURCE_NS, '--wait=false']);
    kubectl(cluster, ['delete', 'node', SILENT_NODE, '--wait=false']);
    await operator.stop();
  });

  it('PrePulledImage: Ready on the node, Progressing on a node that never reports, Degraded on a missing tag', async () => {
    const registry = cluster.registry!;
    serverSideApply(
      cluster,
      ppi('healthy', {
        ...onRealNode,
        images: [{ image: registry.images.hold.ref }],
        imagePullSecrets: [{ name: 'registry' }],
      }),
    );
    // A node whose kubelet never reports (one just joining): its puller pod stays Pending.
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: SILENT_NODE,
        labels: { 'kubernetes.io/os': 'linux', 'prepull.dev/gitops-test': 'silent' },
      },
    });
    serverSideApply(
      cluster,
      ppi('progressing', {
        nodeSelector: { 'prepull.dev/gitops-test': 'silent' },
        // Whatever taints the node lifecycle controller puts on it: the pod is bound there all the same.
        tolerations: [{ operator: 'Exists' }],
        images: [{ image: registry.images.hold.ref }],
        imagePullSecrets: [{ name: 'registry' }],
      }),
    );
    serverSideApply(
      cluster,
      ppi('degraded', {
        ...onRealNode,
        images: [{ image: `${registry.host}/prepull-test/hold:no-such-tag` }],
        imagePullSecrets: [{ name: 'registry' }],
      }),
    );
    await eventually(
      () => expect(conditionStatus(get('PrePulledImage', 'healthy'), 'Ready')).toBe('True'),
      120_000,
    );
    await eventually(() => {
      const object = get('PrePulledImage', 'progressing');
      expect(object.status?.observedGeneration).toBe(object.metadata.generation);
      expect(conditionStatus(object, 'Progressing')).toBe('True');
    }, 60_000);
    await eventually(
      () => expect(conditionStatus(get('PrePulledImage', 'degraded'), 'Degraded')).toBe('True'),
      120_000,
    );

    const wait = kubectl(cluster, [
      'wait',
      '-n',
      NS,
      '--for=condition=Ready',
      'ppi/healthy',
      '--timeout=60s',
    ]);
    expect(wait.status, wait.stderr).toBe(0);
    expect(wait.stdout).toContain('prepulledimage.prepull.dev/healthy condition met');
    const degraded = kubectl(cluster, [
      'wait',
      '-n',
      NS,
      '--for=condition=Degraded',
      'ppi/degraded',
      '--timeout=60s',
    ]);
    expect(degraded.status, degraded.stderr).toBe(0);

    // The dashboard's object panels read these from the operator's own registry.
    const objects = await operator?.metrics.registry.getSingleMetric('prepull_objects')?.get();
    const count = (state: string) =>
      objects?.values.find((v) => v.labels.kind === 'PrePulledImage' && v.labels.state === state)?.value ?? 0;
    for (const state of ['Ready', 'Progressing', 'Degraded'])
      expect(count(state), state).toBeGreaterThanOrEqual(1);
    const served = await servedSampleNames(operator!.metrics.registry);
    const queried = dashboardPanels().flatMap((p) => p.queries.flatMap(metricNames));
    expect(queried.filter((m) => !served.has(m))).toEqual([]);

    captured.push(
      capture('PrePulledImage', 'healthy', 'healthy'),
      capture('PrePulledImage', 'progressing', 'progressing'),
      capture('PrePulledImage', 'degraded', 'degraded'),
    );
  });

  it('RegistryCredential: Ready when synced, Progressing while writes are refused, Degraded on a Conflict', async () => {
    const source = { secretRef: { namespace: SOURCE_NS, name: 'pull' } };
    serverSideApply(
      cluster,
      regcred('gitops-healthy', { source, target: { secretName: 'pull', namespaces: [NS] } }),
    );
    serverSideApply(
      cluster,
      regcred('gitops-progressing', { source, target: { secretName: 'pull', namespaces: [QUOTA_NS] } }),
    );
    serverSideApply(
      cluster,
      regcred('gitops-degraded', { source, target: { secretName: 'taken', namespaces: [NS] } }),
    );
    await eventually(() =>
      expect(conditionStatus(get('RegistryCredential', 'gitops-healthy'), 'Ready')).toBe('True'),
    );
    await eventually(() =>
      expect(conditionStatus(get('RegistryCredential', 'gitops-progressing'), 'Reconciling')).toBe('True'),
    );
    await eventually(() =>
      expect(conditionStatus(get('RegistryCredential', 'gitops-degraded'), 'Stalled')).toBe('True'),
    );

    const wait = kubectl(cluster, [
      'wait',
      '--for=condition=Ready',
      'regcred/gitops-healthy',
      '--timeout=60s',
    ]);
    expect(wait.status, wait.stderr).toBe(0);
    expect(wait.stdout).toContain('registrycredential.prepull.dev/gitops-healthy condition met');

    captured.push(
      capture('RegistryCredential', 'gitops-healthy', 'healthy'),
      capture('RegistryCredential', 'gitops-progressing', 'progressing'),
      capture('RegistryCredential', 'gitops-degraded', 'degraded'),
    );
  });

  it('a spec edited while no controller runs reads Progressing, whatever its old status said', async () => {
    await operator?.stop();
    operator = undefined;
    serverSideApply(
      cluster,
      ppi('healthy', {
        ...onRealNode,
        images: [{ image: cluster.registry!.images.hold.ref, name: 'hold' }],
        imagePullSecrets: [{ name: 'registry' }],
      }),
    );
    serverSideApply(
      cluster,
      regcred('gitops-healthy', {
        source: { secretRef: { namespace: SOURCE_NS, name: 'pull' } },
        target: { secretName: 'pull', namespaces: [NS], excludeNamespaces: [QUOTA_NS] },
      }),
    );
    for (const [kind, name] of [
      ['PrePulledImage', 'healthy'],
      ['RegistryCredential', 'gitops-healthy'],
    ] as const) {
      const object = get(kind, name);
      expect(object.status?.observedGeneration).toBe(object.metadata.generation - 1);
      // Ready is still True from the last pass: only observedGeneration says it is stale.
      expect(conditionStatus(object, 'Ready')).toBe('True');
      captured.push(capture(kind, name, 'stale-generation'));
    }
  });

  it('each live object reads as expected in Argo CD (gopher-lua) and kstatus', () => {
    expect(captured).toHaveLength(8);
    for (const { kind, state, file } of captured) {
      const [verdict] = judge(binary, kind, [file]);
      expect({ kind, state, argocd: verdict?.argocd.status, kstatus: verdict?.kstatus.status }).toEqual({
        kind,
        state,
        ...EXPECTED[kind][state],
      });
    }
    if (process.env.PREPULL_GITOPS_CAPTURE === '1') {
      for (const { kind, state, file } of captured) {
        copyFileSync(file, join(customizationDir(kind), 'testdata', `${state}.yaml`));
      }
    }
  });
});
