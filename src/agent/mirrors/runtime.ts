/**
 * Which containerd runs on the node and where it reads hosts.toml files:
 * the config file (given, or the distribution's), its imports, then
 * containerd-config.ts on the merged TOML. k3s and rke2 generate containerd's
 * config from their own registries.yaml at start, so writing under it would
 * half-work until the next restart: they are reported Unsupported. microk8s
 * keeps its config and certs.d under the snap. I/O (reads only).
 */
import { basename, dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { Reason } from '../../api/conditions.ts';
import type { MirrorNodeReport } from '../../api/registrymirror.ts';
import { type HostsDirectory, hostsDirectoryOf, importsOf, mergeConfig } from './containerd-config.ts';
import type { NodeFiles } from './files.ts';

export type Flavour = NonNullable<MirrorNodeReport['runtime']>['flavour'];

/** The node's runtime as far as registry hosts go. */
export interface NodeRuntime {
  flavour: Flavour;
  configFile?: string;
  hosts: HostsDirectory;
}

export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
const MICROK8S_SNAP_DATA = '/var/snap/microk8s/current';
/** microk8s's template names its data directory as a shell variable. */
const SNAP_DATA_VARIABLE = '$' + '{SNAP_DATA}';
const MICROK8S_CONFIG = `${MICROK8S_SNAP_DATA}/args/containerd-template.toml`;
const RANCHER = {
  k3s: { config: '/var/lib/rancher/k3s/agent/etc/containerd/config.toml', registries: '/etc/rancher/k3s' },
  rke2: { config: '/var/lib/rancher/rke2/agent/etc/containerd/config.toml', registries: '/etc/rancher/rke2' },
} as const;

function unsupported(flavour: 'k3s' | 'rke2', configFile: string): NodeRuntime {
  return {
    flavour,
    configFile,
    hosts: {
      ok: false,
      reason: Reason.Unsupported,
      message: `${flavour} writes containerd's registry settings from ${RANCHER[flavour].registries}/registries.yaml at start and replaces them on restart; set the mirror there (mirrors: ${flavour} docs) and restart ${flavour}. Prepull does not write them, rather than half-work until the next restart`,
    },
  };
}

/**
 * Reads containerd's config on the node. `configFile` (the agent's flag)
 * wins; else k3s, rke2 and microk8s are recognised by their files, and the
 * default is /etc/containerd/config.toml.
 */
export async function detectRuntime(files: NodeFiles, configFile?: string): Promise<NodeRuntime> {
  for (const flavour of ['k3s', 'rke2'] as const) {
    const path = RANCHER[flavour].config;
    if (configFile === path || (configFile === undefined && (await files.exists(path)))) {
      return unsupported(flavour, path);
    }
  }
  if (configFile === undefined && (await files.exists(MICROK8S_CONFIG))) {
    return {
      flavour: 'microk8s',
      configFile: MICROK8S_CONFIG,
      hosts: await readHostsDirectory(files, MICROK8S_CONFIG, (p) =>
        p.replaceAll(SNAP_DATA_VARIABLE, MICROK8S_SNAP_DATA),
      ),
    };
  }
  const path = configFile ?? DEFAULT_CONTAINERD_CONFIG;
  return { flavour: 'containerd', configFile: path, hosts: await readHostsDirectory(files, path) };
}

async function readHostsDirectory(
  files: NodeFiles,
  path: string,
  expand?: (path: string) => string,
): Promise<HostsDirectory> {
  const text = await files.read(path);
  if (text === undefined) {
    return {
      ok: false,
      reason: Reason.RuntimeConfigNotFound,
      message: `no containerd config at ${path}: containerd runs on defaults, without a registry config_path. Give the agent --containerd-config if the file is elsewhere`,
    };
  }
  let config: Record<string, unknown>;
  try {
    config = parseToml(text.toString('utf8')) as Record<string, unknown>;
    for (const imported of await importedFiles(files, importsOf(config))) {
      const body = await files.read(imported);
      if (body) config = mergeConfig(config, parseToml(body.toString('utf8')) as Record<string, unknown>);
    }
  } catch (err) {
    return {
      ok: false,
      reason: Reason.RuntimeConfigInvalid,
      message: `cannot read containerd's config ${path}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    };
  }
  return hostsDirectoryOf(config, path, expand);
}

/** The files `imports` names, globs (`*` in the last segment) expanded in name order. */
async function importedFiles(files: NodeFiles, patterns: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pattern of patterns) {
    const name = basename(pattern);
    if (!name.includes('*')) {
      out.push(pattern);
      continue;
    }
    const dir = dirname(pattern);
    const matcher = new RegExp(`^${name.split('*').map(escapeRegExp).join('.*')}$`);
    const names = (await files.list(dir)).filter((n) => matcher.test(n)).sort();
    out.push(...names.map((n) => join(dir, n)));
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
