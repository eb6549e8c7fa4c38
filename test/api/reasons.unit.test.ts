/**
 * The README's "Troubleshooting by reason" names every reason the code can
 * write, so a new reason cannot ship without its meaning and what to do. Pure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Reason } from '../../src/api/conditions.ts';

function troubleshooting(): string {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Troubleshooting by reason\n');
  if (start < 0) throw new Error('README.md has no "## Troubleshooting by reason" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

describe("README's troubleshooting by reason", () => {
  it('names every reason of src/api/conditions.ts', () => {
    const section = troubleshooting();
    const missing = Object.values(Reason).filter((reason) => !section.includes(`\`${reason}\``));
    expect(missing).toEqual([]);
  });

  it('names no reason the code does not have', () => {
    const known = new Set<string>(Object.values(Reason));
    // The first column of each table row: the reasons it explains.
    const named = troubleshooting()
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1] ?? ''));
    expect(named.filter((reason) => !known.has(reason))).toEqual([]);
  });
});
