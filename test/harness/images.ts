/**
 * Container images built with no Docker engine: layers are tarred with GNU tar
 * (deterministic flags), configs and manifests written here, digests taken
 * with node:crypto.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { releasedImage } from '../../src/version.ts';

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
  /** Further layers on top of `files`, for a multi-layer image. */
  moreLayers?: ImageFile[][];
  entrypoint?: string[];
  arch?: string;
}): Promise<string> {
  mkdirSync(o.workDir, { recursive: true });
  const layers = [o.files, ...(o.moreLayers ?? [])].map((files) => buildLayer(o.workDir, files));
  const diffIds = layers.map(sha256);
  const config = imageConfig(o.arch ?? 'amd64', o.entrypoint, diffIds);
  const configDigest = sha256(config);
  const bundle = mkdtempSync(join(o.workDir, 'archive-'));
  try {
    layers.forEach((layer, i) => {
      mkdirSync(join(bundle, diffIds[i]!), { recursive: true });
      writeFileSync(join(bundle, diffIds[i]!, 'layer.tar'), layer);
    });
    writeFileSync(join(bundle, `${configDigest}.json`), config);
    writeFileSync(
      join(bundle, 'manifest.json'),
      JSON.stringify([
        { Config: `${configDigest}.json`, RepoTags: [o.ref], Layers: diffIds.map((d) => `${d}/layer.tar`) },
      ]),
    );
    const archive = join(o.workDir, `${sha256(o.ref).slice(0, 12)}-${configDigest.slice(0, 12)}.tar`);
    execFileSync('tar', ['-C', bundle, ...DETERMINISTIC_TAR, '-cf', archive, '.']);
    return archive;
  } finally {
    rmSync(bundle, { recursive: true, force: true });
  }
}

function imageConfig(arch: string, entrypoint: string[] | undefined, diffIds: string[]): string {
  return JSON.stringify({
    architecture: arch,
    os: 'linux',
    config: { Entrypoint: entrypoint ?? null, Env: ['PATH=/'] },
    rootfs: { type: 'layers', diff_ids: diffIds.map((d) => `sha256:${d}`) },
    history: diffIds.map(() => ({ created_by: 'prepull test harness' })),
  });
}

/** An OCI image in memory: what a registry push needs. */
export interface OciImage {
  manifest: Buffer;
  config: Buffer;
  layers: Buffer[];
  arch: string;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** An OCI image of uncompressed layers: `files`, then each of `moreLayers`. */
export function buildOciImage(o: {
  workDir: string;
  files: ImageFile[];
  moreLayers?: ImageFile[][];
  entrypoint?: string[];
  arch?: string;
}): OciImage {
  mkdirSync(o.workDir, { recursive: true });
  const arch = o.arch ?? 'amd64';
  const layers = [o.files, ...(o.moreLayers ?? [])].map((files) => buildLayer(o.workDir, files));
  const config = Buffer.from(imageConfig(arch, o.entrypoint, layers.map(sha256)));
  const descriptor = (mediaType: string, data: Buffer) => ({
    mediaType,
    digest: `sha256:${sha256(data)}`,
    size: data.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: layers.map((l) => descriptor('application/vnd.oci.image.layer.v1.tar', l)),
    }),
  );
  return { manifest, config, layers, arch };
}

/** An OCI image index over `images`, each with its platform. */
export function buildOciIndex(images: OciImage[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: images.map((i) => ({
        mediaType: OCI_MANIFEST,
        digest: `sha256:${sha256(i.manifest)}`,
        size: i.manifest.length,
        platform: { architecture: i.arch, os: 'linux' },
      })),
    }),
  );
}

/**
 * An `oci-archive` tar of OCI images: one image, or several under an index
 * (a multi-platform image). `refName` sets the `org.opencontainers.image.ref.name`
 * annotation (what `skopeo copy … oci-archive:FILE:NAME` writes); without it
 * the archive is unnamed. `omitBlobsOf` leaves out the config and layers of
 * the images of that architecture, as exports of one platform do.
 */
export function buildOciArchive(o: {
  workDir: string;
  images: OciImage[];
  refName?: string;
  omitBlobsOf?: string;
}): string {
  mkdirSync(o.workDir, { recursive: true });
  const dir = mkdtempSync(join(o.workDir, 'oci-'));
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  for (const image of o.images) {
    put(image.manifest);
    if (image.arch === o.omitBlobsOf) continue;
    put(image.config);
    for (const layer of image.layers) put(layer);
  }
  const top =
    o.images.length === 1
      ? { mediaType: OCI_MANIFEST, ...put(o.images[0]!.manifest) }
      : { mediaType: OCI_INDEX, ...put(buildOciIndex(o.images)) };
  const annotations = o.refName ? { annotations: { 'org.opencontainers.image.ref.name': o.refName } } : {};
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...top, ...annotations }] }),
  );
  const archive = `${dir}.tar`;
  try {
    execFileSync('tar', ['-C', dir, ...DETERMINISTIC_TAR, '-cf', archive, '.']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return archive;
}

/** The Prepull image as released: what scripts/build-image.sh builds (cached by the content of its inputs). */
export interface ReleaseImage {
  /** The oci-archive: a linux/amd64 + linux/arm64 index named {@link ReleaseImage.name}. */
  archive: string;
  /** The release name, `ghcr.io/prepull/prepull:v<version>`: what the operator and `prepull load` default to. */
  name: string;
  /** The index digest, `sha256:<hex>`. */
  indexDigest: string;
  /** `name@indexDigest`: the reference that cannot move. */
  pinned: string;
}

let builtReleaseImage: ReleaseImage | undefined;

/** Builds the Prepull image, or takes it from the cache (a few seconds, once per process), and describes it. */
export function releaseImage(): ReleaseImage {
  if (builtReleaseImage) return builtReleaseImage;
  const script = join(import.meta.dirname, '..', '..', 'scripts', 'build-image.sh');
  const archive = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .trim()
    .split('\n')
    .at(-1)!;
  const indexDigest = readFileSync(join(dirname(archive), 'index-digest'), 'utf8').trim();
  builtReleaseImage = {
    archive,
    name: releasedImage,
    indexDigest,
    pinned: `${releasedImage}@${indexDigest}`,
  };
  return builtReleaseImage;
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
