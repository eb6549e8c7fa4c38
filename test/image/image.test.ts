/**
 * The Prepull image that scripts/build-image.sh builds (the global setup
 * builds it or takes it from the cache): what each platform holds, read from
 * the oci-archive without running anything but the amd64 Node once in a
 * chroot; that it is what the Dockerfile describes; and that building it again
 * from the same inputs gives the same index digest.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { imageNodeFlags, layerSource, readImageRecipe } from '../../scripts/image-recipe.ts';
import { SIZE_BUDGET_BYTES } from '../../scripts/image-sizes.ts';
import { layerEntries, type OciArchive, openOciArchive, type TarEntry } from '../../scripts/oci-archive.ts';

const image = inject('image');
const cluster = inject('cluster');
const script = join(import.meta.dirname, '..', '..', 'scripts', 'build-image.sh');
const recipe = readImageRecipe();
/** ELF e_machine values: EM_X86_64 and EM_AARCH64. */
const ELF_MACHINE = { amd64: 62, arm64: 183 } as const;
const ARCHES = ['amd64', 'arm64'] as const;

let archive: OciArchive;
const layersOf = new Map<string, TarEntry[][]>();

beforeAll(() => {
  archive = openOciArchive(image.archive);
  for (const platform of archive.images) {
    layersOf.set(
      platform.platform,
      platform.layers.map((l) => layerEntries(archive, l)),
    );
  }
});
afterAll(() => archive?.close());

/** The image's file system for a platform: every layer applied in order (none deletes anything). */
function fileSystem(arch: string): Map<string, TarEntry> {
  const files = new Map<string, TarEntry>();
  for (const layer of layersOf.get(`linux/${arch}`) ?? []) for (const e of layer) files.set(e.path, e);
  return files;
}

function configOf(arch: string) {
  const found = archive.images.find((i) => i.platform === `linux/${arch}`);
  if (!found) throw new Error(`no linux/${arch} image in ${image.archive}`);
  return found.config;
}

/** One line per entry: what a layer must hold, compared as text so a difference reads plainly. */
function describeEntry(
  path: string,
  e: Pick<TarEntry, 'type' | 'mode' | 'uid' | 'gid' | 'linkName' | 'data'>,
) {
  const what =
    e.type === 'file'
      ? `${e.data.length} ${createHash('sha256').update(e.data).digest('hex').slice(0, 16)}`
      : e.type === 'symlink'
        ? `-> ${e.linkName}`
        : '';
  return `${path} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${what}`.trim();
}

it('is a linux/amd64 + linux/arm64 index under the release name', () => {
  expect(archive.name).toBe(image.name);
  expect(archive.indexDigest).toBe(image.indexDigest);
  expect(archive.images.map((i) => i.platform).sort()).toEqual(['linux/amd64', 'linux/arm64']);
});

describe.each(ARCHES)('linux/%s', (arch) => {
  it('has the Dockerfile config: user 65532, entrypoint with its Node flags, command, working dir, PATH', () => {
    const { config, os, architecture } = configOf(arch);
    expect({ os, architecture }).toEqual({ os: 'linux', architecture: arch });
    expect(config.User).toBe('65532:65532');
    expect(config.User).toBe(recipe.user);
    expect(config.Entrypoint).toEqual(['node', ...imageNodeFlags(), '/app/prepull.mjs']);
    expect(config.Entrypoint).toEqual(recipe.entrypoint);
    expect(config.Cmd).toEqual(recipe.cmd);
    expect(config.WorkingDir).toBe(recipe.workingDir);
    expect(config.Env).toEqual(Object.entries(recipe.env).map(([k, v]) => `${k}=${v}`));
  });

  it(`holds only ${arch} binaries (ELF machine of every ELF file, read, not run)`, () => {
    const elf = [...fileSystem(arch).values()].filter(
      (e) => e.type === 'file' && e.data.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1')),
    );
    const machines = new Map(elf.map((e) => [e.path, e.data.readUInt16LE(18)]));
    // The binaries that matter are among them, so the check cannot pass on an empty list.
    for (const path of ['usr/local/bin/node', 'hold', 'prepull-import'])
      expect(machines.has(path)).toBe(true);
    expect([...machines.keys()].some((p) => /^lib\/[^/]+-linux-gnu\/libc\.so\.6$/.test(p))).toBe(true);
    const wrong = [...machines].filter(([, machine]) => machine !== ELF_MACHINE[arch]);
    expect(wrong).toEqual([]);
  });

  it('runs as nonroot 65532: passwd, group and a home it owns', () => {
    const files = fileSystem(arch);
    expect(files.get('etc/passwd')?.data.toString()).toContain(
      'nonroot:x:65532:65532:nonroot:/home/nonroot:',
    );
    expect(files.get('etc/group')?.data.toString()).toContain('nonroot:x:65532:');
    expect(files.get('home/nonroot')).toMatchObject({ type: 'directory', uid: 65532, gid: 65532 });
    expect(files.get('tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    // Nothing else belongs to the user: it cannot change the image's own files.
    const owned = [...files.values()].filter((e) => e.uid !== 0 || e.gid !== 0).map((e) => e.path);
    expect(owned).toEqual(['home/nonroot']);
  });

  it('has no shell, no package manager and no script', () => {
    const files = fileSystem(arch);
    expect(files.has('bin/sh')).toBe(false);
    const tools = /(^|\/)(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|npm|npx|corepack)$/;
    const named = [...files.values()].filter((e) => e.type !== 'directory' && tools.test(e.path));
    expect(named.map((e) => e.path)).toEqual([]);
    const scripts = [...files.values()].filter(
      (e) => e.type === 'file' && e.mode & 0o111 && e.data.subarray(0, 2).toString() === '#!',
    );
    expect(scripts.map((e) => e.path)).toEqual([]);
    expect(files.has('etc/ssl/certs/ca-certificates.crt')).toBe(true);
  });

  it(`weighs under ${SIZE_BUDGET_BYTES / 1024 / 1024} MiB compressed`, () => {
    const found = archive.images.find((i) => i.platform === `linux/${arch}`)!;
    expect(found.layers.reduce((sum, l) => sum + l.size, 0)).toBeLessThan(SIZE_BUDGET_BYTES);
  });
});

it('is, layer by layer, what the Dockerfile copies from the parts its parts stage makes', () => {
  const parts = mkdtempSync(join(cluster.dir, 'image-parts-'));
  try {
    execFileSync('bash', [script, '--parts', parts], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (const arch of ARCHES) {
      const layers = layersOf.get(`linux/${arch}`)!;
      expect(layers).toHaveLength(recipe.layers.length);
      recipe.layers.forEach((copy, i) => {
        // COPY semantics: the source directory's contents at the destination, owned as --chown says.
        const destination = copy.destination.replace(/^\/+|\/+$/g, '');
        const expected: string[] = [];
        const walk = (dir: string, rel: string) => {
          for (const name of readdirSync(dir).sort()) {
            const path = join(dir, name);
            const stat = lstatSync(path);
            const at = [destination, rel, name].filter(Boolean).join('/');
            const entry = { mode: stat.mode & 0o7777, uid: copy.owner.uid, gid: copy.owner.gid };
            if (stat.isSymbolicLink()) {
              expected.push(
                describeEntry(at, {
                  ...entry,
                  type: 'symlink',
                  linkName: readlinkSync(path),
                  data: Buffer.alloc(0),
                }),
              );
            } else if (stat.isDirectory()) {
              expected.push(
                describeEntry(at, { ...entry, type: 'directory', linkName: '', data: Buffer.alloc(0) }),
              );
              walk(path, [rel, name].filter(Boolean).join('/'));
            } else {
              expected.push(
                describeEntry(at, { ...entry, type: 'file', linkName: '', data: readFileSync(path) }),
              );
            }
          }
        };
        const source = join(parts, layerSource(copy, arch).replace(/^\/parts\/?/, ''));
        if (destination) {
          const stat = lstatSync(source);
          expected.push(
            describeEntry(destination, {
              type: 'directory',
              mode: stat.mode & 0o7777,
              uid: copy.owner.uid,
              gid: copy.owner.gid,
              linkName: '',
              data: Buffer.alloc(0),
            }),
          );
        }
        walk(source, '');
        // The layer also records the destination's parent directories; they are not the COPY's.
        const actual = layers[i]!.filter(
          (e) => !destination || e.path === destination || e.path.startsWith(`${destination}/`),
        ).map((e) => describeEntry(e.path, e));
        expect(actual.sort(), `linux/${arch} layer ${i + 1} (${copy.source})`).toEqual(expected.sort());
      });
    }
  } finally {
    rmSync(parts, { recursive: true, force: true });
  }
});

it('runs `prepull version` as 65532 on amd64 (its layers unpacked, chroot, no engine)', () => {
  const rootfs = mkdtempSync(join(cluster.dir, 'image-rootfs-'));
  // The image's / as its layers leave it; mkdtemp's 0700 would keep the user out.
  chmodSync(rootfs, 0o755);
  try {
    const amd64 = archive.images.find((i) => i.platform === 'linux/amd64')!;
    for (const layer of amd64.layers) {
      const blob = join(rootfs, '..', `${rootfs.split('/').at(-1)}.layer.tar.gz`);
      writeFileSync(blob, archive.blob(layer.digest));
      execFileSync('tar', ['-xzf', blob, '-C', rootfs, '--numeric-owner']);
      rmSync(blob);
    }
    const { Entrypoint, Env } = configOf('amd64').config;
    // chroot(1) looks the entrypoint's `node` up in the image's PATH, inside the image.
    const out = execFileSync(
      '/usr/sbin/chroot',
      ['--userspec=65532:65532', rootfs, ...Entrypoint!, 'version'],
      {
        encoding: 'utf8',
        env: Object.fromEntries((Env ?? []).map((kv) => kv.split('=', 2))),
      },
    );
    expect(out.trim()).toMatch(/^prepull \d+\.\d+\.\d+/);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
});

it('is reproducible: built again from the same inputs, with empty storage, it has the same index digest', () => {
  const out = mkdtempSync(join(cluster.dir, 'image-again-'));
  try {
    execFileSync('bash', [script, '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    expect(readFileSync(join(out, 'index-digest'), 'utf8').trim()).toBe(image.indexDigest);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 600_000);
