import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RegistryMirrorSpec } from '../../api/registrymirror.ts';
import { hostFiles, type NodeFiles } from '../node/files.ts';
import { applyMirrors, type SelectedMirror } from './apply.ts';
import type { NodeRuntime } from './runtime.ts';

const HOSTS_DIR = '/etc/containerd/certs.d';
const STATE = '/var/lib/prepull/mirrors.json';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const runtime: NodeRuntime = { flavour: 'containerd', hosts: { ok: true, dir: HOSTS_DIR } };

let root: string;
let files: NodeFiles;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'prepull-mirrors-'));
  files = hostFiles(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const at = (path: string) => join(root, path);
const read = (path: string) => readFileSync(at(path), 'utf8');

function mirror(name: string, spec: Partial<RegistryMirrorSpec> = {}, created = '2026-01-01T00:00:00Z') {
  return {
    name,
    uid: `uid-${name}`,
    generation: 1,
    creationTimestamp: created,
    spec: { host: 'docker.io', mirrors: [{ url: 'https://m.local' }], ...spec },
  } satisfies SelectedMirror;
}

const apply = (mirrors: SelectedMirror[], r: NodeRuntime = runtime) =>
  applyMirrors({ files, statePath: STATE, runtime: r, mirrors });

/** Every file under the root but Prepull's state, with its content. */
function snapshot(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(at(dir), { withFileTypes: true })) {
      const path = join(dir, name.name);
      if (name.isDirectory()) walk(path);
      else if (path !== STATE) out[path] = read(path);
    }
  };
  walk('/');
  return out;
}

describe('applyMirrors', () => {
  it('writes hosts.toml and the CA beside it, and reports Applied', async () => {
    const report = await apply([mirror('hub', { mirrors: [{ url: 'https://m.local', caBundle: PEM }] })]);
    expect(report.mirrors).toEqual([
      {
        name: 'hub',
        uid: 'uid-hub',
        generation: 1,
        reason: 'Applied',
        message: `${HOSTS_DIR}/docker.io/hosts.toml is current`,
      },
    ]);
    expect(report.runtime).toEqual({ flavour: 'containerd', hostsDir: HOSTS_DIR });
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toContain(
      `ca = "${HOSTS_DIR}/docker.io/prepull-ca-0.crt"`,
    );
    expect(read(`${HOSTS_DIR}/docker.io/prepull-ca-0.crt`)).toBe(PEM);
    // No temporary file is left behind by the atomic writes.
    expect(readdirSync(at(`${HOSTS_DIR}/docker.io`)).sort()).toEqual(['hosts.toml', 'prepull-ca-0.crt']);
  });

  it('restores the node exactly as it was when the object goes, keeping what was there before', async () => {
    mkdirSync(at(`${HOSTS_DIR}/127.0.0.1:5443`), { recursive: true });
    writeFileSync(at(`${HOSTS_DIR}/127.0.0.1:5443/hosts.toml`), 'server = "https://127.0.0.1:5443"\n');
    const before = snapshot();
    await apply([mirror('hub', { mirrors: [{ url: 'https://m.local', caBundle: PEM }] })]);
    expect(snapshot()).not.toEqual(before);
    await apply([]);
    expect(snapshot()).toEqual(before);
    // The host directory Prepull created is gone too; the one that existed stays.
    expect(existsSync(at(`${HOSTS_DIR}/docker.io`))).toBe(false);
    expect(existsSync(at(HOSTS_DIR))).toBe(true);
  });

  it('never overwrites a file someone else wrote: Conflict, naming it, and the file untouched', async () => {
    mkdirSync(at(`${HOSTS_DIR}/docker.io`), { recursive: true });
    writeFileSync(at(`${HOSTS_DIR}/docker.io/hosts.toml`), 'theirs\n');
    const report = await apply([mirror('hub')]);
    expect(report.mirrors[0]).toMatchObject({ reason: 'Conflict' });
    expect(report.mirrors[0]?.message).toContain(
      `${HOSTS_DIR}/docker.io/hosts.toml exists and is not Prepull's`,
    );
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toBe('theirs\n');
    await apply([]);
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toBe('theirs\n');
  });

  it('treats a file edited after Prepull wrote it as someone else’s: reported, then left in place', async () => {
    await apply([mirror('hub')]);
    writeFileSync(at(`${HOSTS_DIR}/docker.io/hosts.toml`), 'edited by hand\n');
    const report = await apply([mirror('hub', { mirrors: [{ url: 'https://other.local' }] })]);
    expect(report.mirrors[0]?.reason).toBe('Conflict');
    await apply([]);
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toBe('edited by hand\n');
  });

  it('rewrites its own file when the spec changes, and drops a CA no longer asked for', async () => {
    await apply([mirror('hub', { mirrors: [{ url: 'https://m.local', caBundle: PEM }] })]);
    const report = await apply([mirror('hub', { mirrors: [{ url: 'https://n.local' }] })]);
    expect(report.mirrors[0]?.reason).toBe('Applied');
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toContain('https://n.local');
    expect(existsSync(at(`${HOSTS_DIR}/docker.io/prepull-ca-0.crt`))).toBe(false);
  });

  it('gives a host to the oldest object that sets it; the next one is HostClaimed until it goes', async () => {
    const older = mirror('a', {}, '2026-01-01T00:00:00Z');
    const newer = mirror('b', { mirrors: [{ url: 'https://b.local' }] }, '2026-01-02T00:00:00Z');
    const report = await apply([newer, older]);
    expect(report.mirrors.map((m) => [m.name, m.reason])).toEqual([
      ['a', 'Applied'],
      ['b', 'HostClaimed'],
    ]);
    // Once the older one goes, the newer one takes over Prepull's file (no Conflict with itself).
    expect((await apply([newer])).mirrors[0]?.reason).toBe('Applied');
    expect(read(`${HOSTS_DIR}/docker.io/hosts.toml`)).toContain('https://b.local');
  });

  it("reports a containerd host_port_ file that would shadow Prepull's", async () => {
    mkdirSync(at(`${HOSTS_DIR}/r.local_5000_`), { recursive: true });
    writeFileSync(at(`${HOSTS_DIR}/r.local_5000_/hosts.toml`), 'theirs\n');
    const report = await apply([mirror('r', { host: 'r.local:5000' })]);
    expect(report.mirrors[0]?.message).toContain('r.local_5000_/hosts.toml exists');
  });

  it("reports the node's runtime problem for every object and keeps their files while it lasts", async () => {
    await apply([mirror('hub')]);
    const broken: NodeRuntime = {
      flavour: 'containerd',
      version: { major: 1, minor: 6, text: '1.6.20~ds1' },
      configFile: '/etc/containerd/config.toml',
      hosts: { ok: false, reason: 'ConfigPathNotSet', message: 'add config_path' },
    };
    const report = await apply([mirror('hub'), mirror('k8s', { host: 'registry.k8s.io' })], broken);
    expect(report.mirrors.map((m) => m.reason)).toEqual(['ConfigPathNotSet', 'ConfigPathNotSet']);
    expect(report.runtime).toEqual({
      flavour: 'containerd',
      version: '1.6.20~ds1',
      configFile: '/etc/containerd/config.toml',
    });
    expect(existsSync(at(`${HOSTS_DIR}/docker.io/hosts.toml`))).toBe(true);
    // Deselected meanwhile: removed even so.
    await apply([], broken);
    expect(existsSync(at(`${HOSTS_DIR}/docker.io/hosts.toml`))).toBe(false);
  });

  it('recognises its own file after a crash between recording a write and renaming it', async () => {
    await apply([mirror('hub')]);
    const state = JSON.parse(read(STATE)) as { files: { sha256?: string; pendingSha256?: string }[] };
    const onDisk = state.files[0]!.sha256;
    // As if the file on disk was the write in flight, the one before it recorded as done.
    state.files[0]!.sha256 = 'f'.repeat(64);
    writeFileSync(
      at(STATE),
      JSON.stringify({ ...state, files: [{ ...state.files[0], pendingSha256: onDisk }] }),
    );
    const next = mirror('hub', { mirrors: [{ url: 'https://n.local' }] });
    expect((await apply([next])).mirrors[0]?.reason).toBe('Applied');
    // Without that record the same file would be someone else's.
    writeFileSync(
      at(STATE),
      JSON.stringify({ ...state, files: [{ ...state.files[0], pendingSha256: undefined }] }),
    );
    expect((await apply([next])).mirrors[0]?.reason).toBe('Conflict');
  });

  it('refuses a state file it did not write rather than take files for its own', async () => {
    mkdirSync(at('/var/lib/prepull'), { recursive: true });
    writeFileSync(at(STATE), '{"version": 9}');
    await expect(apply([mirror('hub')])).rejects.toThrow(/not one this agent wrote/);
  });
});
