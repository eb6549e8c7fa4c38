import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostFiles } from '../node/files.ts';
import { detectRuntime, flavourOf } from './runtime.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'prepull-runtime-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function put(path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

const detect = (configFile?: string) => detectRuntime(hostFiles(root), configFile ? { configFile } : {});

describe('detectRuntime', () => {
  it('reads containerd 2.x config_path from the images plugin (version 3)', async () => {
    put(
      '/etc/containerd/config.toml',
      'version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d"\n',
    );
    expect(await detect()).toEqual({
      flavour: 'containerd',
      configFile: '/etc/containerd/config.toml',
      hosts: { ok: true, dir: '/etc/containerd/certs.d' },
    });
  });

  it("reads containerd 1.6's CRI section (version 2) from the file the flag names", async () => {
    put(
      '/opt/c.toml',
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/opt/certs.d"\n',
    );
    expect((await detect('/opt/c.toml')).hosts).toEqual({ ok: true, dir: '/opt/certs.d' });
  });

  it('says ConfigPathNotSet with the lines to add, for the config version the node has', async () => {
    put('/etc/containerd/config.toml', 'version = 3\n[plugins."io.containerd.cri.v1.images"]\n');
    const { hosts } = await detect();
    expect(hosts).toMatchObject({ ok: false, reason: 'ConfigPathNotSet' });
    expect(!hosts.ok && hosts.message).toContain(
      '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d"',
    );
  });

  it('says InlineMirrorsConflict for inline registry.mirrors', async () => {
    put(
      '/etc/containerd/config.toml',
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://m"]\n',
    );
    expect((await detect()).hosts).toMatchObject({ ok: false, reason: 'InlineMirrorsConflict' });
  });

  it('leaves registry.configs auth alone but refuses inline tls', async () => {
    const auth = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/d"\n';
    put(
      '/etc/containerd/config.toml',
      `${auth}[plugins."io.containerd.grpc.v1.cri".registry.configs."r".auth]\n  username = "u"\n`,
    );
    expect((await detect()).hosts).toMatchObject({ ok: true });
    put(
      '/etc/containerd/config.toml',
      `${auth}[plugins."io.containerd.grpc.v1.cri".registry.configs."r".tls]\n  insecure_skip_verify = true\n`,
    );
    expect((await detect()).hosts).toMatchObject({ ok: false, reason: 'InlineMirrorsConflict' });
  });

  it('merges imports (a drop-in may set config_path)', async () => {
    put('/etc/containerd/config.toml', 'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\n');
    put(
      '/etc/containerd/conf.d/10-registry.toml',
      '[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"\n',
    );
    const { hosts } = await detect();
    expect(hosts).toMatchObject({ ok: true, dir: '/etc/containerd/certs.d' });
    expect(hosts.ok && hosts.note).toContain('#12415');
  });

  it('reports k3s and rke2 as Unsupported, naming registries.yaml', async () => {
    put('/var/lib/rancher/k3s/agent/etc/containerd/config.toml', 'version = 3\n');
    const k3s = await detect();
    expect(k3s).toMatchObject({ flavour: 'k3s', hosts: { ok: false, reason: 'Unsupported' } });
    expect(!k3s.hosts.ok && k3s.hosts.message).toContain('/etc/rancher/k3s/registries.yaml');
  });

  it('knows k3s, rke2 and microk8s from the node the kubelet reports', () => {
    const node = (kubeletVersion: string, labels: Record<string, string> = {}) => ({
      metadata: { name: 'n', labels },
      status: { nodeInfo: { kubeletVersion } },
    });
    expect(flavourOf(node('v1.34.2+k3s1'))).toBe('k3s');
    expect(flavourOf(node('v1.34.2+rke2r1'))).toBe('rke2');
    expect(flavourOf(node('v1.34.2', { 'microk8s.io/cluster': 'true' }))).toBe('microk8s');
    expect(flavourOf(node('v1.36.3'))).toBe('containerd');
  });

  it("takes containerd's version from the node, and judges a config_path list by it", async () => {
    put(
      '/etc/containerd/config.toml',
      'version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/a:/b"\n',
    );
    const node = (containerRuntimeVersion: string) => ({
      metadata: { name: 'n' },
      status: { nodeInfo: { containerRuntimeVersion } },
    });
    const recent = await detectRuntime(hostFiles(root), { node: node('containerd://2.4.2') });
    expect(recent).toMatchObject({
      version: { text: '2.4.2' },
      hosts: { ok: false, reason: 'ConfigPathListUnread' },
    });
    const old = await detectRuntime(hostFiles(root), { node: node('containerd://1.7.30') });
    expect(old).toMatchObject({ version: { text: '1.7.30' }, hosts: { ok: true, dir: '/a' } });
  });

  it('reports a k3s node Unsupported without seeing its files', async () => {
    const k3s = { metadata: { name: 'n' }, status: { nodeInfo: { kubeletVersion: 'v1.34.2+k3s1' } } };
    expect((await detectRuntime(hostFiles(root), { node: k3s })).hosts).toMatchObject({
      reason: 'Unsupported',
    });
  });

  it("uses microk8s's own certs.d", async () => {
    put(
      '/var/snap/microk8s/current/args/containerd-template.toml',
      `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "\${SNAP_DATA}/args/certs.d"\n`,
    );
    expect(await detect()).toMatchObject({
      flavour: 'microk8s',
      hosts: { ok: true, dir: '/var/snap/microk8s/current/args/certs.d' },
    });
  });

  it('says RuntimeConfigNotFound or RuntimeConfigInvalid rather than guess', async () => {
    expect((await detect()).hosts).toMatchObject({ ok: false, reason: 'RuntimeConfigNotFound' });
    put('/etc/containerd/config.toml', 'version = = 2\n');
    expect((await detect()).hosts).toMatchObject({ ok: false, reason: 'RuntimeConfigInvalid' });
  });
});
