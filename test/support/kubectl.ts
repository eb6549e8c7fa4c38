/** Runs the cluster's own kubectl with the admin kubeconfig, as a user would. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Where kubectl and the kubeconfig come from: a ClusterInfo satisfies this. */
export interface KubectlTarget {
  binDir: string;
  kubeconfig: string;
}

/** `kubectl ARGS` with optional standard input; never throws on a non-zero exit. */
export function kubectl(target: KubectlTarget, args: string[], input?: string): KubectlResult {
  const run = spawnSync(join(target.binDir, 'kubectl'), ['--kubeconfig', target.kubeconfig, ...args], {
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status ?? -1, stdout: run.stdout ?? '', stderr: run.stderr ?? '' };
}

/**
 * `kubectl apply --server-side` of one object as field manager `test`, taking
 * over fields others own (as a user re-applying their manifest would); throws
 * with kubectl's message when it fails.
 */
export function serverSideApply(target: KubectlTarget, object: unknown): void {
  const applied = kubectl(
    target,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=test', '-f', '-'],
    JSON.stringify(object),
  );
  if (applied.status !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
}
