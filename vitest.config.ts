import { defineConfig } from 'vitest/config';

// Two tiers. Unit tests sit next to the code; cluster tiers live under test/ and
// share one real cluster (kube-apiserver, etcd, kwok, a kubelet with containerd,
// a password-protected registry) started once by the global setup.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'scripts/**/*.test.ts', 'test/harness/**/*.unit.test.ts'],
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/**/*.test.ts'],
          exclude: ['test/harness/**/*.unit.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
