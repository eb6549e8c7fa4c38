/**
 * Prepull's version and released image. package.json is imported, not read
 * from disk, so the bundled operator (dist/prepull.mjs) carries it too.
 */
import pkg from '../package.json' with { type: 'json' };

export const version: string = pkg.version;

/** The released Prepull image of this version: the operator, /hold and /prepull-import. */
export const releasedImage = `ghcr.io/prepull/prepull:v${version}`;
