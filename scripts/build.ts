/**
 * Builds dist/prepull.mjs: the operator and CLI in one JavaScript file, what
 * the container image runs. `npm run build`.
 *
 * Why a bundle: Node loads every module a package imports, and
 * @kubernetes/client-node's config module imports its whole generated API
 * (2,700 model files) for two symbols. Tree-shaken into one file, `prepull
 * run` starts at about 95 MiB RSS instead of 160 MiB, and needs no
 * node_modules and no TypeScript stripping at run time.
 *
 * The embedded local cluster (`npm start` with no kubeconfig) is left out: it
 * needs the test harness of a source checkout.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';

const root = join(import.meta.dirname, '..');

export const bundlePath = join(root, 'dist', 'prepull.mjs');

/** Builds the bundle (about half a second) and returns its path. */
export async function buildBundle(outfile: string = bundlePath): Promise<string> {
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // Dependencies written as CommonJS call require() for Node's own modules.
    banner: {
      js: "import { createRequire as prepullCreateRequire } from 'node:module';\nconst require = prepullCreateRequire(import.meta.url);",
    },
    legalComments: 'linked',
    sourcemap: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
  });
  return outfile;
}

/**
 * The flags the image gives Node before the bundle, read from the Dockerfile's
 * ENTRYPOINT (["node", ...flags, "/app/prepull.mjs"]) so the benchmarks and
 * tests run the operator exactly as the image does.
 */
export function imageNodeFlags(dockerfile: string = join(root, 'Dockerfile')): string[] {
  const line = readFileSync(dockerfile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error(`${dockerfile} has no ENTRYPOINT`);
  const entrypoint: unknown = JSON.parse(line.slice('ENTRYPOINT '.length));
  if (
    !Array.isArray(entrypoint) ||
    entrypoint[0] !== 'node' ||
    entrypoint.at(-1) !== '/app/prepull.mjs' ||
    !entrypoint.every((a) => typeof a === 'string')
  ) {
    throw new Error(`${dockerfile}: ENTRYPOINT must be ["node", ...flags, "/app/prepull.mjs"], not ${line}`);
  }
  return entrypoint.slice(1, -1);
}

if (import.meta.main) {
  const out = await buildBundle();
  process.stdout.write(`built ${relative(process.cwd(), out)}\n`);
}
