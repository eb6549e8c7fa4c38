/**
 * deploy/chart as a user installs it: `helm lint` passes, its default render
 * is the kustomize base object for object, both are accepted by the real API
 * server (server-side dry run), and each value reaches the object it is for.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { releasedImage } from '../../src/version.ts';
import { cachedBinDir } from '../harness/cluster.ts';
import { kubectl } from '../support/kubectl.ts';
import { identities, type Manifest, normalizeManifests, parseManifests } from './manifests.ts';

const cluster = inject('cluster');
const deploy = join(import.meta.dirname, '..', '..', 'deploy');
const chart = join(deploy, 'chart');
const NAMESPACE = 'prepull-system';

function helm(args: string[]): { status: number; stdout: string; stderr: string } {
  const run = spawnSync(join(cachedBinDir('helm'), 'helm'), args, { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status ?? -1, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

/** `helm template` as Argo CD and `helm install` see it: CRDs included, in the release namespace. */
function render(...sets: string[]): Manifest[] {
  const args = ['template', 'prepull', chart, '--namespace', NAMESPACE, '--include-crds'];
  for (const set of sets) args.push('--set', set);
  const rendered = helm(args);
  expect(rendered.status, rendered.stderr).toBe(0);
  return parseManifests(rendered.stdout);
}

function controllerContainer(objects: Manifest[]): {
  args: string[];
  image: string;
  imagePullPolicy?: string;
} {
  const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
    spec: { template: { spec: { containers: { args: string[]; image: string }[] } } };
  };
  return deployment.spec.template.spec.containers[0]!;
}

describe('deploy/chart', () => {
  it('passes helm lint, with default values and with every option set', () => {
    const plain = helm(['lint', '--strict', chart]);
    expect(plain.status, plain.stdout + plain.stderr).toBe(0);
    const everything = helm([
      'lint',
      '--strict',
      chart,
      '--set',
      'serviceMonitor.enabled=true,logLevel=debug,agent.containerdSocket=/run/k3s/containerd/containerd.sock',
      '--set',
      'nodeSelector.kubernetes\\.io/os=linux,tolerations[0].operator=Exists',
    ]);
    expect(everything.status, everything.stdout + everything.stderr).toBe(0);
  });

  it('renders with default values the objects kubectl kustomize deploy/ renders', () => {
    const kustomized = kubectl(cluster, ['kustomize', deploy]);
    expect(kustomized.status, kustomized.stderr).toBe(0);
    const fromKustomize = parseManifests(kustomized.stdout);
    const fromHelm = render();
    expect(identities(fromHelm)).toEqual(identities(fromKustomize));
    expect(normalizeManifests(fromHelm)).toEqual(normalizeManifests(fromKustomize));
  });

  it('and the API server accepts both (server-side dry run)', () => {
    expect(kubectl(cluster, ['apply', '-f', join(deploy, 'namespace.yaml')]).status).toBe(0);
    const helmYaml = helm(['template', 'prepull', chart, '--namespace', NAMESPACE, '--include-crds']);
    for (const [source, applied] of [
      [
        'kustomize',
        kubectl(cluster, ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-k', deploy]),
      ],
      [
        'helm',
        kubectl(
          cluster,
          ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
          helmYaml.stdout,
        ),
      ],
    ] as const) {
      expect(applied.status, `${source}: ${applied.stderr}`).toBe(0);
      expect(applied.stdout, source).toContain('deployment.apps/prepull-controller serverside-applied');
      expect(applied.stdout, source).toContain(
        'customresourcedefinition.apiextensions.k8s.io/prepulledimages.prepull.dev serverside-applied',
      );
    }
  });

  it('pins the controller, the node agent and the puller pods to image.digest', () => {
    const digest = `sha256:${'e'.repeat(64)}`;
    const objects = render(`image.digest=${digest}`);
    const pinned = `${releasedImage}@${digest}`;
    const container = controllerContainer(objects);
    expect(container.image).toBe(pinned);
    expect(container.args).toContain(`--agent-image=${pinned}`);
    const agent = objects.find((o) => o.kind === 'DaemonSet') as unknown as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(agent.spec.template.spec.containers[0]?.image).toBe(pinned);
    const refused = helm(['template', 'prepull', chart, '--set', 'image.digest=latest']);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('image.digest must be sha256:');
  });

  it('puts each value where it belongs', () => {
    const objects = render(
      'image.repository=registry.example/prepull,image.tag=v9,image.pullPolicy=Always',
      'replicas=1,leaderElection.enabled=false,logLevel=debug',
      'agent.pullPolicy=Never,agent.containerdSocket=/run/k3s/containerd/containerd.sock',
      'agent.kubeletRootDir=/var/snap/microk8s/common/var/lib/kubelet',
      'priorityClass.create=false,priorityClass.name=system-node-critical',
      'nodeSelector.role=infra,tolerations[0].key=infra,tolerations[0].operator=Exists',
      'serviceMonitor.enabled=true,serviceMonitor.labels.release=kube-prometheus,namespace.create=false',
    );
    const container = controllerContainer(objects);
    expect(container.image).toBe('registry.example/prepull:v9');
    expect(container.imagePullPolicy).toBe('Always');
    expect(container.args).toEqual([
      'run',
      '--health-address=:8081',
      '--default-priority-class=system-node-critical',
      '--log-level=debug',
      // The puller pods follow the controller's image unless agent.image names another.
      '--agent-image=registry.example/prepull:v9',
      '--agent-pull-policy=Never',
    ]);
    // The socket is the node agent's: it mounts its directory and imports through it.
    const agent = objects.find((o) => o.kind === 'DaemonSet') as unknown as {
      spec: {
        template: {
          spec: {
            containers: { args: string[] }[];
            volumes: { name: string; hostPath?: { path: string } }[];
          };
        };
      };
    };
    expect(agent.spec.template.spec.containers[0]?.args).toContain(
      '--containerd-socket=/host/run/k3s/containerd/containerd.sock',
    );
    expect(agent.spec.template.spec.volumes.find((v) => v.name === 'runtime')?.hostPath?.path).toBe(
      '/run/k3s/containerd',
    );
    // The kubelet's root directory, whose config.json RegistryCredential spec.nodes merges into.
    expect(agent.spec.template.spec.containers[0]?.args).toContain(
      '--kubelet-root-dir=/var/snap/microk8s/common/var/lib/kubelet',
    );
    expect(agent.spec.template.spec.volumes.find((v) => v.name === 'kubelet')?.hostPath?.path).toBe(
      '/var/snap/microk8s/common/var/lib/kubelet',
    );
    const kinds = identities(objects);
    expect(kinds).not.toContain('PriorityClass /prepull-low');
    expect(kinds).not.toContain(`Namespace /${NAMESPACE}`);
    expect(kinds).not.toContain(`Role ${NAMESPACE}/prepull-leader-election`);
    expect(kinds).toContain(`ServiceMonitor ${NAMESPACE}/prepull-controller`);
    const deployment = objects.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { replicas: number; template: { spec: Record<string, unknown> } };
    };
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.template.spec.nodeSelector).toEqual({ role: 'infra' });
    expect(deployment.spec.template.spec.tolerations).toEqual([{ key: 'infra', operator: 'Exists' }]);
    const monitor = objects.find((o) => o.kind === 'ServiceMonitor');
    expect(monitor?.metadata.labels?.release).toBe('kube-prometheus');
  });
});
