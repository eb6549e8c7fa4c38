/**
 * Container images built with no Docker engine: layers are tarred with GNU tar
 * (deterministic flags), configs and manifests written here, digests taken
 * with node:crypto.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ImageFile {
  /** Path inside the image, without a leading slash. */
  path: string;
  content: Buffer | string;
  mode: number;
}

const DETERMINISTIC_TAR = [
  '--sort=name',
  '--mtime=@0',
  '--owner=0',
  '--group=0',
  '--numeric-owner',
  '--format=posix',
  '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
];

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An uncompressed layer tar of `files`. */
export function buildLayer(workDir: string, files: ImageFile[]): Buffer {
  const root = mkdtempSync(join(workDir, 'rootfs-'));
  try {
    for (const file of files) {
      const target = join(root, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content);
      chmodSync(target, file.mode);
    }
    return execFileSync('tar', ['-C', root, ...DETERMINISTIC_TAR, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * A `docker save` archive (manifest.json, repositories, config, layer tar) of
 * one single-layer image named `ref`: what `ctr images import` and the
 * kubelet's node expect from an air-gapped bundle.
 */
export async function buildDockerArchive(o: {
  workDir: string;
  ref: string;
  files: ImageFile[];
  entrypoint?: string[];
  arch?: string;
}): Promise<string> {
  mkdirSync(o.workDir, { recursive: true });
  const layer = buildLayer(o.workDir, o.files);
  const diffId = sha256(layer);
  const config = JSON.stringify({
    architecture: o.arch ?? 'amd64',
    os: 'linux',
    config: { Entrypoint: o.entrypoint ?? null, Env: ['PATH=/'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created_by: 'prepull test harness' }],
  });
  const configDigest = sha256(config);
  const bundle = mkdtempSync(join(o.workDir, 'archive-'));
  try {
    mkdirSync(join(bundle, diffId));
    writeFileSync(join(bundle, diffId, 'layer.tar'), layer);
    writeFileSync(join(bundle, `${configDigest}.json`), config);
    writeFileSync(
      join(bundle, 'manifest.json'),
      JSON.stringify([
        { Config: `${configDigest}.json`, RepoTags: [o.ref], Layers: [`${diffId}/layer.tar`] },
      ]),
    );
    const archive = join(o.workDir, `${sha256(o.ref).slice(0, 12)}-${configDigest.slice(0, 12)}.tar`);
    execFileSync('tar', ['-C', bundle, ...DETERMINISTIC_TAR, '-cf', archive, '.']);
    return archive;
  } finally {
    rmSync(bundle, { recursive: true, force: true });
  }
}

/** The static hold binary for `arch`, built (or taken from the cache) by scripts/build-hold.sh. */
export function holdBinary(arch: 'amd64' | 'arm64'): Buffer {
  const dir = execFileSync('bash', [join(import.meta.dirname, '..', '..', 'scripts', 'build-hold.sh')], {
    encoding: 'utf8',
  }).trim();
  return readFileSync(join(dir, `hold-${arch}`));
}

/** The image config digest inside a docker archive, as `sha256:<hex>`: the image ID after import. */
export function dockerArchiveImageId(archive: string): string {
  const manifest = JSON.parse(
    execFileSync('tar', ['-xOf', archive, './manifest.json'], { encoding: 'utf8' }),
  ) as { Config: string }[];
  return `sha256:${manifest[0]!.Config.replace(/\.json$/, '')}`;
}
