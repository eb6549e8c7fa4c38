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
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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
    // Without comments and indentation: V8 keeps the source and parses it, and at 5000 kwok nodes with
    // 100 PrePulledImages a fresh operator's RSS is 131 MiB instead of 141. Names stay (stack traces
    // keep their function names); the linked source map gives the lines.
    minifyWhitespace: true,
    legalComments: 'linked',
    sourcemap: 'linked',
    logLevel: 'warning',
    absWorkingDir: root,
  });
  writeFileSync(outfile, asciiOnly(readFileSync(outfile, 'utf8')));
  return outfile;
}

/**
 * The bundle with every non-ASCII character written as a `\u` escape. esbuild
 * escapes them in code (its default `charset: 'ascii'`) but keeps comments as
 * they are, and dependencies' comments hold a few (’, §, —). V8 keeps a
 * script's source in memory for its whole life, and one such character makes
 * it a two-byte string: twice the memory for the whole file.
 * Inside a comment the escape is inert text.
 */
export function asciiOnly(source: string): string {
  // Per UTF-16 unit: a character beyond the BMP becomes its surrogate pair, as JavaScript writes it.
  return source.replace(
    /[\u0080-\uffff]/g,
    (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The flags and environment the image gives Node; the Dockerfile's ENTRYPOINT and ENV are their one source. */
export { imageNodeEnv, imageNodeFlags } from './image-recipe.ts';

if (import.meta.main) {
  // An output path may be given; inside the checkout, the source map's paths do not depend on where it is.
  const out = await buildBundle(process.argv[2] ? resolve(process.argv[2]) : bundlePath);
  process.stdout.write(`built ${relative(process.cwd(), out)}\n`);
}
