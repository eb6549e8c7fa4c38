/**
 * Registry checks of a PrePulledImage's images, as its status keeps them:
 * which images are asked about (those pulled, not imported from a tarball),
 * how often (spec.refresh.interval, else hourly), when the next check is due
 * (the status remembers the last one, so a new leader goes on from there),
 * and how a registry answer reads in status. Pure.
 */
import type { PrePulledImage, PrePulledImageStatus } from '../../api/prepulledimage.ts';
import { formatImageReference, type ImageReference, parseImageReference } from '../../image/reference.ts';
import { isoSeconds } from '../../runtime/conditions.ts';
import { MIN_REFRESH_MS, parseDurationMs } from './refresh.ts';

/** Without spec.refresh, tags are checked this often, for status alone. */
export const DEFAULT_CHECK_INTERVAL_MS = 60 * 60_000;
const MESSAGE_MAX = 512;
const PLATFORMS_MAX = 16;

/** One image's registry check, in the shape of its status.images entry. */
export interface ImageResolution {
  resolvedDigest?: string;
  platforms?: string[];
  resolvedAt: string;
  registryCheck?: { reason: string; message?: string };
}

type StatusImage = NonNullable<PrePulledImageStatus['images']>[number];

/** The images the registry is asked about, aligned with spec.images: undefined for tarball imports and unparsable references. */
export function checkedImages(ppi: PrePulledImage): (ImageReference | undefined)[] {
  return ppi.spec.images.map((entry) => {
    if (entry.tarball) return undefined;
    try {
      return parseImageReference(entry.image);
    } catch {
      return undefined;
    }
  });
}

/** How long a check's answer stands: spec.refresh.interval (at least a minute), else {@link DEFAULT_CHECK_INTERVAL_MS}. */
export function checkIntervalMs(ppi: PrePulledImage): number {
  const interval = ppi.spec.refresh?.interval;
  if (!interval) return DEFAULT_CHECK_INTERVAL_MS;
  return Math.max(MIN_REFRESH_MS, parseDurationMs(interval) || MIN_REFRESH_MS);
}

/** The checks status holds now, aligned with spec.images (by image reference, so a reordered list keeps them). */
export function resolutionsInStatus(
  ppi: PrePulledImage,
  refs: readonly (ImageReference | undefined)[],
): (ImageResolution | undefined)[] {
  const byImage = new Map((ppi.status?.images ?? []).map((i) => [i.image, i]));
  return refs.map((ref, index) => {
    if (!ref) return undefined;
    const entry = byImage.get(statusImageName(ppi, index));
    if (!entry?.resolvedAt) return undefined;
    return {
      resolvedAt: entry.resolvedAt,
      ...(entry.resolvedDigest !== undefined && { resolvedDigest: entry.resolvedDigest }),
      ...(entry.platforms !== undefined && { platforms: entry.platforms }),
      ...(entry.registryCheck !== undefined && { registryCheck: entry.registryCheck }),
    };
  });
}

/**
 * Milliseconds until the registry must be asked again; 0 means now: an image
 * was never checked, the spec changed since, a check failed (the shared
 * resolver then decides, by its own back-off, whether a request is made), or
 * the oldest answer is older than the interval.
 */
export function checkDueInMs(
  ppi: PrePulledImage,
  refs: readonly (ImageReference | undefined)[],
  resolutions: readonly (ImageResolution | undefined)[],
  nowMs: number,
): number {
  if (ppi.status?.observedGeneration !== ppi.metadata.generation) return 0;
  const interval = checkIntervalMs(ppi);
  let due = Number.POSITIVE_INFINITY;
  refs.forEach((ref, index) => {
    if (!ref) return;
    const resolution = resolutions[index];
    const at = resolution ? Date.parse(resolution.resolvedAt) : Number.NaN;
    if (!resolution || resolution.registryCheck || Number.isNaN(at)) due = 0;
    else due = Math.min(due, Math.max(0, at + interval - nowMs));
  });
  return due;
}

/** A successful check as status shows it. */
export function resolvedImage(
  digest: string,
  platforms: readonly { os: string; architecture: string; variant?: string }[],
  now: Date,
): ImageResolution {
  const names = [
    ...new Set(platforms.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/'))),
  ];
  return { resolvedDigest: digest, platforms: names.slice(0, PLATFORMS_MAX), resolvedAt: isoSeconds(now) };
}

/** A failed check as status shows it: the reason, and the registry's own message. */
export function failedCheck(reason: string, message: string, now: Date): ImageResolution {
  const cut = message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 1)}…` : message;
  return { resolvedAt: isoSeconds(now), registryCheck: { reason, ...(cut && { message: cut }) } };
}

/**
 * A failed check that keeps the digest (and platforms) the last good one
 * resolved: the pods stay pinned to it, so a registry that cannot be reached
 * rolls no node and tears nothing down.
 */
export function keepingLastDigest(
  failed: ImageResolution,
  previous: ImageResolution | undefined,
): ImageResolution {
  if (!previous?.resolvedDigest) return failed;
  return {
    ...failed,
    resolvedDigest: previous.resolvedDigest,
    ...(previous.platforms !== undefined && { platforms: previous.platforms }),
  };
}

/** A status.images entry with its check merged in. */
export function withResolution(entry: StatusImage, resolution: ImageResolution | undefined): StatusImage {
  return resolution ? { ...entry, ...resolution } : entry;
}

/** The first failed check, with the image it is about, for the Degraded condition. */
export function firstFailedCheck(
  ppi: PrePulledImage,
  resolutions: readonly (ImageResolution | undefined)[] | undefined,
): { image: string; reason: string; message?: string } | undefined {
  const index = resolutions?.findIndex((r) => r?.registryCheck) ?? -1;
  const check = index >= 0 ? resolutions?.[index]?.registryCheck : undefined;
  if (!check) return undefined;
  const entry = ppi.spec.images[index];
  return { image: entry?.name ?? statusImageName(ppi, index), ...check };
}

/** The image as status names it: normalised when it parses. */
function statusImageName(ppi: PrePulledImage, index: number): string {
  const image = ppi.spec.images[index]?.image ?? '';
  try {
    const ref = parseImageReference(image);
    return formatImageReference(ref);
  } catch {
    return image;
  }
}

/** Tags whose resolved digest differs from the one status showed: each deserves an Event. */
export function movedTags(
  ppi: PrePulledImage,
  refs: readonly (ImageReference | undefined)[],
  before: readonly (ImageResolution | undefined)[],
  after: readonly (ImageResolution | undefined)[],
): { image: string; from: string; to: string }[] {
  return refs.flatMap((ref, index) => {
    const from = before[index]?.resolvedDigest;
    const to = after[index]?.resolvedDigest;
    if (!ref?.tag || ref.digest || !from || !to || from === to) return [];
    return [{ image: statusImageName(ppi, index), from, to }];
  });
}
