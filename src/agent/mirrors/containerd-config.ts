/**
 * What containerd's config says about registry hosts, read from its TOML:
 * whether `config_path` is set (else every hosts.toml is ignored), where, and
 * whether inline `registry.mirrors`/`configs` make config_path unusable. The
 * registry section is the CRI plugin's for config versions 1 and 2
 * (`cri`, `io.containerd.grpc.v1.cri`, which containerd 2.x migrates) and
 * the images plugin's for version 3 (`io.containerd.cri.v1.images`). Pure.
 */
import { Reason } from '../../api/conditions.ts';

/** The node's registry-hosts setting, or why hosts.toml files cannot work there. */
export type HostsDirectory =
  | {
      ok: true;
      /** The directory Prepull writes under: the first of config_path's list. */
      dir: string;
      /** A note for the report (several directories in config_path). */
      note?: string;
    }
  | { ok: false; reason: string; message: string };

type Table = Record<string, unknown>;

function table(value: unknown): Table | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Table) : undefined;
}

/** The `plugins` key and registry section path of each config version. */
function registrySectionName(version: number): { plugin: string; header: string } {
  if (version >= 3) {
    return {
      plugin: 'io.containerd.cri.v1.images',
      header: '[plugins."io.containerd.cri.v1.images".registry]',
    };
  }
  if (version === 2) {
    return { plugin: 'io.containerd.grpc.v1.cri', header: '[plugins."io.containerd.grpc.v1.cri".registry]' };
  }
  return { plugin: 'cri', header: '[plugins.cri.registry]' };
}

/** The line a user adds to containerd's config so hosts.toml files are read. */
export function configPathLines(version: number, dir = '/etc/containerd/certs.d'): string {
  return `${registrySectionName(version).header}\n  config_path = "${dir}"`;
}

function nonEmpty(value: unknown): boolean {
  const t = table(value);
  return t !== undefined && Object.keys(t).length > 0;
}

/** Whether any `registry.configs."host".tls` is set: refused with config_path, unlike `auth`. */
function hasInlineTls(configs: unknown): boolean {
  return Object.values(table(configs) ?? {}).some((host) => nonEmpty(table(host)?.tls));
}

/**
 * The hosts directory of a parsed containerd config (its imports already
 * merged in). `configFile` is named in messages; `expand` rewrites variables
 * a distribution puts in config_path (microk8s's `${SNAP_DATA}`).
 */
export function hostsDirectoryOf(
  config: Table,
  configFile: string,
  expand: (path: string) => string = (path) => path,
): HostsDirectory {
  const version = typeof config.version === 'number' ? config.version : 1;
  const { plugin } = registrySectionName(version);
  const plugins = table(config.plugins) ?? {};
  const registry = table(table(plugins[plugin])?.registry) ?? {};
  // containerd 2.x still reads a version-2 file's CRI section, so a v3 file's leftovers count too.
  const legacy = version >= 3 ? table(table(plugins['io.containerd.grpc.v1.cri'])?.registry) : undefined;
  const configPath = typeof registry.config_path === 'string' ? registry.config_path.trim() : '';
  for (const section of [registry, legacy ?? {}]) {
    if (nonEmpty(section.mirrors) || hasInlineTls(section.configs)) {
      return {
        ok: false,
        reason: Reason.InlineMirrorsConflict,
        message: `${configFile} has inline registry.mirrors or registry.configs.*.tls; containerd's CRI plugin does not load with them and config_path together (containerd #12612). Move them into hosts.toml files under config_path and remove them from ${configFile}`,
      };
    }
  }
  if (configPath === '') {
    return {
      ok: false,
      reason: Reason.ConfigPathNotSet,
      message: `containerd's config ${configFile} sets no registry config_path, so hosts.toml files are ignored. Add these lines and restart containerd once: ${configPathLines(version)}`,
    };
  }
  const dirs = configPath
    .split(':')
    .map((d) => expand(d.trim()))
    .filter((d) => d !== '');
  const first = dirs[0];
  if (first === undefined || !first.startsWith('/')) {
    return {
      ok: false,
      reason: Reason.RuntimeConfigInvalid,
      message: `config_path "${configPath}" in ${configFile} is not an absolute directory`,
    };
  }
  return dirs.length > 1
    ? {
        ok: true,
        dir: first,
        note: `config_path lists ${dirs.length} directories; Prepull writes to the first, ${first}. containerd 2.1+ reads config_path as one directory on its transfer-service pull path (containerd #12415, #12636): keep a single directory there`,
      }
    : { ok: true, dir: first };
}

/**
 * The `imports` of a config (containerd merges them over the file, in
 * order): absolute paths or globs whose last segment may hold `*`.
 */
export function importsOf(config: Table): string[] {
  const imports = config.imports;
  return Array.isArray(imports) ? imports.filter((i): i is string => typeof i === 'string') : [];
}

/** `over` merged into `base` table by table, as containerd merges an import (later values win). */
export function mergeConfig(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const left = table(out[key]);
    const right = table(value);
    out[key] = left && right ? mergeConfig(left, right) : value;
  }
  return out;
}
