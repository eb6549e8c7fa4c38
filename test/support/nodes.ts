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

/**
 * Creates fake nodes `prefix-from` … `prefix-(to-1)` with `labels`, or with
 * `labels(i)` for node `prefix-i`.
 */
export function createFakeNodes(
  target: KubectlTarget,
  prefix: string,
  from: number,
  to: number,
  labels: Record<string, string> | ((index: number) => Record<string, string>),
): string[] {
  const indices = Array.from({ length: to - from }, (_, i) => from + i);
  const manifests = indices.map((i) =>
    fakeNodeManifest(`${prefix}-${i}`, typeof labels === 'function' ? labels(i) : labels),
  );
  applyFakeNodes(target, manifests);
  return indices.map((i) => `${prefix}-${i}`);
}

function applyFakeNodes(target: KubectlTarget, manifests: readonly object[]): void {
  const list = { apiVersion: 'v1', kind: 'List', items: manifests };
  const applied = kubectl(target, ['apply', '-f', '-'], JSON.stringify(list));
  if (applied.status !== 0)
    throw new Error(`creating fake nodes failed: ${applied.stderr || 'kubectl timed out'}`);
}

export function deleteNodes(target: KubectlTarget, names: string[]): void {
  const deleted = kubectl(target, ['delete', 'node', '--wait=false', ...names]);
  if (deleted.status !== 0) throw new Error(`deleting nodes failed: ${deleted.stderr}`);
}

/** The label of the shared pool's nodes (value `shared`). */
export const SHARED_POOL_LABEL = 'prepull-test/pool';

/**
 * How many nodes the shared pool has: more than the 50 nodes a status lists
 * before it summarises, and no more. Tiers prove behaviour on it; how it
 * scales is the benchmarks' job (bench/prepulledimage.ts).
 */
export const SHARED_POOL_SIZE = 60;

/** The shared pool's node names, `pool-0` … `pool-59`. */
export const SHARED_POOL_NODES: readonly string[] = Array.from(
  { length: SHARED_POOL_SIZE },
  (_, i) => `pool-${i}`,
);

/**
 * The kwok node pool the tiers share: created by the first file that asks
 * (files run one at a time; a later file creates only what is missing), then
 * left for the rest of the run, instead of hundreds of nodes per file that all keep
 * heartbeating until the cluster stops. A file selects it with
 * `{ 'prepull-test/pool': 'shared' }`; it must leave the pool as it found it
 * (nodes it adds carry its own pool label, or it deletes them).
 */
export function sharedKwokPool(target: KubectlTarget): readonly string[] {
  const listed = kubectl(target, ['get', 'nodes', '-l', `${SHARED_POOL_LABEL}=shared`, '-o', 'name']);
  const present = new Set(listed.stdout.split('\n').map((line) => line.replace(/^node\//, '')));
  const missing = SHARED_POOL_NODES.filter((name) => !present.has(name));
  // In parts: on a busy machine one apply of many nodes can outlast kubectl's minute.
  for (let i = 0; i < missing.length; i += 20) {
    const part = missing
      .slice(i, i + 20)
      .map((name) => fakeNodeManifest(name, { [SHARED_POOL_LABEL]: 'shared' }));
    applyFakeNodes(target, part);
  }
  waitForReadyNodes(target, `${SHARED_POOL_LABEL}=shared`, SHARED_POOL_SIZE);
  return SHARED_POOL_NODES;
}

/**
 * Waits until the `count` nodes that match `selector` are Ready: `kubectl
 * wait` watches them, in rounds that end before kubectl's own minute.
 */
export function waitForReadyNodes(target: KubectlTarget, selector: string, count: number): void {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const names = kubectl(target, ['get', 'nodes', '-l', selector, '-o', 'name']).stdout.split('\n');
    if (names.filter(Boolean).length !== count) {
      throw new Error(`expected ${count} nodes ${selector}, found ${names.filter(Boolean).length}`);
    }
    const waited = kubectl(target, [
      'wait',
      'node',
      '-l',
      selector,
      '--for=condition=Ready',
      '--timeout=50s',
    ]);
    if (waited.status === 0) return;
    if (Date.now() > deadline) throw new Error(`nodes ${selector} not Ready: ${waited.stderr}`);
  }
}
