/**
 * What both real-node tiers of RegistryMirror share: the image a pod pulls by
 * the name of a registry that does not exist, the pull secret for that name,
 * a snapshot of a directory's files (what "restored as it was" compares),
 * and pods on the real node that pull it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import type { ClusterInfo } from '../harness/types.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';

/** A host that never resolves: pulls from it work only through a mirror. */
export const UPSTREAM = 'registry.example.invalid';
const PULL_SECRET = 'upstream-pull';

/** The harness's hold image, by the name of {@link UPSTREAM}. */
export function mirroredImage(cluster: ClusterInfo): string {
  const registry = cluster.registry!;
  return `${UPSTREAM}/${registry.images.hold.ref.slice(registry.host.length + 1)}`;
}

/** Every file and directory under `dir`, with its mode and content. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        out[`${path}/`] = statSync(path).mode.toString(8);
        walk(path);
      } else out[path] = `${statSync(path).mode.toString(8)} ${readFileSync(path, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

/** Pods in `namespace` on the real node that pull the mirrored image (imagePullPolicy Always). */
export function mirroredPods(cluster: ClusterInfo, namespace: string) {
  const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
  const registry = cluster.registry!;
  return {
    /** The namespace, and a pull secret for {@link UPSTREAM} with the harness registry's password. */
    prepare(): void {
      kubectl(cluster, ['create', 'namespace', namespace]);
      // The kubelet sends the image's own host's credentials; containerd sends them on to the mirror.
      const secret = kubectl(cluster, [
        'create',
        'secret',
        'docker-registry',
        PULL_SECRET,
        '-n',
        namespace,
        `--docker-server=${UPSTREAM}`,
        `--docker-username=${registry.username}`,
        `--docker-password=${registry.password}`,
      ]);
      expect(secret.status, secret.stderr).toBe(0);
    },
    create(name: string): void {
      serverSideApply(cluster, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace },
        spec: {
          nodeSelector: { 'prepull.dev/test-node': 'real' },
          imagePullSecrets: [{ name: PULL_SECRET }],
          containers: [{ name: 'app', image: mirroredImage(cluster), imagePullPolicy: 'Always' }],
          terminationGracePeriodSeconds: 1,
        },
      });
    },
    get: (name: string) => client.get<Pod>(Resources.pods, name, namespace),
    async state(name: string) {
      return (await client.get<Pod>(Resources.pods, name, namespace))?.status?.containerStatuses?.[0]?.state;
    },
  };
}
