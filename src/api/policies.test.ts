import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { renderPoliciesYaml, SOURCE_ACCESS_POLICY } from './policies.ts';

describe('deploy/policies.yaml', () => {
  it.each(['deploy/policies.yaml', 'deploy/chart/templates/policies.yaml'])(
    '%s matches what src/api/policies.ts generates',
    (file) => {
      const committed = readFileSync(join(import.meta.dirname, '..', '..', file), 'utf8');
      expect(committed, `${file} is stale: run node scripts/generate-crds.ts`).toBe(renderPoliciesYaml());
    },
  );

  it('is in the kustomization, so deploy/ installs it', () => {
    const kustomization = readFileSync(
      join(import.meta.dirname, '..', '..', 'deploy', 'kustomization.yaml'),
      'utf8',
    );
    expect(kustomization).toMatch(/^\s+- policies\.yaml$/m);
  });

  it('binds the policy it defines, denying', () => {
    const [policy, binding] = parseAllDocuments(renderPoliciesYaml()).map((d) => d.toJS());
    expect(policy.metadata.name).toBe(SOURCE_ACCESS_POLICY);
    expect(binding.spec).toEqual({ policyName: SOURCE_ACCESS_POLICY, validationActions: ['Deny'] });
  });
});
