/**
 * dist/prepull.mjs, what the image runs, alone in a directory as in the image:
 * no node_modules, no sources. (The leader-election test in test/runtime runs
 * the operator itself from it against the cluster.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { imageNodeEnv, imageNodeFlags } from '../../scripts/build.ts';
import { renderCrdsYaml } from '../../src/api/crd.ts';
import { version } from '../../src/version.ts';

const bundle = inject('bundle');

function prepull(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [...imageNodeFlags(), bundle, ...args], {
    encoding: 'utf8',
    cwd: dirname(bundle),
    env: { ...imageNodeEnv(), PATH: process.env.PATH, HOME: dirname(bundle), ...env },
  });
}

describe('the bundle', () => {
  it('has nothing to import from: no node_modules in or above its directory', () => {
    let dir = dirname(bundle);
    for (;;) {
      expect(existsSync(join(dir, 'node_modules')), dir).toBe(false);
      if (dirname(dir) === dir) break;
      dir = dirname(dir);
    }
  });

  it('holds no comments, since V8 keeps and parses the whole source (scripts/build.ts)', () => {
    const text = readFileSync(bundle, 'utf8');
    // But the two esbuild writes at the end: where the licences are, and where the source map is.
    const ends = [
      '/*! For license information please see prepull.mjs.LEGAL.txt */',
      '//# sourceMappingURL=prepull.mjs.map',
    ];
    const comments = text.split('\n').filter((l) => /^\s*(\/\/|\/\*)/.test(l) && !ends.includes(l));
    expect(comments).toEqual([]);
    expect(/[\u0080-\uffff]/.test(text)).toBe(false);
  });

  it('prints the version and the same CRDs as the sources', () => {
    const v = prepull(['version']);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toBe(`prepull ${version}\n`);
    const crds = prepull(['crds']);
    expect(crds.status, crds.stderr).toBe(0);
    expect(crds.stdout).toBe(renderCrdsYaml());
  });

  it('without a kubeconfig says how to give one, instead of reaching for the embedded cluster', () => {
    const run = prepull(['run', '--health-address', '127.0.0.1:0']);
    expect(run.status).not.toBe(0);
    expect(run.stdout + run.stderr).toContain('no kubeconfig found: pass --kubeconfig');
  });
});
