/**
 * Writes crds/*.yaml from the zod schemas in src/api, the same files into the
 * Helm chart's crds/ (Helm reads CRDs only from inside the chart), and
 * deploy/policies.yaml from src/api/policies.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrdFiles } from '../src/api/crd.ts';
import { renderPoliciesYaml } from '../src/api/policies.ts';

const root = join(import.meta.dirname, '..');
for (const dir of ['crds', join('deploy', 'chart', 'crds')]) {
  mkdirSync(join(root, dir), { recursive: true });
  for (const [file, yaml] of Object.entries(renderCrdFiles())) {
    writeFileSync(join(root, dir, file), yaml);
    console.log(`wrote ${dir}/${file}`);
  }
}
// The chart installs the same policies as the kustomize base (Helm reads templates/ only).
for (const file of [join('deploy', 'policies.yaml'), join('deploy', 'chart', 'templates', 'policies.yaml')]) {
  writeFileSync(join(root, file), renderPoliciesYaml());
  console.log(`wrote ${file}`);
}
