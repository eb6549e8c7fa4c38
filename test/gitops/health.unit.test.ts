/**
 * The Argo CD health checks under deploy/argocd, run by gopher-lua the way
 * Argo CD runs them (test/gitops/health, built and cached by source hash),
 * over objects captured from a real cluster (test/gitops/capture.test.ts):
 * each health_test.yaml case gives its status and message, and kstatus (what
 * Flux waits on) computes the status EXPECTED names. The argocd-cm snippet
 * carries the same scripts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildGitOpsHealth, CUSTOMIZATIONS, customizationDir, EXPECTED, judge, KINDS } from './checks.ts';

interface HealthTest {
  tests: { healthStatus: { status: string; message: string }; inputPath: string }[];
}

let binary: string;
beforeAll(() => {
  binary = buildGitOpsHealth();
}, 900_000);

describe.each(KINDS)('Argo CD and kstatus health of %s', (kind) => {
  const dir = customizationDir(kind);
  const cases = (parse(readFileSync(join(dir, 'health_test.yaml'), 'utf8')) as HealthTest).tests;

  it('has a health_test.yaml case for every captured state, and testdata for every case', () => {
    expect(cases.map((c) => basename(c.inputPath, '.yaml')).sort()).toEqual(
      Object.keys(EXPECTED[kind]).sort(),
    );
    expect(readdirSync(join(dir, 'testdata')).sort()).toEqual(cases.map((c) => basename(c.inputPath)).sort());
    for (const c of cases) expect(existsSync(join(dir, c.inputPath)), c.inputPath).toBe(true);
  });

  it("gives each case health_test.yaml's status and message (gopher-lua, as Argo CD runs health.lua)", () => {
    const verdicts = judge(
      binary,
      kind,
      cases.map((c) => join(dir, c.inputPath)),
    );
    expect(verdicts.map((v) => v.argocd)).toEqual(cases.map((c) => c.healthStatus));
  });

  it('and kstatus computes the status Flux waits on', () => {
    const verdicts = judge(
      binary,
      kind,
      cases.map((c) => join(dir, c.inputPath)),
    );
    expect(verdicts.map((v) => [basename(v.file, '.yaml'), v.kstatus.status])).toEqual(
      cases.map((c) => [
        basename(c.inputPath, '.yaml'),
        EXPECTED[kind][basename(c.inputPath, '.yaml')]?.kstatus,
      ]),
    );
  });
});

describe('deploy/argocd/argocd-cm.yaml', () => {
  it('carries each health.lua as resource.customizations.health.<group>_<Kind>', () => {
    const cm = parse(readFileSync(join(CUSTOMIZATIONS, '..', 'argocd-cm.yaml'), 'utf8')) as {
      data: Record<string, string>;
    };
    for (const kind of KINDS) {
      expect(cm.data[`resource.customizations.health.prepull.dev_${kind}`], kind).toBe(
        readFileSync(join(customizationDir(kind), 'health.lua'), 'utf8'),
      );
    }
  });
});
