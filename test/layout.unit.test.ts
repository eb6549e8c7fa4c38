/**
 * The README's Layout section tells the truth: every file it names is there,
 * and each kind's folder under src/controllers/ names every file it holds
 * (tests aside). Pure: reads the README and the tree.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

/** The Layout block's entries: a folder (`src/runtime`, `src/controllers/prepulledimage`) and its text. */
function layoutEntries(): Array<{ folder: string; text: string }> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.split('\n## Layout\n')[1] ?? '';
  const block = section.split('```\n')[1]?.split('\n```')[0] ?? '';
  const entries: Array<{ folder: string; text: string }> = [];
  let parent = '';
  for (const line of block.split('\n')) {
    const entry = /^( {2})?([\w.-]+(?:\/[\w.-]+)*\/)\s+(.*)$/.exec(line);
    if (entry) {
      const folder = entry[2]!.replace(/\/$/, '');
      if (entry[1]) entries.push({ folder: `${parent}/${folder}`, text: entry[3]! });
      else {
        parent = folder;
        entries.push({ folder, text: entry[3]! });
      }
    } else if (entries.length > 0) {
      entries[entries.length - 1]!.text += ` ${line.trim()}`;
    }
  }
  return entries;
}

/** Every file under `dir`, by name. */
function filesUnder(dir: string): Set<string> {
  const names = new Set<string>();
  if (!existsSync(dir)) return names;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) names.add(entry.name);
  }
  return names;
}

describe("README's Layout section", () => {
  const entries = layoutEntries();

  it('is found, with the folders it is about', () => {
    const folders = entries.map((e) => e.folder);
    for (const folder of [
      'src/runtime',
      'src/controllers/prepulledimage',
      'src/controllers/registrycredential',
    ]) {
      expect(folders).toContain(folder);
    }
  });

  it('names only files that exist, in the folder it names them under', () => {
    const missing: string[] = [];
    for (const { folder, text } of entries) {
      const here = filesUnder(join(root, folder));
      // Source files only: what it names under dist/ is built, and absent from a fresh clone.
      for (const [name] of text.matchAll(/[\w./-]+\.ts\b/g)) {
        const found = name.includes('/') ? existsSync(join(root, name)) : here.has(name);
        if (!found) missing.push(`${folder}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("names every source file of each kind's folder", () => {
    const unnamed: string[] = [];
    for (const { folder, text } of entries.filter((e) => e.folder.startsWith('src/controllers/'))) {
      for (const name of readdirSync(join(root, folder))) {
        if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
        if (!new RegExp(`(^|[^\\w-])${name.replace('.', '\\.')}\\b`).test(text))
          unnamed.push(`${folder}/${name}`);
      }
    }
    expect(unnamed).toEqual([]);
  });
});
