/**
 * One pass of the mirrors module on a node: make the node's hosts.toml files
 * those of the RegistryMirrors that select it, and nothing more.
 *
 * Conflict policy: Prepull writes a file only where there is none, or where
 * the file is still the one it wrote (state.ts). A file someone else put
 * there, or edited after Prepull, is never overwritten, moved or removed:
 * the RegistryMirror gets `Conflict` on that node, naming the file. So
 * removing Prepull's own files (and the directories it created) restores the
 * node exactly as it was, which a pass does for every object that was
 * deleted or stopped selecting the node. I/O.
 */
import { dirname } from 'node:path';
import { Reason } from '../../api/conditions.ts';
import type { MirrorNodeReport, MirrorNodeResult, RegistryMirrorSpec } from '../../api/registrymirror.ts';
import type { NodeFiles } from '../node/files.ts';
import { HOSTS_FILE, type NodeFile, renderMirrorFiles, shadowingHostDirectory } from './render.ts';
import type { NodeRuntime } from './runtime.ts';
import { isStillOurs, loadState, type MirrorsState, type OwnedFile, saveState, sha256Of } from './state.ts';

/** A RegistryMirror that selects this node, with its spec parsed. */
export interface SelectedMirror {
  name: string;
  uid: string;
  generation: number;
  /** For the claim order between two objects of one host: older first, then by name. */
  creationTimestamp: string;
  spec: RegistryMirrorSpec;
}

export interface ApplyMirrorsInput {
  files: NodeFiles;
  /** Host path of the module's state file. */
  statePath: string;
  runtime: NodeRuntime;
  mirrors: SelectedMirror[];
}

/** Makes the node match `mirrors`; returns the report to publish. */
export async function applyMirrors(input: ApplyMirrorsInput): Promise<MirrorNodeReport> {
  const { files, statePath, runtime } = input;
  const state = await loadState(files, statePath);
  const results: MirrorNodeResult[] = [];
  const wanted = new Set<string>();
  const result = (m: SelectedMirror, reason: string, message: string) =>
    results.push({ name: m.name, uid: m.uid, generation: m.generation, reason, message });

  const hosts = runtime.hosts;
  if (!hosts.ok) {
    // The files of objects still selecting the node stay: a config being fixed must not flap them.
    const selected = new Set(input.mirrors.map((m) => m.uid));
    for (const entry of state.files) if (selected.has(entry.mirror.uid)) wanted.add(entry.path);
    for (const m of input.mirrors) result(m, hosts.reason, hosts.message);
  } else {
    const claimed = new Map<string, SelectedMirror>();
    for (const m of [...input.mirrors].sort(claimOrder)) {
      const owner = claimed.get(m.spec.host);
      if (owner) {
        result(
          m,
          Reason.HostClaimed,
          `RegistryMirror ${owner.name} is older and sets ${m.spec.host} on this node; one host takes one RegistryMirror`,
        );
        continue;
      }
      claimed.set(m.spec.host, m);
      const rendered = renderMirrorFiles(m, hosts.dir);
      for (const f of rendered) wanted.add(f.path);
      try {
        const foreign = await foreignFile(files, state, rendered, hosts.dir, m.spec.host);
        if (foreign) {
          result(
            m,
            Reason.Conflict,
            `${foreign} exists and is not Prepull's; Prepull never overwrites it. Move it away (or delete it) to let this RegistryMirror set ${m.spec.host}`,
          );
          continue;
        }
        await writeFiles(files, statePath, state, m, rendered);
        const hostsToml = rendered[rendered.length - 1]!.path;
        result(m, Reason.Applied, [`${hostsToml} is current`, hosts.note].filter(Boolean).join('; '));
      } catch (err) {
        result(m, Reason.WriteFailed, `writing under ${hosts.dir}: ${errorText(err)}`);
      }
    }
  }

  await removeUnwanted(files, state, wanted);
  await saveState(files, statePath, state);
  return {
    runtime: {
      flavour: runtime.flavour,
      ...(runtime.version ? { version: runtime.version.text } : {}),
      ...(runtime.configFile ? { configFile: runtime.configFile } : {}),
      ...(hosts.ok ? { hostsDir: hosts.dir } : {}),
    },
    mirrors: results,
  };
}

function claimOrder(a: SelectedMirror, b: SelectedMirror): number {
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The first file in the way that is not Prepull's, if any (a `host_port_` hosts.toml shadows ours too). */
async function foreignFile(
  files: NodeFiles,
  state: MirrorsState,
  rendered: NodeFile[],
  hostsDir: string,
  host: string,
): Promise<string | undefined> {
  const shadow = shadowingHostDirectory(hostsDir, host);
  const paths = [...rendered.map((f) => f.path), ...(shadow ? [`${shadow}/${HOSTS_FILE}`] : [])];
  for (const path of paths) {
    const current = await files.read(path);
    if (current === undefined) continue;
    const entry = state.files.find((e) => e.path === path);
    if (!entry || !isStillOurs(entry, current)) return path;
  }
  return undefined;
}

async function writeFiles(
  files: NodeFiles,
  statePath: string,
  state: MirrorsState,
  mirror: SelectedMirror,
  rendered: NodeFile[],
): Promise<void> {
  for (const file of rendered) {
    const digest = sha256Of(file.content);
    const current = await files.read(file.path);
    let entry = state.files.find((e) => e.path === file.path);
    if (current !== undefined && sha256Of(current) === digest && entry) {
      entry.mirror = { name: mirror.name, uid: mirror.uid };
      continue;
    }
    if (!entry) {
      entry = { path: file.path, mirror: { name: mirror.name, uid: mirror.uid } };
      state.files.push(entry);
    }
    entry.mirror = { name: mirror.name, uid: mirror.uid };
    entry.pendingSha256 = digest;
    // Recorded before the rename: a crash in between leaves a file still known as ours.
    await saveState(files, statePath, state);
    const created = await files.writeAtomic(file.path, file.content);
    for (const dir of created) if (!state.dirs.includes(dir)) state.dirs.push(dir);
    entry.sha256 = digest;
    delete entry.pendingSha256;
  }
}

/**
 * Removes Prepull's files that no object wants any more, then the
 * directories it created once empty. A file edited since is left in place
 * and forgotten: it is someone's now.
 */
async function removeUnwanted(files: NodeFiles, state: MirrorsState, wanted: Set<string>): Promise<void> {
  const kept: OwnedFile[] = [];
  for (const entry of state.files) {
    if (wanted.has(entry.path)) {
      kept.push(entry);
      continue;
    }
    const current = await files.read(entry.path);
    if (current !== undefined && isStillOurs(entry, current)) await files.remove(entry.path);
  }
  state.files = kept;
  const deepestFirst = [...state.dirs].sort((a, b) => b.length - a.length);
  for (const dir of deepestFirst) {
    const inUse = kept.some((e) => dirname(e.path) === dir || e.path.startsWith(`${dir}/`));
    if (inUse) continue;
    if ((await files.removeDirIfEmpty(dir)) || !(await files.exists(dir))) {
      state.dirs = state.dirs.filter((d) => d !== dir);
    }
  }
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} ${e.path ?? ''}`.trim() : err instanceof Error ? err.message : String(err);
}
