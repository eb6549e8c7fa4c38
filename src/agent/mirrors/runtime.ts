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
import type { Node } from '../../kube/objects.ts';
import type { NodeFiles } from '../node/files.ts';
import {
  type ContainerdVersion,
  containerdVersionOf,
  type HostsDirectory,
  hostsDirectoryOf,
  importsOf,
  mergeConfig,
} from './containerd-config.ts';

export type Flavour = NonNullable<MirrorNodeReport['runtime']>['flavour'];

/** The node's runtime as far as registry hosts go. */
export interface NodeRuntime {
  flavour: Flavour;
  /** containerd's version, from what the kubelet reports (`status.nodeInfo.containerRuntimeVersion`). */
  version?: ContainerdVersion;
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
 * The distribution, from what the kubelet reports about itself: k3s and
 * rke2 version their kubelet `+k3s1` and `+rke2r1`, microk8s labels its
 * nodes `microk8s.io/cluster`. So nothing of those distributions needs to
 * be mounted to be recognised.
 */
export function flavourOf(node: Node | undefined): Flavour {
  const kubelet = node?.status?.nodeInfo?.kubeletVersion ?? '';
  if (/\+k3s\d*$/.test(kubelet)) return 'k3s';
  if (/\+rke2r\d*$/.test(kubelet)) return 'rke2';
  if (node?.metadata.labels?.['microk8s.io/cluster'] !== undefined) return 'microk8s';
  return 'containerd';
}

/**
 * Reads containerd's config on the node: `configFile` (the agent's flag), or
 * the distribution's (microk8s's template; /etc/containerd/config.toml).
 * k3s and rke2 are Unsupported whatever the file says (recognised by the
 * node, or by their generated config when it is visible).
 */
export async function detectRuntime(
  files: NodeFiles,
  options: { configFile?: string; node?: Node } = {},
): Promise<NodeRuntime> {
  const { configFile } = options;
  let flavour = flavourOf(options.node);
  for (const rancher of ['k3s', 'rke2'] as const) {
    const path = RANCHER[rancher].config;
    if (configFile === path || (configFile === undefined && (await files.exists(path)))) flavour = rancher;
  }
  if (flavour === 'k3s' || flavour === 'rke2') return unsupported(flavour, RANCHER[flavour].config);
  if (flavour === 'containerd' && configFile === undefined && (await files.exists(MICROK8S_CONFIG))) {
    flavour = 'microk8s';
  }
  const version = containerdVersionOf(options.node?.status?.nodeInfo?.containerRuntimeVersion);
  const known = version ? { version } : {};
  if (flavour === 'microk8s') {
    const path = configFile ?? MICROK8S_CONFIG;
    return {
      flavour,
      ...known,
      configFile: path,
      hosts: await readHostsDirectory(files, path, version, (p) =>
        p.replaceAll(SNAP_DATA_VARIABLE, MICROK8S_SNAP_DATA),
      ),
    };
  }
  const path = configFile ?? DEFAULT_CONTAINERD_CONFIG;
  return { flavour, ...known, configFile: path, hosts: await readHostsDirectory(files, path, version) };
}

async function readHostsDirectory(
  files: NodeFiles,
  path: string,
  version: ContainerdVersion | undefined,
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
  return hostsDirectoryOf(config, path, expand, version);
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
