/**
 * The mirrors module's memory on the node: every file it wrote, with the
 * SHA-256 of what it wrote, and the directories it created. A file is
 * Prepull's only while its content still has that digest, so a file someone
 * else wrote, or edited after Prepull, is never overwritten or removed. The
 * digest of a write in flight is recorded before the rename, so a crash
 * between the two leaves a file that is still recognised. Kept in the
 * agent's state directory on the host, so it survives agent restarts and
 * upgrades.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { NodeFiles } from '../node/files.ts';

const stateSchema = z.object({
  version: z.literal(1),
  files: z.array(
    z.object({
      path: z.string(),
      sha256: z.string().optional(),
      /** The digest of a write that may not have been renamed into place. */
      pendingSha256: z.string().optional(),
      mirror: z.object({ name: z.string(), uid: z.string() }),
    }),
  ),
  /** Directories Prepull created, removed again once empty. */
  dirs: z.array(z.string()),
});
export type MirrorsState = z.infer<typeof stateSchema>;
export type OwnedFile = MirrorsState['files'][number];

/** Hex SHA-256 of a file's content. */
export function sha256Of(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Whether the file as it is now (undefined: absent) is the one Prepull recorded. */
export function isStillOurs(entry: OwnedFile, current: Buffer | undefined): boolean {
  if (current === undefined) return true;
  const digest = sha256Of(current);
  return digest === entry.sha256 || digest === entry.pendingSha256;
}

/** The state at `path`; a missing file is an empty state, an unreadable one an error (nothing is assumed ours). */
export async function loadState(files: NodeFiles, path: string): Promise<MirrorsState> {
  const body = await files.read(path);
  if (body === undefined) return { version: 1, files: [], dirs: [] };
  const parsed = stateSchema.safeParse(JSON.parse(body.toString('utf8')));
  if (!parsed.success) throw new Error(`the mirrors state ${path} is not one this agent wrote`);
  return parsed.data;
}

/** Writes the state atomically (it is what makes a file Prepull's). */
export async function saveState(files: NodeFiles, path: string, state: MirrorsState): Promise<void> {
  await files.writeAtomic(path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
