/**
 * Reads an oci-archive (what scripts/build-image.sh writes): the image index,
 * each platform's manifest and config, and its layers' tar entries. For the
 * size report and for the image's tests, which read files and ELF headers
 * without running anything. Reading the tar format itself is pure; opening an
 * archive unpacks it into a temporary directory with GNU tar.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

/** The parts of an OCI image config the tests look at. */
export interface ImageConfig {
  os: string;
  architecture: string;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
  };
  rootfs: { diff_ids: string[] };
}

export interface PlatformImage {
  platform: string;
  manifestDigest: string;
  config: ImageConfig;
  layers: Descriptor[];
}

export interface OciArchive {
  /** The `org.opencontainers.image.ref.name` the archive gives its index. */
  name: string | undefined;
  indexDigest: string;
  images: PlatformImage[];
  /** A blob's bytes, by digest. */
  blob(digest: string): Buffer;
  /** Removes the unpacked copy. */
  close(): void;
}

/** Unpacks `archive` and reads its index, manifests and configs. */
export function openOciArchive(archive: string): OciArchive {
  const dir = mkdtempSync(join(tmpdir(), 'prepull-oci-'));
  try {
    execFileSync('tar', ['-xf', archive, '-C', dir]);
    const blob = (digest: string) => readFileSync(join(dir, 'blobs', ...digest.split(':')));
    const json = <T>(digest: string) => JSON.parse(blob(digest).toString('utf8')) as T;
    const top = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    if (top.manifests.length !== 1)
      throw new Error(`${archive}: expected one index, got ${top.manifests.length}`);
    const indexDescriptor = top.manifests[0]!;
    const index = json<{ manifests: Descriptor[] }>(indexDescriptor.digest);
    const images = index.manifests.map((m): PlatformImage => {
      const manifest = json<{ config: Descriptor; layers: Descriptor[] }>(m.digest);
      return {
        platform: `${m.platform?.os}/${m.platform?.architecture}`,
        manifestDigest: m.digest,
        config: json<ImageConfig>(manifest.config.digest),
        layers: manifest.layers,
      };
    });
    return {
      name: indexDescriptor.annotations?.['org.opencontainers.image.ref.name'],
      indexDigest: indexDescriptor.digest,
      images,
      blob,
      close: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** One entry of a tar stream. */
export interface TarEntry {
  path: string;
  /** `file`, `directory`, `symlink`, `hardlink` or `other`. */
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  linkName: string;
  data: Buffer;
}

function field(header: Buffer, offset: number, length: number): string {
  const raw = header.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function octal(header: Buffer, offset: number, length: number): number {
  return Number.parseInt(field(header, offset, length).trim() || '0', 8);
}

function paxRecords(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.subarray(at, space).toString('utf8'));
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    records[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return records;
}

const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file',
  '': 'file',
  '5': 'directory',
  '2': 'symlink',
  '1': 'hardlink',
};

/** The entries of an uncompressed tar (ustar, pax and GNU long names), paths without a leading `./`. */
export function readTarEntries(tar: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const typeflag = field(header, 156, 1);
    const data = tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (typeflag === 'x') {
      pax = { ...pax, ...paxRecords(data) };
      continue;
    }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    const prefix = field(header, 345, 155);
    const name =
      pax.path ?? longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    entries.push({
      path: name.replace(/^\.\//, '').replace(/\/$/, '') || '.',
      type: TYPES[typeflag] ?? 'other',
      mode: octal(header, 100, 8) & 0o7777,
      uid: pax.uid ? Number(pax.uid) : octal(header, 108, 8),
      gid: pax.gid ? Number(pax.gid) : octal(header, 116, 8),
      linkName: pax.linkpath ?? field(header, 157, 100),
      data,
    });
    pax = {};
    longName = undefined;
  }
  return entries;
}

/** A layer blob's entries; gzip layers are decompressed. */
export function layerEntries(archive: OciArchive, layer: Descriptor): TarEntry[] {
  const raw = archive.blob(layer.digest);
  return readTarEntries(layer.mediaType.endsWith('+gzip') ? gunzipSync(raw) : raw);
}
