/**
 * The image names an archive carries, read from its tar without unpacking it:
 * `manifest.json` RepoTags of a docker archive (`docker save`, skopeo
 * `docker-archive:`), or the `org.opencontainers.image.ref.name` /
 * `io.containerd.image.name` annotations of an OCI archive's `index.json`.
 */
import { open } from 'node:fs/promises';

const BLOCK = 512;

/** Names found in the archive, as written there (not normalised); empty for an unnamed archive. */
export async function imageNamesInArchive(path: string): Promise<string[]> {
  const wanted = new Map<string, string>();
  const file = await open(path, 'r');
  try {
    let offset = 0;
    let longName: string | undefined;
    const header = Buffer.alloc(BLOCK);
    for (;;) {
      const { bytesRead } = await file.read(header, 0, BLOCK, offset);
      if (bytesRead < BLOCK || header.every((b) => b === 0)) break;
      const size = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156] ?? 0);
      const prefix = cString(header.subarray(345, 500));
      const name =
        longName ??
        (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
      longName = undefined;
      const body = offset + BLOCK;
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await file.read(data, 0, size, body);
        longName = type === 'L' ? cString(data) : paxPath(data.toString('utf8'));
      } else if ((type === '0' || type === '\0') && size < 16 * 1024 * 1024) {
        const base = name.replace(/^\.\//, '');
        if (base === 'manifest.json' || base === 'index.json') {
          const data = Buffer.alloc(size);
          await file.read(data, 0, size, body);
          wanted.set(base, data.toString('utf8'));
        }
      }
      offset = body + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await file.close();
  }
  return namesFrom(wanted.get('manifest.json'), wanted.get('index.json'));
}

/** Names from a docker archive's manifest.json or an OCI layout's index.json. */
export function namesFrom(manifestJson: string | undefined, indexJson: string | undefined): string[] {
  const names = new Set<string>();
  if (manifestJson) {
    for (const entry of JSON.parse(manifestJson) as Array<{ RepoTags?: string[] | null }>) {
      for (const tag of entry.RepoTags ?? []) names.add(tag);
    }
  }
  if (indexJson) {
    const index = JSON.parse(indexJson) as { manifests?: Array<{ annotations?: Record<string, string> }> };
    for (const m of index.manifests ?? []) {
      const name =
        m.annotations?.['io.containerd.image.name'] ?? m.annotations?.['org.opencontainers.image.ref.name'];
      // A bare tag ("v1") is what skopeo writes for oci-archive:FILE:TAG; it names no repository.
      if (name?.includes('/') || name?.includes(':')) names.add(name);
    }
  }
  return [...names];
}

function parseOctal(field: Buffer): number {
  const text = cString(field).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** The `path` record of a pax extended header, if any. */
function paxPath(records: string): string | undefined {
  for (const line of records.split('\n')) {
    const match = /^\d+ path=(.*)$/.exec(line);
    if (match) return match[1];
  }
  return undefined;
}
