/** kwok nodes for scale tests: fake nodes whose pods kwok marks Running. */
import type { KubectlTarget } from './kubectl.ts';
import { kubectl } from './kubectl.ts';

/** The taint every fake node carries, so only pods that tolerate it land there. */
export const KWOK_TOLERATION = {
  key: 'kwok.x-k8s.io/node',
  operator: 'Exists',
  effect: 'NoSchedule',
} as const;

export function fakeNodeManifest(name: string, labels: Record<string, string>): object {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: { type: 'kwok', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name, ...labels },
    },
    spec: { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] },
  };
}

/** Creates fake nodes `prefix-from` … `prefix-(to-1)` with `labels`. */
export function createFakeNodes(
  target: KubectlTarget,
  prefix: string,
  from: number,
  to: number,
  labels: Record<string, string>,
): string[] {
  const names = Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
  const list = { apiVersion: 'v1', kind: 'List', items: names.map((n) => fakeNodeManifest(n, labels)) };
  const applied = kubectl(target, ['apply', '-f', '-'], JSON.stringify(list));
  if (applied.status !== 0) throw new Error(`creating fake nodes failed: ${applied.stderr}`);
  return names;
}

export function deleteNodes(target: KubectlTarget, names: string[]): void {
  const deleted = kubectl(target, ['delete', 'node', '--wait=false', ...names]);
  if (deleted.status !== 0) throw new Error(`deleting nodes failed: ${deleted.stderr}`);
}
