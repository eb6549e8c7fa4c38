/**
 * The Prepull image's recipe, read from the final stage of the Dockerfile: its
 * layers (one per `COPY --from=parts`), user, working directory, environment,
 * entrypoint and command. The Dockerfile is the one source: Docker builds it
 * as it is, scripts/build-image.sh (buildah, no Docker engine) builds the same
 * layers and config from what this module reads, and the benchmarks and tests
 * run Node with the ENTRYPOINT's flags. Pure apart from reading the file.
 *
 *   node scripts/image-recipe.ts layers ARCH   one line per layer: SOURCE<TAB>DESTINATION<TAB>UID:GID
 *   node scripts/image-recipe.ts config        the `buildah config` arguments, one per line
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const dockerfilePath = join(import.meta.dirname, '..', 'Dockerfile');

/** One `COPY --from=parts SOURCE DESTINATION` of the final stage: one layer of the image. */
export interface RecipeLayer {
  /** Directory in the parts tree, `${TARGETARCH}` left in. */
  source: string;
  /** Where its contents go in the image. */
  destination: string;
  /** `--chown`, or 0:0 as COPY gives without it. */
  owner: { uid: number; gid: number };
}

/** What the final stage says about the image. */
export interface ImageRecipe {
  layers: RecipeLayer[];
  user: string;
  workingDir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
function instructions(text: string): { keyword: string; args: string }[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const space = line.search(/\s/);
      return {
        keyword: (space < 0 ? line : line.slice(0, space)).toUpperCase(),
        args: space < 0 ? '' : line.slice(space + 1).trim(),
      };
    });
}

function jsonArray(keyword: string, args: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    throw new Error(`Dockerfile: ${keyword} must be a JSON array of strings, not ${args}`);
  }
  if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) {
    throw new Error(`Dockerfile: ${keyword} must be a JSON array of strings, not ${args}`);
  }
  return value;
}

/** Parses the final stage (from the last FROM) of a Dockerfile written the way ours is. */
export function parseImageRecipe(text: string): ImageRecipe {
  const all = instructions(text);
  const lastFrom = all.findLastIndex((i) => i.keyword === 'FROM');
  if (lastFrom < 0 || all[lastFrom]!.args !== 'scratch') {
    throw new Error('Dockerfile: the final stage must be FROM scratch');
  }
  const recipe: ImageRecipe = { layers: [], user: '', workingDir: '/', env: {}, entrypoint: [], cmd: [] };
  for (const { keyword, args } of all.slice(lastFrom + 1)) {
    switch (keyword) {
      case 'ARG':
        if (args !== 'TARGETARCH') throw new Error(`Dockerfile: unexpected ARG ${args} in the final stage`);
        break;
      case 'COPY': {
        const words = args.split(/\s+/);
        const flags = words.filter((w) => w.startsWith('--'));
        const paths = words.filter((w) => !w.startsWith('--'));
        const chown = flags.find((f) => f.startsWith('--chown='))?.slice('--chown='.length);
        if (!flags.includes('--from=parts') || paths.length !== 2 || flags.length !== (chown ? 2 : 1)) {
          throw new Error(`Dockerfile: the final stage copies only from parts, one directory each: ${args}`);
        }
        const [uid, gid] = (chown ?? '0:0').split(':').map(Number);
        if (!Number.isInteger(uid) || !Number.isInteger(gid)) {
          throw new Error(`Dockerfile: --chown must be numeric UID:GID, not ${chown}`);
        }
        recipe.layers.push({ source: paths[0]!, destination: paths[1]!, owner: { uid: uid!, gid: gid! } });
        break;
      }
      case 'ENV': {
        const eq = args.indexOf('=');
        if (eq < 1 || /\s/.test(args)) throw new Error(`Dockerfile: write ENV as one NAME=value: ${args}`);
        recipe.env[args.slice(0, eq)] = args.slice(eq + 1);
        break;
      }
      case 'USER':
        recipe.user = args;
        break;
      case 'WORKDIR':
        recipe.workingDir = args;
        break;
      case 'ENTRYPOINT':
        recipe.entrypoint = jsonArray(keyword, args);
        break;
      case 'CMD':
        recipe.cmd = jsonArray(keyword, args);
        break;
      default:
        throw new Error(`Dockerfile: ${keyword} in the final stage is not something build-image.sh builds`);
    }
  }
  return recipe;
}

/** The recipe of the repository's Dockerfile. */
export function readImageRecipe(dockerfile: string = dockerfilePath): ImageRecipe {
  return parseImageRecipe(readFileSync(dockerfile, 'utf8'));
}

/**
 * The flags the image gives Node before the bundle (ENTRYPOINT ["node",
 * ...flags, "/app/prepull.mjs"]), so the benchmarks and tests run the operator
 * exactly as the image does.
 */
export function imageNodeFlags(dockerfile: string = dockerfilePath): string[] {
  const { entrypoint } = readImageRecipe(dockerfile);
  if (entrypoint[0] !== 'node' || entrypoint.at(-1) !== '/app/prepull.mjs') {
    throw new Error(`${dockerfile}: ENTRYPOINT must be ["node", ...flags, "/app/prepull.mjs"]`);
  }
  return entrypoint.slice(1, -1);
}

/**
 * The environment the image gives Node (its ENV lines but PATH, which names the
 * image's own directories), so the benchmarks and tests run the operator with
 * it as they run it with {@link imageNodeFlags}.
 */
export function imageNodeEnv(dockerfile: string = dockerfilePath): Record<string, string> {
  const { PATH: _path, ...env } = readImageRecipe(dockerfile).env;
  return env;
}

/** A layer's source directory for one platform (`${TARGETARCH}` filled in). */
export function layerSource(layer: RecipeLayer, arch: string): string {
  return layer.source.replace(/\$\{TARGETARCH\}/g, arch);
}

/** `buildah config` arguments for the recipe's image config. */
export function buildahConfigArgs(recipe: ImageRecipe): string[] {
  return [
    ...Object.entries(recipe.env).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
    '--user',
    recipe.user,
    '--workingdir',
    recipe.workingDir,
    '--entrypoint',
    JSON.stringify(recipe.entrypoint),
    '--cmd',
    JSON.stringify(recipe.cmd),
  ];
}

if (import.meta.main) {
  const [command, arch] = process.argv.slice(2);
  const recipe = readImageRecipe();
  if (command === 'layers' && arch) {
    for (const layer of recipe.layers) {
      const source = layerSource(layer, arch);
      process.stdout.write(`${source}\t${layer.destination}\t${layer.owner.uid}:${layer.owner.gid}\n`);
    }
  } else if (command === 'config') {
    process.stdout.write(`${buildahConfigArgs(recipe).join('\n')}\n`);
  } else {
    process.stderr.write('usage: node scripts/image-recipe.ts layers ARCH | config\n');
    process.exitCode = 2;
  }
}
