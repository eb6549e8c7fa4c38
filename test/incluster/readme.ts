/**
 * The README's "Try it" section as a new user reads it: its shell commands
 * and the YAML they apply, taken from README.md so that the in-cluster tier
 * runs what the docs say and the docs cannot rot. Pure apart from reading
 * the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Manifest, parseManifests } from '../chart/manifests.ts';

const README = join(import.meta.dirname, '..', '..', 'README.md');
const HEADING = '### Try it: a first RegistryCredential and PrePulledImage';

/** The section's commands (continuation lines joined, comments dropped) and the objects of its YAML. */
export interface TryIt {
  /** Each command as its words, quotes removed: `['kubectl', 'create', 'secret', …]`. */
  commands: string[][];
  objects: Manifest[];
}

/** Reads the "Try it" section of README.md (or of `markdown`). */
export function readTryIt(markdown: string = readFileSync(README, 'utf8')): TryIt {
  const start = markdown.indexOf(`\n${HEADING}\n`);
  if (start < 0) throw new Error(`README.md has no section "${HEADING}"`);
  const rest = markdown.slice(start + HEADING.length + 2);
  const end = rest.search(/\n#{1,3} /);
  const section = end < 0 ? rest : rest.slice(0, end);
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1],
    body: m[2] ?? '',
  }));
  const shell = blocks.filter((b) => b.lang === 'sh');
  const yaml = blocks.filter((b) => b.lang === 'yaml');
  if (shell.length !== 1 || yaml.length !== 1) {
    throw new Error(`"${HEADING}" must hold one sh block and one yaml block`);
  }
  return { commands: shellCommands(shell[0]!.body), objects: parseManifests(yaml[0]!.body) };
}

/** Lines of a shell block as words: `\` continuations joined, `#` comments and quotes dropped. */
export function shellCommands(block: string): string[][] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(/\s+/).map((word) => word.replace(/["']/g, '')));
}

/** The one command that starts with `prefix` (e.g. `kubectl create secret`); throws when not exactly one. */
export function commandStartingWith(commands: string[][], prefix: string): string[] {
  const words = prefix.split(' ');
  const found = commands.filter((c) => words.every((w, i) => c[i] === w));
  if (found.length !== 1) throw new Error(`expected one "${prefix}" command, found ${found.length}`);
  return found[0]!;
}

/** `command` with the value of each `--flag=value` in `values` replaced. */
export function withFlags(command: string[], values: Record<string, string>): string[] {
  return command.map((word) => {
    const flag = word.split('=')[0]!;
    return flag in values ? `${flag}=${values[flag]}` : word;
  });
}
