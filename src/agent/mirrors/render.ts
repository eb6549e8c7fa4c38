/**
 * A RegistryMirror as containerd's files: `<hostsDir>/<host>/hosts.toml`,
 * with one `[host."…"]` table per mirror in order, and each mirror's CA
 * bundle as a file beside it. With `upstream: Fallback` no `server` is
 * written, so containerd keeps its own default for the upstream (docker.io's
 * registry-1, plain http for localhost) as the last resort; with `Replaced`
 * the last mirror becomes the `server`, so nothing else is ever asked.
 *
 * The file always has a `[host]` table, empty when the only mirror is the
 * server: containerd 1.6, and 1.7 before 1.7.32, parse hosts.toml with
 * go-toml v1 and refuse a file without one ("failed to decode hosts.toml"
 * error="invalid `host` tree", getSortedHosts in
 * remotes/docker/config/hosts.go; containerd #10027), then ignore the file and
 * pull from the upstream itself. Pure.
 */
import { join } from 'node:path';
import type { MirrorEndpoint, RegistryMirrorSpec } from '../../api/registrymirror.ts';

/** One file Prepull keeps on the node, by its absolute path on the host. */
export interface NodeFile {
  path: string;
  content: string;
}

/** The file name containerd looks up in a host directory. */
export const HOSTS_FILE = 'hosts.toml';

/** The directory containerd reads for `host` (`host:port` as is). */
export function hostDirectory(hostsDir: string, host: string): string {
  return join(hostsDir, host);
}

/**
 * containerd (1.6 to 2.x alike) looks up `host_port_` before `host:port`
 * (`hostDirectory` in remotes/docker/config/hosts.go): a file there would
 * shadow Prepull's, so it is checked for too.
 */
export function shadowingHostDirectory(hostsDir: string, host: string): string | undefined {
  const colon = host.lastIndexOf(':');
  return colon > 0 ? join(hostsDir, `${host.slice(0, colon)}_${host.slice(colon + 1)}_`) : undefined;
}

/** A TOML basic string: JSON's escaping is valid TOML. */
function tomlString(value: string): string {
  return JSON.stringify(value);
}

function caFileName(index: number): string {
  return `prepull-ca-${index}.crt`;
}

/** The settings of one endpoint, as `key = value` lines (indented for a [host] table). */
function endpointLines(mirror: MirrorEndpoint, caPath: string | undefined, indent: string): string[] {
  const capabilities = mirror.capabilities ?? ['pull', 'resolve'];
  const lines = [`${indent}capabilities = [${capabilities.map(tomlString).join(', ')}]`];
  if (caPath !== undefined) lines.push(`${indent}ca = ${tomlString(caPath)}`);
  if (mirror.skipVerify) lines.push(`${indent}skip_verify = true`);
  if (mirror.overridePath) lines.push(`${indent}override_path = true`);
  return lines;
}

function headerLines(mirror: MirrorEndpoint, tableName: string): string[] {
  const entries = Object.entries(mirror.headers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return [];
  return [
    '',
    `[${tableName}]`,
    ...entries.map(([name, value]) => `  ${tomlString(name)} = ${tomlString(value)}`),
  ];
}

/**
 * The files of one RegistryMirror under `hostsDir`: the CA bundles first (so
 * hosts.toml never names a file not yet written), then hosts.toml.
 */
export function renderMirrorFiles(
  mirror: { name: string; spec: RegistryMirrorSpec },
  hostsDir: string,
): NodeFile[] {
  const { spec } = mirror;
  const dir = hostDirectory(hostsDir, spec.host);
  const files: NodeFile[] = [];
  const caPaths = spec.mirrors.map((m, i) => {
    if (m.caBundle === undefined) return undefined;
    const path = join(dir, caFileName(i));
    files.push({ path, content: m.caBundle.endsWith('\n') ? m.caBundle : `${m.caBundle}\n` });
    return path;
  });
  const replaced = spec.upstream === 'Replaced';
  const hostEntries = replaced ? spec.mirrors.slice(0, -1) : spec.mirrors;
  const lines = [
    `# Written by Prepull for RegistryMirror ${mirror.name}. Prepull removes it when the`,
    '# RegistryMirror is deleted or no longer selects this node. Do not edit: an edited file',
    '# is left alone and reported as a conflict.',
  ];
  if (replaced) {
    // The last mirror is the server: containerd asks it last and never the upstream.
    const last = spec.mirrors.length - 1;
    const server = spec.mirrors[last]!;
    lines.push(`server = ${tomlString(server.url)}`, ...endpointLines(server, caPaths[last], ''));
    lines.push(...headerLines(server, 'header'));
  }
  hostEntries.forEach((m, i) => {
    const name = `host.${tomlString(m.url)}`;
    lines.push('', `[${name}]`, ...endpointLines(m, caPaths[i], '  '));
    lines.push(...headerLines(m, `${name}.header`));
  });
  // No [host."…"] table: containerd before 1.7.32 needs the [host] table itself.
  if (hostEntries.length === 0) lines.push('', '[host]');
  files.push({ path: join(dir, HOSTS_FILE), content: `${lines.join('\n')}\n` });
  return files;
}
