/**
 * Prepull installed into the harness cluster the two ways the README gives,
 * `kubectl apply -k deploy/` and `helm install deploy/chart`, removed again
 * the way the README's Uninstall says, and what an uninstall may leave
 * behind, looked for everywhere: every object the install rendered, the
 * prepull.dev API, anything labelled as Prepull's in any resource, and
 * Prepull's marks on ServiceAccounts and nodes.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Manifest, parseManifests } from '../chart/manifests.ts';
import { cachedBinDir } from '../harness/cluster.ts';
import type { ClusterInfo } from '../harness/types.ts';
import { type KubectlResult, kubectl } from '../support/kubectl.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const CHART = join(DEPLOY, 'chart');
export const NAMESPACE = 'prepull-system';
/** The Service /metrics is scraped through (the chart's, with serviceMonitor.enabled; ours for kustomize). */
export const METRICS_SERVICE = 'prepull-controller-metrics';

export interface Installation {
  method: 'kustomize' | 'helm';
  install(): void;
  /** The README's Uninstall: the operator and everything it was installed with, the CRDs last. */
  uninstall(): void;
  /** Only the operator: `helm uninstall`, which leaves the CRDs (kustomize's delete takes both at once). */
  removeOperator(): void;
  /** The objects the install applies (CRDs included). */
  rendered(): Manifest[];
}

function must(what: string, run: KubectlResult): string {
  if (run.status !== 0) throw new Error(`${what} failed: ${run.stderr || run.stdout}`);
  return run.stdout;
}

function helm(cluster: ClusterInfo, args: string[]): KubectlResult {
  const run = spawnSync(join(cachedBinDir('helm'), 'helm'), ['--kubeconfig', cluster.kubeconfig, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: run.status ?? -1, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

/**
 * deploy/ as it is, plus the metrics Service a Prometheus setup of the user's
 * would add (deploy/ has none: the chart makes one with its ServiceMonitor).
 */
export function kustomizeInstallation(cluster: ClusterInfo): Installation {
  return {
    method: 'kustomize',
    install() {
      must('kubectl apply -k deploy/', kubectl(cluster, ['apply', '--server-side', '-k', DEPLOY]));
      const service = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: METRICS_SERVICE, namespace: NAMESPACE },
        spec: {
          selector: { 'app.kubernetes.io/name': 'prepull', 'app.kubernetes.io/component': 'controller' },
          ports: [{ name: 'health', port: 8081, targetPort: 'health' }],
        },
      };
      must('the metrics Service', kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(service)));
    },
    uninstall() {
      // The namespace goes with deploy/, and the Service with it.
      must(
        'kubectl delete -k deploy/',
        kubectl(cluster, ['delete', '-k', DEPLOY, '--ignore-not-found', '--wait=true']),
      );
    },
    removeOperator() {
      this.uninstall();
    },
    rendered: () => parseManifests(must('kubectl kustomize', kubectl(cluster, ['kustomize', DEPLOY]))),
  };
}

/**
 * A minimal stand-in for the Prometheus Operator's ServiceMonitor CRD, so the
 * chart's serviceMonitor.enabled (its metrics Service and ServiceMonitor)
 * installs here as it does beside a real Prometheus Operator.
 */
const SERVICE_MONITOR_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    names: {
      kind: 'ServiceMonitor',
      listKind: 'ServiceMonitorList',
      plural: 'servicemonitors',
      singular: 'servicemonitor',
    },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

const HELM_SETS = ['serviceMonitor.enabled=true'];

/** The chart with default values and its ServiceMonitor, as the README's Helm section installs it. */
export function helmInstallation(cluster: ClusterInfo): Installation {
  return {
    method: 'helm',
    install() {
      must(
        'the ServiceMonitor CRD',
        kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(SERVICE_MONITOR_CRD)),
      );
      must(
        'the established ServiceMonitor CRD',
        kubectl(cluster, [
          'wait',
          '--for=condition=Established',
          'crd/servicemonitors.monitoring.coreos.com',
        ]),
      );
      const installed = helm(cluster, [
        'install',
        'prepull',
        CHART,
        '--namespace',
        NAMESPACE,
        '--create-namespace',
        ...HELM_SETS.flatMap((s) => ['--set', s]),
      ]);
      must('helm install', installed);
    },
    uninstall() {
      this.removeOperator();
      // The chart keeps its namespace: Helm's record of the release lives there during the uninstall.
      must(
        'kubectl delete namespace',
        kubectl(cluster, ['delete', 'namespace', NAMESPACE, '--ignore-not-found', '--wait=true']),
      );
      must(
        'kubectl delete -f crds/',
        kubectl(cluster, ['delete', '-f', join(CHART, 'crds'), '--ignore-not-found', '--wait=true']),
      );
    },
    removeOperator() {
      must(
        'helm uninstall',
        helm(cluster, ['uninstall', 'prepull', '--namespace', NAMESPACE, '--wait', '--ignore-not-found']),
      );
    },
    rendered() {
      const args = ['template', 'prepull', CHART, '--namespace', NAMESPACE, '--include-crds'];
      for (const s of HELM_SETS) args.push('--set', s);
      return parseManifests(must('helm template', helm(cluster, args)));
    },
  };
}

/** Removes the ServiceMonitor stand-in once nothing of the chart's uses it. */
export function removeServiceMonitorCrd(cluster: ClusterInfo): void {
  kubectl(cluster, [
    'delete',
    'crd',
    'servicemonitors.monitoring.coreos.com',
    '--ignore-not-found',
    '--wait=true',
  ]);
}

/** Everything of Prepull's still in the cluster, as `kind/name` lines; empty after a clean uninstall. */
export function prepullLeftovers(cluster: ClusterInfo, rendered: Manifest[]): string[] {
  const left: string[] = [];
  // Every object the install applied, cluster-scoped ones included.
  for (const object of rendered) {
    const args = ['get', object.kind, object.metadata.name, '--ignore-not-found', '-o', 'name'];
    if (object.metadata.namespace) args.push('-n', object.metadata.namespace);
    const got = kubectl(cluster, args);
    // A kind whose API is gone (the CRDs' own kinds) holds nothing any more.
    if (got.status !== 0 && /the server doesn't have a resource type|no matches for kind/.test(got.stderr))
      continue;
    left.push(...must(`kubectl get ${object.kind}`, got).split('\n').filter(Boolean));
  }
  // The API the CRDs served.
  const api = must(
    'kubectl api-resources',
    kubectl(cluster, ['api-resources', '--api-group=prepull.dev', '-o', 'name']),
  );
  left.push(
    ...api
      .split('\n')
      .filter(Boolean)
      .map((r) => `api-resource/${r}`),
  );
  // Whatever the operator made at run time, in any resource of any namespace: it labels all of it.
  const types = must(
    'kubectl api-resources',
    kubectl(cluster, ['api-resources', '--verbs=list', '-o', 'name']),
  )
    .split('\n')
    .filter((t) => t !== '' && !t.startsWith('events'))
    .join(',');
  for (const selector of ['app.kubernetes.io/managed-by=prepull', 'app.kubernetes.io/name=prepull']) {
    const got = kubectl(cluster, ['get', types, '-A', '-l', selector, '--ignore-not-found', '-o', 'name']);
    left.push(...must(`kubectl get -l ${selector}`, got).split('\n').filter(Boolean));
  }
  // Marks on objects it does not own: ServiceAccount entries (by annotation), node taints and annotations.
  const accounts = JSON.parse(
    must('kubectl get sa', kubectl(cluster, ['get', 'sa', '-A', '-o', 'json'])),
  ) as {
    items: { metadata: { namespace: string; name: string; annotations?: Record<string, string> } }[];
  };
  for (const sa of accounts.items) {
    if (Object.keys(sa.metadata.annotations ?? {}).some((k) => k.startsWith('prepull.dev/'))) {
      left.push(`serviceaccount/${sa.metadata.namespace}/${sa.metadata.name} (prepull.dev annotation)`);
    }
  }
  const nodes = JSON.parse(must('kubectl get nodes', kubectl(cluster, ['get', 'nodes', '-o', 'json']))) as {
    items: {
      metadata: { name: string; annotations?: Record<string, string> };
      spec?: { taints?: { key: string }[] };
    }[];
  };
  for (const node of nodes.items) {
    const marks = [
      ...Object.keys(node.metadata.annotations ?? {}),
      ...(node.spec?.taints ?? []).map((t) => t.key),
    ].filter((k) => k.startsWith('prepull.dev/'));
    if (marks.length > 0) left.push(`node/${node.metadata.name} (${marks.join(', ')})`);
  }
  return left;
}
