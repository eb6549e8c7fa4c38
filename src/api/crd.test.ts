import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCrdFiles } from './crd.ts';

describe('crds/', () => {
  it.each(Object.entries(renderCrdFiles()))('%s matches what the zod schemas generate', (file, generated) => {
    const committed = readFileSync(join(import.meta.dirname, '..', '..', 'crds', file), 'utf8');
    expect(committed, `crds/${file} is stale: run node scripts/generate-crds.ts`).toBe(generated);
  });

  it('is structural: no additionalProperties:false, every property typed or int-or-string', () => {
    for (const yaml of Object.values(renderCrdFiles())) {
      expect(yaml).not.toMatch(/additionalProperties: false/);
      expect(yaml).not.toMatch(/anyOf/);
      expect(yaml).not.toMatch(/\$ref/);
    }
  });
});
