/**
 * The puller-pod protocol, owned here and nowhere else: the names of a puller
 * pod's containers, the result an import step leaves behind, and a pod's age.
 * Render writes it, status and the pull-slot throttle and the import retry
 * read it. Pure.
 *
 * Containers: `image-<i>` holds image `i` of spec.images (a tiny `hold`
 * binary, so the kubelet keeps the image in use); `import-<i>`, an init
 * container, imports image `i` from its tarball first. The importer
 * (src/agent/importer) always exits 0 and writes one JSON line as its
 * termination message: `{"ok": true, "image", "digest", …}` or
 * `{"ok": false, "reason": "<Reason>", "message": "…"}`. With a pinned digest
 * (pinning.ts), `image-<i>` names the digest and `tag-<i>` pulls the tag
 * itself, so containerd's tag name follows the content.
 */
import { Reason } from '../../api/conditions.ts';
import type { ContainerStateTerminated } from '../../kube/objects.ts';

const HOLD_PREFIX = 'image-';
const IMPORT_PREFIX = 'import-';
const TAG_PREFIX = 'tag-';

/** The container that holds image `index`. */
export function holdContainerName(index: number): string {
  return `${HOLD_PREFIX}${index}`;
}

/** The container that pulls image `index` by its tag, beside a hold container pinned to a digest. */
export function tagContainerName(index: number): string {
  return `${TAG_PREFIX}${index}`;
}

/** The init container that imports image `index` from its tarball. */
export function importContainerName(index: number): string {
  return `${IMPORT_PREFIX}${index}`;
}

/** The image index of a hold container, or undefined for another container. */
export function holdIndexOf(containerName: string): number | undefined {
  return indexAfter(HOLD_PREFIX, containerName);
}

/** The image index of a tag container, or undefined for another container. */
export function tagIndexOf(containerName: string): number | undefined {
  return indexAfter(TAG_PREFIX, containerName);
}

/** The image index of an import step, or undefined for another container. */
export function importIndexOf(containerName: string): number | undefined {
  return indexAfter(IMPORT_PREFIX, containerName);
}

function indexAfter(prefix: string, name: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** What one import step says of itself once it ended. */
export type ImportResult = { ok: true } | { ok: false; reason: Reason; message: string };

const KNOWN_REASONS: ReadonlySet<string> = new Set(Object.values(Reason));

/**
 * The one reading of an import step's result. Only an explicit `ok: true`
 * is a success: a step that ended with no result (killed, out of memory, an
 * importer too old or too new to write one) failed, and is retried like any
 * other failure.
 */
export function parseImportResult(terminated: ContainerStateTerminated): ImportResult {
  const text = terminated.message?.trim() ?? '';
  let parsed: { ok?: unknown; reason?: unknown; message?: unknown } | undefined;
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (parsed && typeof parsed === 'object') {
    if (parsed.ok === true) return { ok: true };
    const reason =
      typeof parsed.reason === 'string' && KNOWN_REASONS.has(parsed.reason)
        ? (parsed.reason as Reason)
        : Reason.ImportFailed;
    const message =
      typeof parsed.message === 'string' && parsed.message ? parsed.message : describeExit(terminated);
    return { ok: false, reason, message };
  }
  return { ok: false, reason: Reason.ImportFailed, message: text || describeExit(terminated) };
}

function describeExit(terminated: ContainerStateTerminated): string {
  const why = terminated.reason ? ` (${terminated.reason})` : '';
  return `the import step exited with ${terminated.exitCode}${why} and left no result`;
}

/**
 * When the pod was created, in ms since the epoch; undefined when unknown.
 * Callers say what an unknown age means to them: status takes such a pod as
 * the oldest on its node (not known to be the replacement), the throttle
 * admits it last (not known to have waited longest).
 */
export function podCreatedAt(pod: { metadata: { creationTimestamp?: string } }): number | undefined {
  const time = Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(time) ? undefined : time;
}
