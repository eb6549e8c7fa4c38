/**
 * The nodecreds module's memory on the node: every config.json entry it
 * wrote, by key, with the SHA-256 of the value text it wrote, and whether it
 * created the file or its `auths` key. An entry is Prepull's only while its
 * text still has that digest, so an entry someone else wrote, or edited after
 * Prepull, is never overwritten or removed. The digest of a write in flight
 * is recorded (pending) before the rename, so a crash between the two leaves
 * an entry that is still recognised. Kept in the agent's state directory on
 * the host (mode 0600), so it survives agent restarts and upgrades. The
 * schema and digests are pure; load and save do I/O.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { NodeFiles } from '../node/files.ts';

const stateSchema = z.object({
  version: z.literal(1),
  /** Prepull created config.json (there was none): it removes the file once nothing is left in it. */
  createdFile: z.boolean(),
  /** Prepull added the `auths` key to a file that had none: it removes it once empty. */
  addedAuths: z.boolean(),
  entries: z.array(
    z.object({
      key: z.string(),
      sha256: z.string().optional(),
      pendingSha256: z.string().optional(),
      credential: z.object({ name: z.string(), uid: z.string() }),
    }),
  ),
});
export type NodeCredsState = z.infer<typeof stateSchema>;
export type OwnedEntry = NodeCredsState['entries'][number];

/** The state of a node Prepull never wrote to. */
export const EMPTY_STATE: NodeCredsState = { version: 1, createdFile: false, addedAuths: false, entries: [] };

/** Hex SHA-256 of an entry's value text. */
export function sha256Of(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Whether an entry's value text is the one Prepull recorded. */
export function isOurs(entry: OwnedEntry, valueText: string): boolean {
  const digest = sha256Of(valueText);
  return digest === entry.sha256 || digest === entry.pendingSha256;
}

/**
 * The state to save before writing the file that `next` describes: every
 * entry of either, recognised by its old and its new digest, so whichever
 * file a crash leaves behind is still known as Prepull's.
 */
export function inFlightState(previous: NodeCredsState, next: NodeCredsState): NodeCredsState {
  const entries = new Map<string, OwnedEntry>();
  for (const e of previous.entries) entries.set(e.key, { ...e });
  for (const e of next.entries) {
    const old = entries.get(e.key);
    entries.set(e.key, {
      key: e.key,
      credential: e.credential,
      ...(old?.sha256 ? { sha256: old.sha256 } : {}),
      ...(e.sha256 && e.sha256 !== old?.sha256 ? { pendingSha256: e.sha256 } : {}),
    });
  }
  return {
    version: 1,
    createdFile: previous.createdFile || next.createdFile,
    addedAuths: previous.addedAuths || next.addedAuths,
    entries: [...entries.values()],
  };
}

/** The state at `path`; a missing file is an empty state, an unreadable one an error (nothing is assumed ours). */
export async function loadState(files: NodeFiles, path: string): Promise<NodeCredsState> {
  const body = await files.read(path);
  if (body === undefined) return structuredClone(EMPTY_STATE);
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) throw new Error(`the node credentials state ${path} is not one this agent wrote`);
  return parsed.data;
}

/** Writes the state atomically, mode 0600 (it is what makes an entry Prepull's). */
export async function saveState(files: NodeFiles, path: string, state: NodeCredsState): Promise<void> {
  await files.writeAtomic(path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
