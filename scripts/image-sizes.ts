/**
 * Prints each platform's compressed size in an oci-archive of the Prepull
 * image, layer by layer, named after the Dockerfile's COPY sources, and fails
 * when a platform reaches the budget (60 MiB compressed).
 *
 *   node scripts/image-sizes.ts ARCHIVE
 */

import { readImageRecipe } from './image-recipe.ts';
import { openOciArchive } from './oci-archive.ts';

/** What one platform of the image may weigh, compressed. */
export const SIZE_BUDGET_BYTES = 60 * 1024 * 1024;

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

if (import.meta.main) {
  const archive = openOciArchive(process.argv[2] ?? '');
  try {
    const names = readImageRecipe().layers.map((l) => l.source.split('/').filter(Boolean).at(-1));
    let over = false;
    for (const image of archive.images) {
      const total = image.layers.reduce((sum, l) => sum + l.size, 0);
      const parts = image.layers.map((l, i) => `${names[i] ?? `layer ${i + 1}`} ${mib(l.size)}`);
      process.stdout.write(`${image.platform}: ${mib(total)} compressed (${parts.join(', ')})\n`);
      over ||= total >= SIZE_BUDGET_BYTES;
    }
    if (over) {
      process.stderr.write(`a platform is at or over the ${mib(SIZE_BUDGET_BYTES)} budget\n`);
      process.exitCode = 1;
    }
  } finally {
    archive.close();
  }
}
