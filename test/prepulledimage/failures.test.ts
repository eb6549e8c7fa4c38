/**
 * What the one controller shape promises, against the real API server and
 * kwok nodes: a write the API server refuses shows in status with the
 * server's own message; a RegistryCredential's status writes requeue no
 * PrePulledImage; and deleted nodes leave the counts at once, not when PodGC
 * gets to their pods.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import type { RegistryCredential } from '../../src/api/registrycredential.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, deleteNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';
import { applyQuota } from '../support/quota.ts';

const cluster = inject('cluster');
const NS = 'ppi-failures';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const pool = (name: string) => ({
  nodeSelector: { 'prepull-test/pool': name },
  tolerations: [KWOK_TOLERATION],
});

function ppi(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec,
  };
}

const getPpi = (name: string) => getPrePulledImage(client, NS, name);
const condition = (p: PrePulledImage, type: string) => p.status?.conditions?.find((c) => c.type === type);

describe('PrePulledImage failures and counts', () => {
  let operator: TestOperator;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    createFakeNodes(cluster, 'failures', 0, 6, { 'prepull-test/pool': 'failures' });
    // A class that does not exist, allowed, so that the pods themselves are refused.
    operator = startTestOperator(cluster, 'ppi-failures', {
      allowedPriorityClasses: ['prepull-low', 'ppi-failures-no-such-class'],
    });
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
    kubectl(cluster, ['delete', 'namespace', NS, '--wait=false']);
  });

  it('shows a DaemonSet refused by a ResourceQuota as Forbidden with the API server message, then recovers', async () => {
    await applyQuota(cluster, NS, 'no-daemonsets', { 'count/daemonsets.apps': '0' });
    serverSideApply(
      cluster,
      ppi('quota', { images: [{ image: 'registry.example.com/q/app:1' }], ...pool('failures') }),
    );
    await eventually(async () => {
      const p = await getPpi('quota');
      expect(p.status?.observedGeneration).toBe(p.metadata.generation);
      expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'Forbidden' });
      expect(condition(p, 'Degraded')?.message).toMatch(
        /^applying the puller DaemonSet: 403 Forbidden: .*exceeded quota/,
      );
      expect(condition(p, 'Ready')?.status).toBe('False');
    });
    // The Event follows the status write that made the transition: it may not be there yet.
    await eventually(() =>
      expect(kubectl(cluster, ['events', '-n', NS, '--for', 'PrePulledImage/quota']).stdout).toContain(
        'exceeded quota',
      ),
    );
    // Fixing the namespace is enough: the back-off brings it back without a spec edit.
    expect(kubectl(cluster, ['delete', 'resourcequota', 'no-daemonsets', '-n', NS]).status).toBe(0);
    await eventually(async () => {
      const p = await getPpi('quota');
      expect(p.status?.ready).toBe('6/6');
      expect(condition(p, 'Ready')?.status).toBe('True');
      expect(condition(p, 'Degraded')?.status).toBe('False');
    }, 120_000);
  });

  it('shows a DaemonSet refused by an admission policy as Rejected with the policy message', async () => {
    const policy = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: 'ppi-failures-no-daemonsets' },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['apps'],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['daemonsets'],
            },
          ],
        },
        validations: [
          {
            expression: "object.metadata.name != 'ppi-refused'",
            message: 'puller DaemonSets are not allowed here',
          },
        ],
      },
    };
    const binding = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: 'ppi-failures-no-daemonsets' },
      spec: {
        policyName: 'ppi-failures-no-daemonsets',
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } } },
      },
    };
    serverSideApply(cluster, policy);
    serverSideApply(cluster, binding);
    try {
      // The policy takes effect once the API server has loaded it: wait for a refused dry run.
      await eventually(() => {
        const probe = kubectl(
          cluster,
          ['create', '--dry-run=server', '-f', '-'],
          JSON.stringify({
            apiVersion: 'apps/v1',
            kind: 'DaemonSet',
            metadata: { name: 'ppi-refused', namespace: NS },
            spec: {
              selector: { matchLabels: { a: 'b' } },
              template: {
                metadata: { labels: { a: 'b' } },
                spec: { containers: [{ name: 'c', image: 'x' }] },
              },
            },
          }),
        );
        expect(probe.stderr).toContain('not allowed here');
      });
      serverSideApply(
        cluster,
        ppi('refused', { images: [{ image: 'registry.example.com/q/app:1' }], ...pool('failures') }),
      );
      await eventually(async () => {
        const p = await getPpi('refused');
        expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'Rejected' });
        expect(condition(p, 'Degraded')?.message).toContain('puller DaemonSets are not allowed here');
      });
    } finally {
      kubectl(cluster, ['delete', 'validatingadmissionpolicybinding', binding.metadata.name]);
      kubectl(cluster, ['delete', 'validatingadmissionpolicy', policy.metadata.name]);
    }
  });

  it('names puller pods the cluster refuses (a ResourceQuota, a missing PriorityClass) in the API server words', async () => {
    kubectl(cluster, ['create', 'namespace', 'ppi-refused-pods']);
    await applyQuota(cluster, 'ppi-refused-pods', 'no-pods', { pods: '0' });
    const refused = (name: string, extra: Record<string, unknown>) => ({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name, namespace: 'ppi-refused-pods' },
      spec: { images: [{ image: 'registry.example.com/q/app:4' }], ...pool('failures'), ...extra },
    });
    serverSideApply(cluster, refused('quota', {}));
    await eventually(async () => {
      const p = await getPrePulledImage(client, 'ppi-refused-pods', 'quota');
      expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'PodsRefused' });
      expect(condition(p, 'Degraded')?.message).toContain('exceeded quota');
      expect(p.status?.ready).toBe('0/6');
    }, 120_000);
    expect(kubectl(cluster, ['delete', 'resourcequota', 'no-pods', '-n', 'ppi-refused-pods']).status).toBe(0);
    await eventually(async () => {
      const p = await getPrePulledImage(client, 'ppi-refused-pods', 'quota');
      expect(p.status?.ready).toBe('6/6');
      expect(condition(p, 'Degraded')?.status).toBe('False');
    }, 120_000);

    serverSideApply(cluster, refused('priority', { priorityClassName: 'ppi-failures-no-such-class' }));
    await eventually(async () => {
      const p = await getPrePulledImage(client, 'ppi-refused-pods', 'priority');
      expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'PodsRefused' });
      expect(condition(p, 'Degraded')?.message).toContain('ppi-failures-no-such-class');
    }, 120_000);
    kubectl(cluster, ['delete', 'namespace', 'ppi-refused-pods', '--wait=false']);
  });

  it('refuses a priority class the operator does not allow, applying nothing, and allows one of value 0 or less', async () => {
    serverSideApply(
      cluster,
      ppi('critical', {
        images: [{ image: 'registry.example.com/q/app:5' }],
        priorityClassName: 'system-node-critical',
        ...pool('failures'),
      }),
    );
    await eventually(async () => {
      const p = await getPpi('critical');
      expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'PriorityClassNotAllowed' });
      expect(condition(p, 'Degraded')?.message).toContain('system-node-critical');
      expect(condition(p, 'Progressing')?.status).toBe('False');
    });
    expect(await client.get(Resources.daemonSets, 'ppi-critical', NS)).toBeUndefined();
    // A class that preempts nothing is the team's own business.
    serverSideApply(cluster, {
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: 'ppi-failures-batch' },
      value: -5,
      preemptionPolicy: 'Never',
    });
    serverSideApply(
      cluster,
      ppi('critical', {
        images: [{ image: 'registry.example.com/q/app:5' }],
        priorityClassName: 'ppi-failures-batch',
        ...pool('failures'),
      }),
    );
    await eventually(async () => expect((await getPpi('critical')).status?.ready).toBe('6/6'), 120_000);
    const ds = await client.get<
      { spec: { template: { spec: { priorityClassName?: string } } } } & { metadata: object }
    >(Resources.daemonSets, 'ppi-critical', NS);
    expect(ds?.spec.template.spec.priorityClassName).toBe('ppi-failures-batch');
    kubectl(cluster, ['delete', 'ppi', 'critical', '-n', NS, '--wait=false']);
    kubectl(cluster, ['delete', 'priorityclass', 'ppi-failures-batch', '--wait=false']);
  });

  it('is not reconciled again when a RegistryCredential it names writes its status', async () => {
    kubectl(cluster, ['create', 'namespace', 'ppi-failures-src']);
    serverSideApply(cluster, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'pull', namespace: 'ppi-failures-src' },
      type: 'kubernetes.io/dockerconfigjson',
      data: {
        '.dockerconfigjson': Buffer.from(
          JSON.stringify({ auths: { 'registry.example.com': { auth: 'dTpw' } } }),
        ).toString('base64'),
      },
    });
    const rc = (namespaces: string[]) => ({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'RegistryCredential',
      metadata: { name: 'ppi-failures-cred' },
      spec: {
        source: { secretRef: { name: 'pull', namespace: 'ppi-failures-src' } },
        target: { secretName: 'ppi-failures-pull', namespaces },
      },
    });
    kubectl(cluster, ['create', 'namespace', 'ppi-failures-other']);
    serverSideApply(cluster, rc(['ppi-failures-other']));
    serverSideApply(
      cluster,
      ppi('linked', {
        images: [{ image: 'registry.example.com/q/app:2' }],
        registryCredentials: [{ name: 'ppi-failures-cred' }],
        ...pool('failures'),
      }),
    );
    await eventually(async () => expect((await getPpi('linked')).status?.ready).toBe('6/6'), 120_000);
    // Settle, then count: the RegistryCredential's own status changes must not reach it.
    await eventually(
      async () => {
        const before = await operator.reconcileCounts('prepulledimage');
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        expect((await operator.reconcileCounts('prepulledimage')).total).toBe(before.total);
      },
      60_000,
      0,
    );
    const before = await operator.reconcileCounts('prepulledimage');
    const statusBefore = (
      await client.get<RegistryCredential>(Resources.registryCredentials, 'ppi-failures-cred')
    )?.status?.synced;
    // A spec change that moves the RegistryCredential's status (one namespace more), not its copy name.
    kubectl(cluster, ['create', 'namespace', 'ppi-failures-src-copy']);
    serverSideApply(cluster, rc(['ppi-failures-other', 'ppi-failures-src-copy']));
    await eventually(async () => {
      const now = await client.get<RegistryCredential>(Resources.registryCredentials, 'ppi-failures-cred');
      expect(now?.status?.observedGeneration).toBe(now?.metadata.generation);
      expect(now?.status?.synced).not.toBe(statusBefore);
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await operator.reconcileCounts('prepulledimage')).total).toBe(before.total);
    kubectl(cluster, ['delete', 'registrycredential', 'ppi-failures-cred', '--wait=false']);
    kubectl(cluster, [
      'delete',
      'namespace',
      'ppi-failures-src',
      'ppi-failures-src-copy',
      'ppi-failures-other',
      '--wait=false',
    ]);
  });

  it('counts only nodes that exist after nodes are deleted, while their pods are still there', async () => {
    createFakeNodes(cluster, 'leaving', 0, 6, { 'prepull-test/pool': 'leaving' });
    serverSideApply(
      cluster,
      ppi('leaving', { images: [{ image: 'registry.example.com/q/app:3' }], ...pool('leaving') }),
    );
    await eventually(async () => expect((await getPpi('leaving')).status?.ready).toBe('6/6'), 120_000);
    const pods = await client.list<Pod>(Resources.pods, {
      namespace: NS,
      labelSelector: 'app.kubernetes.io/name=prepull-puller',
    });
    const onLeaving = pods.items.filter((p) => ['leaving-4', 'leaving-5'].includes(p.spec.nodeName ?? ''));
    expect(onLeaving).toHaveLength(2);
    // A finalizer keeps those pods (as a slow PodGC would) after their nodes go.
    for (const pod of onLeaving) {
      await client.patch(
        Resources.pods,
        pod.metadata.name ?? '',
        NS,
        { metadata: { finalizers: ['prepull.dev/test-hold'] } },
        'merge',
      );
    }
    try {
      deleteNodes(cluster, ['leaving-4', 'leaving-5']);
      await eventually(async () => {
        const p = await getPpi('leaving');
        expect(p.status).toMatchObject({ ready: '4/4', desiredNodes: 4, readyNodes: 4 });
        expect(condition(p, 'Ready')?.status).toBe('True');
      });
      // The pods of the deleted nodes were still there all along.
      for (const pod of onLeaving)
        expect(await client.get<Pod>(Resources.pods, pod.metadata.name ?? '', NS)).toBeDefined();
    } finally {
      for (const pod of onLeaving) {
        await client
          .patch(Resources.pods, pod.metadata.name ?? '', NS, { metadata: { finalizers: null } }, 'merge')
          .catch(() => {});
      }
    }
  });
});
