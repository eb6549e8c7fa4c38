/**
 * The kubelet's config.json as text: where its `auths` entries are, and edits
 * that add, replace or remove single entries while every other byte of the
 * file stays as it was (others' entries, their order, formatting and any
 * other keys). Parsing and re-serialising would rewrite the whole file;
 * these edits touch only Prepull's entries. Pure.
 */

/** One `"key": value` member of a JSON object, by character offsets into the text. */
export interface Member {
  key: string;
  /** Offset of the key's opening quote. */
  start: number;
  valueStart: number;
  /** Offset just after the value. */
  valueEnd: number;
}

/** A JSON object in the text: its braces and members. */
export interface ObjectSpan {
  /** Offset of `{`. */
  open: number;
  /** Offset of `}`. */
  close: number;
  members: Member[];
}

/** The parts of a config.json the edits need; undefined fields are absent from the file. */
export interface ConfigView {
  root: ObjectSpan;
  /** The `auths` member of the top-level object, when it has one. */
  authsMember?: Member;
  /** The `auths` object, when present. */
  auths?: ObjectSpan;
}

/** What reading the text gave: a view to edit, or why it cannot be edited. */
export type ReadConfig = { ok: true; view: ConfigView } | { ok: false; problem: string };

/** Reads `text` as a config.json Prepull can merge into: a JSON object whose `auths`, if any, is an object. */
export function readConfig(text: string): ReadConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, problem: 'is not a JSON object' };
  }
  const root = scanObject(text, skipSpace(text, 0));
  const members = root.members.filter((m) => m.key === 'auths');
  if (members.length > 1) return { ok: false, problem: 'has more than one "auths" key' };
  const authsMember = members[0];
  if (!authsMember) return { ok: true, view: { root } };
  if (text[authsMember.valueStart] !== '{')
    return { ok: false, problem: 'has an "auths" that is not an object' };
  return { ok: true, view: { root, authsMember, auths: scanObject(text, authsMember.valueStart) } };
}

/** The raw text of each `auths` entry's value, by key (a key given twice lists every value). */
export function authEntries(text: string, view: ConfigView): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of view.auths?.members ?? []) {
    out.set(m.key, [...(out.get(m.key) ?? []), text.slice(m.valueStart, m.valueEnd)]);
  }
  return out;
}

/** Changes to `auths`: keys to set to a value's JSON text, keys to remove. */
export interface AuthsEdit {
  set: ReadonlyMap<string, string>;
  remove: ReadonlySet<string>;
}

/** The text after `edit`; `auths` is created when a key is set and there is none. Remove the file with {@link isEmptyConfig}. */
export function editAuths(text: string | undefined, edit: AuthsEdit): string {
  if (text === undefined) {
    if (edit.set.size === 0) return '{}\n';
    return `{\n  "auths": ${newObject([...edit.set], '  ')}\n}\n`;
  }
  const read = readConfig(text);
  if (!read.ok) throw new Error(`config.json ${read.problem}`);
  const { view } = read;
  if (!view.auths) {
    if (edit.set.size === 0) return text;
    const indent = memberIndent(text, view.root) ?? '';
    return addMembers(text, view.root, [['auths', newObject([...edit.set], indent)]]);
  }
  const auths = view.auths;
  const splices: Splice[] = [];
  const additions: Array<[string, string]> = [];
  for (const [key, value] of edit.set) {
    const existing = auths.members.filter((m) => m.key === key);
    if (existing.length === 0) additions.push([key, value]);
    for (const m of existing) splices.push({ from: m.valueStart, to: m.valueEnd, text: value });
  }
  const removed = auths.members.filter((m) => edit.remove.has(m.key) && !edit.set.has(m.key));
  splices.push(...removalSplices(auths, removed));
  const kept = auths.members.filter((m) => !removed.includes(m));
  let edited = applySplices(text, splices);
  if (additions.length > 0) {
    // Offsets after the edits above: re-read, then append.
    const again = readConfig(edited);
    if (!again.ok || !again.view.auths) throw new Error('config.json edit lost its auths object');
    edited =
      kept.length === 0
        ? applySplices(edited, [
            {
              from: again.view.auths.open,
              to: again.view.auths.close + 1,
              text: newObject(additions, memberIndent(edited, again.view.root) ?? ''),
            },
          ])
        : addMembers(edited, again.view.auths, additions);
  }
  return edited;
}

/** Removes the top-level `auths` member (when Prepull added it and it is empty again). */
export function removeAuthsKey(text: string): string {
  const read = readConfig(text);
  if (!read.ok || !read.view.authsMember) return text;
  return applySplices(text, removalSplices(read.view.root, [read.view.authsMember]));
}

/** Whether the text says nothing at all: `{}` or `{"auths": {}}`, in any spacing. */
export function isEmptyConfig(text: string): boolean {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const keys = Object.keys(parsed);
  if (keys.length === 0) return true;
  const auths = parsed.auths;
  return (
    keys.length === 1 &&
    typeof auths === 'object' &&
    auths !== null &&
    !Array.isArray(auths) &&
    Object.keys(auths).length === 0
  );
}

interface Splice {
  from: number;
  to: number;
  text: string;
}

function applySplices(text: string, splices: Splice[]): string {
  let out = text;
  for (const s of [...splices].sort((a, b) => b.from - a.from)) {
    out = out.slice(0, s.from) + s.text + out.slice(s.to);
  }
  return out;
}

/**
 * Splices that remove `members` from `object` with their separators, so that
 * an entry appended by {@link addMembers} and removed again leaves the text
 * exactly as before.
 */
function removalSplices(object: ObjectSpan, members: Member[]): Splice[] {
  const gone = new Set(members);
  const all = object.members;
  const keptCount = all.filter((m) => !gone.has(m)).length;
  if (keptCount === 0 && all.length > 0) {
    return [{ from: object.open + 1, to: object.close, text: '' }];
  }
  const splices: Splice[] = [];
  for (let i = 0; i < all.length; i++) {
    const m = all[i]!;
    if (!gone.has(m)) continue;
    // The nearest kept member before: remove from its end (its comma and our member) to ours.
    let before = i - 1;
    while (before >= 0 && gone.has(all[before]!)) before--;
    if (before >= 0) {
      splices.push({ from: all[before]!.valueEnd, to: m.valueEnd, text: '' });
      continue;
    }
    // None before: remove up to the next kept member's start (ours and the comma after it).
    let after = i + 1;
    while (after < all.length && gone.has(all[after]!)) after++;
    splices.push({ from: m.start, to: all[after]!.start, text: '' });
  }
  return mergeSplices(splices);
}

/** Overlapping removals merged into one, so applying them from the end stays correct. */
function mergeSplices(splices: Splice[]): Splice[] {
  const sorted = [...splices].sort((a, b) => a.from - b.from);
  const out: Splice[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s.from <= last.to) last.to = Math.max(last.to, s.to);
    else out.push({ ...s });
  }
  return out;
}

/** Appends members after the last one of a non-empty object, separated the way its first two are. */
function addMembers(text: string, object: ObjectSpan, members: Array<[string, string]>): string {
  const rendered = (sep: string) => members.map(([k, v]) => `,${sep}${JSON.stringify(k)}: ${v}`).join('');
  const last = object.members[object.members.length - 1];
  if (!last) {
    const indent = lineIndent(text, object.open);
    return applySplices(text, [
      { from: object.open, to: object.close + 1, text: newObject(members, indent) },
    ]);
  }
  const [first, second] = object.members;
  // What separates the first two members (after the comma), or the first from the brace.
  const sep = second
    ? text.slice(first!.valueEnd, second.start).replace(/^[ \t\n\r]*,/, '')
    : text.slice(object.open + 1, first!.start);
  return applySplices(text, [{ from: last.valueEnd, to: last.valueEnd, text: rendered(sep) }]);
}

/** A new object `{ "k": v, ... }` whose members sit one level (two spaces) deeper than `indent`. */
function newObject(members: Array<[string, string]>, indent: string): string {
  const inner = `${indent}  `;
  return `{\n${members.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${v}`).join(',\n')}\n${indent}}`;
}

/** The indentation of the members of `object` (the whitespace after the line break before its first member). */
function memberIndent(text: string, object: ObjectSpan): string | undefined {
  const first = object.members[0];
  if (!first) return undefined;
  return lineIndent(text, first.start);
}

/** The spaces and tabs between the last line break before `offset` and the first character of that line. */
function lineIndent(text: string, offset: number): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const match = /^[ \t]*/.exec(text.slice(lineStart, offset));
  return match?.[0] ?? '';
}

// A scanner for text JSON.parse has accepted: it only finds where things are.

function skipSpace(text: string, i: number): number {
  let at = i;
  while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  return at;
}

function scanString(text: string, i: number): number {
  let at = i + 1;
  while (text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
  return at + 1;
}

function scanValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return scanString(text, i);
  if (c === '{' || c === '[') {
    const close = c === '{' ? '}' : ']';
    let at = skipSpace(text, i + 1);
    while (text[at] !== close) {
      if (c === '{') {
        at = skipSpace(text, scanString(text, at));
        at = skipSpace(text, at + 1); // the colon
      }
      at = skipSpace(text, scanValue(text, at));
      if (text[at] === ',') at = skipSpace(text, at + 1);
    }
    return at + 1;
  }
  let at = i;
  while (at < text.length && !' \t\n\r,]}'.includes(text[at]!)) at++;
  return at;
}

function scanObject(text: string, open: number): ObjectSpan {
  const members: Member[] = [];
  let at = skipSpace(text, open + 1);
  while (text[at] !== '}') {
    const keyEnd = scanString(text, at);
    const key = JSON.parse(text.slice(at, keyEnd)) as string;
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const valueEnd = scanValue(text, valueStart);
    members.push({ key, start: at, valueStart, valueEnd });
    at = skipSpace(text, valueEnd);
    if (text[at] === ',') at = skipSpace(text, at + 1);
  }
  return { open, close: at, members };
}
