/**
 * The node's files as the agent's modules (mirrors, node credentials) touch them, by their absolute
 * path on the host: the agent sees the host's filesystem under a root (its
 * host mount), tests under a temporary directory. Writes are atomic: a
 * temporary file in the same directory, fsync, rename, fsync of the
 * directory, so containerd (which reads hosts.toml at every pull) never sees
 * half a file and a crash leaves the old or the new one. I/O.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** File operations on the host's paths. */
export interface NodeFiles {
  /** The file's bytes, or undefined when there is none. */
  read(path: string): Promise<Buffer | undefined>;
  /** Writes `content` atomically, creating missing directories; returns the directories it created. */
  writeAtomic(path: string, content: string | Buffer, mode?: number): Promise<string[]>;
  /** Removes a file; a missing one is fine. */
  remove(path: string): Promise<void>;
  /** Removes a directory if it is empty; returns whether it did. */
  removeDirIfEmpty(path: string): Promise<boolean>;
  /** Whether a file or directory exists. */
  exists(path: string): Promise<boolean>;
  /** The names in a directory (empty when it does not exist). */
  list(path: string): Promise<string[]>;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** The host's files, seen under `root` ('/' when the agent runs in the host's mount namespace). */
export function hostFiles(root: string): NodeFiles {
  const at = (path: string) => join(root, path);

  async function syncDir(path: string): Promise<void> {
    const handle = await open(at(path), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Creates `dir` and its missing parents, returning those it created (outermost first). */
  async function makeDirs(dir: string): Promise<string[]> {
    const missing: string[] = [];
    let current = dir;
    while (!(await exists(current))) {
      missing.unshift(current);
      const parent = dirname(current);
      if (parent === current) break;
      current = parent;
    }
    for (const d of missing) await mkdir(at(d), { mode: 0o755 }).catch(ignoreExists);
    return missing;
  }

  async function exists(path: string): Promise<boolean> {
    try {
      await stat(at(path));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  return {
    async read(path) {
      try {
        return await readFile(at(path));
      } catch (err) {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
        throw err;
      }
    },
    async writeAtomic(path, content, mode = 0o644) {
      const dir = dirname(path);
      const created = await makeDirs(dir);
      const temporary = join(dir, `.${randomBytes(6).toString('hex')}.prepull-tmp`);
      const handle = await open(at(temporary), 'wx', mode);
      try {
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await rename(at(temporary), at(path));
      } catch (err) {
        await rm(at(temporary), { force: true });
        throw err;
      }
      await syncDir(dir);
      return created;
    },
    async remove(path) {
      await rm(at(path), { force: true });
      await syncDir(dirname(path)).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
    },
    async removeDirIfEmpty(path) {
      try {
        await rmdir(at(path));
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (isMissing(err) || code === 'ENOTEMPTY' || code === 'EEXIST') return false;
        throw err;
      }
    },
    exists,
    async list(path) {
      try {
        return await readdir(at(path));
      } catch (err) {
        if (isMissing(err)) return [];
        throw err;
      }
    },
  };
}

function ignoreExists(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
}
