/** Writes crds/*.yaml from the zod schemas in src/api. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCrdFiles } from '../src/api/crd.ts';

const dir = join(import.meta.dirname, '..', 'crds');
for (const [file, yaml] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(dir, file), yaml);
  console.log(`wrote crds/${file}`);
}
