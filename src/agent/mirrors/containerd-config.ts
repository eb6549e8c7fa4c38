/**
 * What containerd's config says about registry hosts, read from its TOML:
 * whether `config_path` is set (else every hosts.toml is ignored), where, and
 * whether inline `registry.mirrors`/`configs` make config_path unusable. The
 * registry section is the CRI plugin's for config versions 1 and 2
 * (`cri`, `io.containerd.grpc.v1.cri`, which containerd 2.x migrates) and
 * the images plugin's for version 3 (`io.containerd.cri.v1.images`).
 *
 * containerd's own version matters for a config_path that lists several
 * directories: from 2.1 the CRI pulls through the transfer service unless a
 * setting it lacks forces the old local pull, and that path takes the whole
 * list as one directory name (`registry.WithHostDir(ConfigPath)` in
 * internal/cri/server/images/image_pull.go; containerd #12415, #12636), so it
 * reads no hosts.toml at all. Pure.
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

/** containerd's version as the kubelet reports it (`containerd://1.6.20~ds1`). */
export interface ContainerdVersion {
  major: number;
  minor: number;
  /** As reported, without `containerd://` (`1.6.20~ds1`, `2.4.2+unknown`). */
  text: string;
}

/** The version in a Node's `status.nodeInfo.containerRuntimeVersion`; undefined for another runtime or none. */
export function containerdVersionOf(runtimeVersion: string | undefined): ContainerdVersion | undefined {
  const match = /^containerd:\/\/v?((\d+)\.(\d+)\S*)$/.exec(runtimeVersion ?? '');
  if (!match) return undefined;
  return { major: Number(match[2]), minor: Number(match[3]), text: match[1]! };
}

function atLeast(version: ContainerdVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

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
 * Whether containerd 2.1+ with this config pulls CRI images through its
 * transfer service: the default, unless `use_local_image_pull` or a setting
 * the transfer service lacks makes it fall back to the local pull
 * (`CheckLocalImagePullConfigs` in internal/cri/config/config.go). A version-2
 * file's settings count where containerd migrates them from.
 */
export function pullsThroughTransferService(config: Table): boolean {
  const plugins = table(config.plugins) ?? {};
  const images = table(plugins['io.containerd.cri.v1.images']) ?? {};
  const cri = table(plugins['io.containerd.grpc.v1.cri']) ?? {};
  const criContainerd = table(cri.containerd) ?? {};
  const setting = (key: string, ...from: Table[]) => from.map((t) => t[key]).find((v) => v !== undefined);
  const registry = table(images.registry) ?? table(cri.registry) ?? {};
  const forcesLocalPull =
    images.use_local_image_pull === true ||
    setting('discard_unpacked_layers', images, criContainerd) === true ||
    setting('disable_snapshot_annotations', images, criContainerd) === false ||
    (setting('max_concurrent_downloads', images, cri) ?? 3) !== 3 ||
    setting('image_pull_with_sync_fs', images, cri) === true ||
    ['mirrors', 'configs', 'auths'].some((key) => nonEmpty(registry[key]));
  return !forcesLocalPull;
}

/**
 * The hosts directory of a parsed containerd config (its imports already
 * merged in). `configFile` is named in messages; `expand` rewrites variables
 * a distribution puts in config_path (microk8s's `${SNAP_DATA}`); `version`
 * is the node's containerd, when known.
 */
export function hostsDirectoryOf(
  config: Table,
  configFile: string,
  expand: (path: string) => string = (path) => path,
  version?: ContainerdVersion,
): HostsDirectory {
  const configVersion = typeof config.version === 'number' ? config.version : 1;
  const { plugin } = registrySectionName(configVersion);
  const plugins = table(config.plugins) ?? {};
  const registry = table(table(plugins[plugin])?.registry) ?? {};
  // containerd 2.x still reads a version-2 file's CRI section, so a v3 file's leftovers count too.
  const legacy =
    configVersion >= 3 ? table(table(plugins['io.containerd.grpc.v1.cri'])?.registry) : undefined;
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
    // 2.2+ then uses its default list, which the transfer-service pull reads as one directory name.
    const defaultList =
      version && atLeast(version, 2, 2)
        ? ` (containerd ${version.text} defaults it to the list /etc/containerd/certs.d:/etc/docker/certs.d, which its transfer-service pull reads as one directory name: containerd #12415)`
        : '';
    return {
      ok: false,
      reason: Reason.ConfigPathNotSet,
      message: `containerd's config ${configFile} sets no registry config_path, so hosts.toml files are ignored${defaultList}. Add these lines and restart containerd once: ${configPathLines(configVersion)}`,
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
  if (dirs.length === 1) return { ok: true, dir: first };
  const oneName = `its transfer-service pull takes config_path "${configPath}" as one directory name and reads no hosts.toml under any of them (containerd #12415, #12636)`;
  if (version === undefined) {
    return {
      ok: true,
      dir: first,
      note: `config_path lists ${dirs.length} directories; Prepull writes to the first, ${first}. If this node's containerd is 2.1 or newer, ${oneName}: keep a single directory there`,
    };
  }
  if (atLeast(version, 2, 1) && pullsThroughTransferService(config)) {
    return {
      ok: false,
      reason: Reason.ConfigPathListUnread,
      message: `containerd ${version.text} pulls through its transfer service, and ${oneName}. Set config_path to the single directory "${first}" in ${configFile} and restart containerd once`,
    };
  }
  return {
    ok: true,
    dir: first,
    note: `config_path lists ${dirs.length} directories; Prepull writes to the first, ${first}`,
  };
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
