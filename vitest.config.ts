import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The least-privilege check reads the audit log of every other file's requests, so it runs last. */
const RUNS_LAST = 'test/rbac/least-privilege.test.ts';

class LeastPrivilegeLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const last = (file: TestSpecification) => file.moduleId.endsWith(RUNS_LAST);
    return [...sorted.filter((f) => !last(f)), ...sorted.filter(last)];
  }
}

/**
 * Cluster tiers that need no real node, with what they wait on: kwok nodes,
 * the registry, the API server, refresh intervals. For the whole suite,
 * scripts/test.sh runs them as a second lane on a cluster of their own
 * (PREPULL_TEST_LANE=kwok, without a real node) beside the lane with the real
 * node (PREPULL_TEST_LANE=node, every other file), so that one lane's waiting
 * overlaps the other's work. Within a lane, files still run one at a time:
 * each starts an operator that watches the whole cluster, and some assert that
 * the cluster is quiet. A file here must not use `cluster.node`; a new tier
 * goes to the node lane unless it is listed here.
 */
const NO_REAL_NODE = [
  'test/api/bundle.test.ts',
  'test/api/deploy.test.ts',
  'test/api/validation.test.ts',
  'test/chart/chart.test.ts',
  'test/prepulledimage/failures.test.ts',
  'test/prepulledimage/images-from.test.ts',
  'test/prepulledimage/kwok.test.ts',
  'test/prepulledimage/node-readiness.test.ts',
  'test/registry/prepulledimage.test.ts',
  'test/registry/registry.test.ts',
  'test/registrycredential/admission.test.ts',
  'test/registrycredential/api.test.ts',
  'test/registrycredential/node-credentials-kwok.test.ts',
  'test/registrycredential/source-authority.test.ts',
  'test/registrymirror/api.test.ts',
  'test/registrymirror/kwok.test.ts',
  'test/runtime/runtime.test.ts',
  RUNS_LAST,
];
const lane = process.env.PREPULL_TEST_LANE;
if (lane !== undefined && lane !== 'node' && lane !== 'kwok') {
  throw new Error(`PREPULL_TEST_LANE must be node or kwok, not ${lane}`);
}

// Two tiers. Unit tests sit next to the code; cluster tiers live under test/ and
// share one real cluster (kube-apiserver, etcd, kwok, a kubelet with containerd,
// a password-protected registry) started once by the global setup.
export default defineConfig({
  test: {
    sequence: { sequencer: LeastPrivilegeLast },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'scripts/**/*.test.ts', 'test/**/*.unit.test.ts'],
        },
      },
      {
        test: {
          name: 'cluster',
          include: lane === 'kwok' ? NO_REAL_NODE : ['test/**/*.test.ts'],
          exclude: ['test/**/*.unit.test.ts', ...(lane === 'node' ? NO_REAL_NODE : [])],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
