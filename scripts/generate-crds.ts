/** Writes crds/*.yaml from the zod schemas in src/api, and deploy/policies.yaml from src/api/policies.ts. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrdFiles } from '../src/api/crd.ts';
import { renderPoliciesYaml } from '../src/api/policies.ts';

const dir = join(import.meta.dirname, '..', 'crds');
for (const [file, yaml] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(dir, file), yaml);
  console.log(`wrote crds/${file}`);
}
writeFileSync(join(import.meta.dirname, '..', 'deploy', 'policies.yaml'), renderPoliciesYaml());
console.log('wrote deploy/policies.yaml');
