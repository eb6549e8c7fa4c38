/**
 * The README's "Try it" section, checked without a cluster: it parses, its
 * commands are the ones the in-cluster tier runs, and its objects pass the
 * CRDs' own schemas (the zod schemas they are generated from). Pure.
 */
import { describe, expect, it } from 'vitest';
import { prePulledImageSpecSchema } from '../../src/api/prepulledimage.ts';
import { registryCredentialSpecSchema } from '../../src/api/registrycredential.ts';
import { commandStartingWith, readTryIt, shellCommands, withFlags } from './readme.ts';

describe("README's Try it section", () => {
  const tryIt = readTryIt();

  it('has the commands the in-cluster tier runs', () => {
    for (const prefix of ['kubectl create secret docker-registry', 'kubectl wait', 'kubectl get']) {
      expect(() => commandStartingWith(tryIt.commands, prefix)).not.toThrow();
    }
  });

  it('has objects the CRD schemas accept', () => {
    expect(tryIt.objects.map((o) => o.kind)).toEqual(['Namespace', 'RegistryCredential', 'PrePulledImage']);
    const spec = (kind: string) => tryIt.objects.find((o) => o.kind === kind)?.spec;
    expect(registryCredentialSpecSchema.safeParse(spec('RegistryCredential')).error).toBeUndefined();
    expect(prePulledImageSpecSchema.safeParse(spec('PrePulledImage')).error).toBeUndefined();
  });
});

describe('shellCommands and withFlags', () => {
  it('joins continuations, drops comments and quotes, and replaces flag values', () => {
    const commands = shellCommands(
      '# setup\nkubectl create secret x \\\n  --password="$P" # why\nkubectl get ppi\n',
    );
    expect(commands).toEqual([
      ['kubectl', 'create', 'secret', 'x', '--password=$P'],
      ['kubectl', 'get', 'ppi'],
    ]);
    expect(withFlags(commands[0]!, { '--password': 'secret' })).toEqual([
      'kubectl',
      'create',
      'secret',
      'x',
      '--password=secret',
    ]);
  });

  it('refuses a section without exactly one sh and one yaml block', () => {
    expect(() => readTryIt('# x\n')).toThrow(/no section/);
  });
});
