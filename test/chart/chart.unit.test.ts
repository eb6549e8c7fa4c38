/**
 * The Helm chart's generated and versioned parts agree with their sources:
 * its CRDs are src/api's (written by scripts/generate-crds.ts, never by hand),
 * and its appVersion and default image are the operator's own. Pure file reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderCrdFiles } from '../../src/api/crd.ts';
import { releasedImage, version } from '../../src/version.ts';

const chart = join(import.meta.dirname, '..', '..', 'deploy', 'chart');

describe('deploy/chart', () => {
  it('carries exactly the CRDs src/api generates', () => {
    const generated = renderCrdFiles();
    expect(readdirSync(join(chart, 'crds')).sort()).toEqual(Object.keys(generated).sort());
    for (const [file, yaml] of Object.entries(generated)) {
      const committed = readFileSync(join(chart, 'crds', file), 'utf8');
      expect(committed, `deploy/chart/crds/${file} is stale: run node scripts/generate-crds.ts`).toBe(yaml);
    }
  });

  it("has the operator's version as appVersion, so its default image is the released one", () => {
    const meta = parse(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as {
      image: { repository: string; tag: string };
    };
    expect(meta.appVersion).toBe(version);
    expect(`${values.image.repository}:v${meta.appVersion}`).toBe(releasedImage);
  });
});
