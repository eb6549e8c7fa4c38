/**
 * The import module's report, the one format the node agent writes (annotation
 * `prepull.dev/report.import` on its pod) and the PrePulledImage controller
 * reads: per tarball image of each PrePulledImage whose puller pod is on the
 * node, how its import stands. Pure.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ImageEntry } from '../../../api/prepulledimage.ts';

export const IMPORT_MODULE = 'import';

/** How one import stands on the node. */
export const importStateSchema = z.enum(['Importing', 'Imported', 'Failed']);

export const importEntrySchema = z.object({
  /** The PrePulledImage's UID and the image's index in its spec.images. */
  uid: z.string(),
  index: z.number().int().nonnegative(),
  /** {@link importFingerprint} of the entry imported: a report about an older spec does not count. */
  spec: z.string(),
  state: importStateSchema,
  reason: z.string().optional(),
  message: z.string().optional(),
  digest: z.string().optional(),
  /** Failed tries since the last success, for the back-off. */
  failures: z.number().int().nonnegative().optional(),
});

export const importReportSchema = z.object({ imports: z.array(importEntrySchema) });

export type ImportEntryReport = z.infer<typeof importEntrySchema>;
export type ImportReport = z.infer<typeof importReportSchema>;

/** At most this many entries: the report must fit its annotation budget. */
export const MAX_IMPORT_ENTRIES = 96;
/** Messages are cut to this length in the report. */
export const MAX_IMPORT_MESSAGE = 320;

/**
 * Which version of an entry (its image and source) a result is for. Keys are
 * sorted first: the agent reads the object as the API server stores it, the
 * controller as its schema parsed it, and the two order a source's fields
 * differently.
 */
export function importFingerprint(entry: Pick<ImageEntry, 'image' | 'tarball'>): string {
  return createHash('sha256')
    .update(canonicalJson([entry.image, entry.tarball ?? null]))
    .digest('hex')
    .slice(0, 16);
}

/** JSON with every object's keys in sorted order: equal values, equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
