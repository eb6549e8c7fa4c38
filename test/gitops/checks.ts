/**
 * Prepull's GitOps health checks as Argo CD and Flux run them: the Argo CD
 * resource customizations under deploy/argocd (Argo CD's own layout), and the
 * gitops-health program (test/gitops/health) that runs them with gopher-lua and
 * computes kstatus over the same objects. Also what each captured state must
 * read as, in both tools.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/** deploy/argocd/resource_customizations: `<group>/<Kind>/health.lua`, `testdata/`, `health_test.yaml`. */
export const CUSTOMIZATIONS = join(root, 'deploy', 'argocd', 'resource_customizations');

export type Kind = 'PrePulledImage' | 'RegistryCredential';
export const KINDS: Kind[] = ['PrePulledImage', 'RegistryCredential'];

/** The directory of one kind's customization. */
export function customizationDir(kind: Kind): string {
  return join(CUSTOMIZATIONS, 'prepull.dev', kind);
}

export interface Verdict {
  status: string;
  message: string;
}

export interface GitOpsVerdict {
  file: string;
  argocd: Verdict;
  kstatus: Verdict;
}

/** The states captured from a real cluster, and what Argo CD and kstatus must call each. */
export const EXPECTED: Record<Kind, Record<string, { argocd: string; kstatus: string }>> = {
  PrePulledImage: {
    healthy: { argocd: 'Healthy', kstatus: 'Current' },
    progressing: { argocd: 'Progressing', kstatus: 'InProgress' },
    // A missing tag needs a human (NotFound): Stalled, so kstatus and Flux call it Failed
    // at once instead of waiting out their timeout.
    degraded: { argocd: 'Degraded', kstatus: 'Failed' },
    'stale-generation': { argocd: 'Progressing', kstatus: 'InProgress' },
  },
  RegistryCredential: {
    healthy: { argocd: 'Healthy', kstatus: 'Current' },
    // Every write refused (a ResourceQuota) and retried: Reconciling.
    progressing: { argocd: 'Progressing', kstatus: 'InProgress' },
    degraded: { argocd: 'Degraded', kstatus: 'Failed' },
    'stale-generation': { argocd: 'Progressing', kstatus: 'InProgress' },
  },
};

/** Builds gitops-health (cached by its source's hash) and returns its path. */
export function buildGitOpsHealth(): string {
  const built = spawnSync('bash', [join(root, 'scripts', 'build-gitops-health.sh')], {
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (built.status !== 0) throw new Error(`building gitops-health failed: ${built.stderr}`);
  return built.stdout.trim();
}

/** Argo CD's and kstatus' verdicts on each object file, with `kind`'s health.lua. */
export function judge(binary: string, kind: Kind, files: string[]): GitOpsVerdict[] {
  const run = spawnSync(binary, [join(customizationDir(kind), 'health.lua'), ...files], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (run.status !== 0) throw new Error(`gitops-health failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as GitOpsVerdict[];
}
