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
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.unit.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
