import { beforeAll, describe, expect, inject, it } from 'vitest';
import { prePulledImageSpecSchema } from '../../src/api/prepulledimage.ts';
import { kubectl } from '../support/kubectl.ts';
import { badCases, goodCases, invalidSpecCases, manifestOf } from './cases.ts';

const cluster = inject('cluster');
const namespace = 'api-validation';

describe('the CRDs on a real API server', () => {
  beforeAll(() => {
    const applied = kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']);
    expect(applied.status, applied.stderr).toBe(0);
    const established = kubectl(cluster, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/prepulledimages.prepull.dev',
      'crd/registrycredentials.prepull.dev',
    ]);
    expect(established.status, established.stderr).toBe(0);
    kubectl(cluster, ['create', 'namespace', namespace]);
  });

  it('has the short names, categories and printer columns users type and read', () => {
    const names = kubectl(cluster, ['api-resources', '--api-group=prepull.dev', '-o', 'wide']);
    expect(names.stdout).toMatch(/prepulledimages\s+ppi\s+prepull\.dev\/v1alpha1\s+true\s+PrePulledImage/);
    expect(names.stdout).toMatch(
      /registrycredentials\s+regcred\s+prepull\.dev\/v1alpha1\s+false\s+RegistryCredential/,
    );
    const table = kubectl(cluster, ['get', 'ppi', '-n', namespace]);
    expect(table.status, table.stderr).toBe(0);
  });

  it('documents the spec fields for kubectl explain', () => {
    for (const [field, words] of [
      ['ppi.spec.refresh', 'pull their tags again'],
      ['ppi.spec.images.tarball', 'Exactly one of url, hostPath, persistentVolumeClaim'],
      ['ppi.spec.maxConcurrentPulls', 'How many nodes pull at once'],
      ['regcred.spec.serviceAccounts', 'merged, never overwritten'],
    ] as const) {
      const explained = kubectl(cluster, ['explain', field]);
      expect(explained.status, explained.stderr).toBe(0);
      expect(explained.stdout.replace(/\s+/g, ' ')).toContain(words);
    }
  });

  it.each(goodCases.map((c) => [c.name, c] as const))('accepts %s', (_, c) => {
    const created = kubectl(cluster, ['create', '-f', '-'], manifestOf(c, namespace));
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
  });

  it('lists accepted PrePulledImages with READY, STATUS and AGE columns', () => {
    const table = kubectl(cluster, ['get', 'ppi', '-n', namespace]);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+READY\s+STATUS\s+AGE$/);
  });

  it('has at least 25 bad specs to reject', () => {
    expect(badCases.length).toBeGreaterThanOrEqual(25);
  });

  it.each(badCases.map((c) => [c.name, c] as const))('rejects %s with a clear message', (_, c) => {
    const created = kubectl(cluster, ['create', '-f', '-'], manifestOf(c, namespace));
    expect(created.status).not.toBe(0);
    expect(created.stderr).toContain(c.rejectedWith);
  });

  it.each(invalidSpecCases.map((c) => [c.name, c] as const))(
    'takes %s, which the controller then refuses as InvalidSpec',
    (_, c) => {
      const created = kubectl(cluster, ['create', '-f', '-'], manifestOf(c, namespace));
      expect(created.status, created.stderr).toBe(0);
      const stored = JSON.parse(
        kubectl(cluster, ['get', 'ppi', c.name, '-n', namespace, '-o', 'json']).stdout,
      ) as { spec: unknown };
      // The controller's own spec parse, on the object as the API server stored it.
      const parsed = prePulledImageSpecSchema.safeParse(stored.spec);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.message).toContain(c.invalidSpec);
    },
  );
});
