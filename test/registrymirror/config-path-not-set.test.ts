/**
 * `ConfigPathNotSet` on real containerd: a second containerd of the node's
 * own runtime (the same binary: Debian's 1.6, or 2.x), with its own root,
 * state, socket and a config that sets no registry `config_path`, runs
 * beside the node's. The mirrors module reads that config as it reads any
 * node's (and knows the version from the real Node object) and reports
 * ConfigPathNotSet, with the lines to add; containerd's own `config dump`
 * agrees that config_path is empty, and a CRI pull (crictl, as the kubelet
 * pulls: the pod's credentials, no server address) of
 * `registry.example.invalid/…` fails. The lines of the message are added
 * (with this test's directory for /etc/containerd/certs.d), containerd is
 * restarted once, its dump shows the directory; the module then writes
 * hosts.toml there and reports Applied, and the same pull works, with no
 * further restart.
 *
 * The node's own containerd is not touched: only one real node fits on the
 * machine, and every other tier runs on it.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyMirrors, type SelectedMirror } from '../../src/agent/mirrors/apply.ts';
import { detectRuntime } from '../../src/agent/mirrors/runtime.ts';
import { hostFiles } from '../../src/agent/node/files.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Node } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { cachedBinDir } from '../harness/cluster.ts';
import { type Supervised, startProcess, stopProcess, waitUntilReady } from '../harness/process.ts';
import { mirroredImage, UPSTREAM } from './node.ts';

const cluster = inject('cluster');
const registry = cluster.registry!;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const files = hostFiles('/');

// Needs the real kubelet node (its containerd binary and version): skipped only on a cluster started
// with PREPULL_TEST_REAL_NODE=0 (a helper's second cluster); the whole suite runs it in the node lane.
describe.skipIf(!cluster.node)(`ConfigPathNotSet on a real containerd (${cluster.node?.runtime})`, () => {
  const binDir = dirname(cluster.node!.ctr);
  const work = mkdtempSync(join(cluster.dir, 'cfgpath-'));
  const configFile = join(work, 'containerd.toml');
  const hostsDir = join(work, 'certs.d');
  const socket = join(work, 'c.sock');
  let containerd: Supervised | undefined;
  let node: Node | undefined;

  const start = async () => {
    containerd = startProcess('containerd', join(binDir, 'containerd'), ['--config', configFile], work);
    await waitUntilReady(
      containerd,
      'containerd',
      () => {
        execFileSync(join(binDir, 'ctr'), ['--address', socket, 'version'], { stdio: 'pipe' });
        return true;
      },
      60_000,
    );
  };
  /** A CRI pull of the mirrored image with the registry's password, as the kubelet sends it. */
  const criPull = () => {
    const crictl = join(cachedBinDir('crictl'), 'crictl');
    const endpoint = `unix://${socket}`;
    const creds = `${registry.username}:${registry.password}`;
    const args = ['--runtime-endpoint', endpoint, '--image-endpoint', endpoint, '--timeout', '60s'];
    try {
      execFileSync(crictl, [...args, 'pull', '--creds', creds, mirroredImage(cluster)], { stdio: 'pipe' });
      return 'pulled';
    } catch (err) {
      // The registry's password is on crictl's command line, never in its output.
      return String((err as { stderr?: Buffer }).stderr ?? err);
    }
  };
  /** The registry config_path containerd itself makes of its config. */
  const dumpedConfigPath = () => {
    const dump = execFileSync(join(binDir, 'containerd'), ['--config', configFile, 'config', 'dump'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
    const section =
      /\[plugins\.["']io\.containerd\.(?:grpc\.v1\.cri|cri\.v1\.images)["']\.registry\]\s+config_path = ["']([^"']*)["']/.exec(
        dump,
      );
    if (!section) throw new Error(`containerd config dump shows no CRI registry section:\n${dump}`);
    return section[1];
  };

  beforeAll(async () => {
    mkdirSync(hostsDir);
    // A kubeadm-style config of the version containerd 1.6 reads (2.x migrates it), without config_path.
    writeFileSync(
      configFile,
      `version = 2
root = "${join(work, 'root')}"
state = "${join(work, 'state')}"

[grpc]
  address = "${socket}"

[ttrpc]
  address = "${socket}.ttrpc"

# The node's containerd owns NRI's socket.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.grpc.v1.cri"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "${join(work, 'net.d')}"
`,
    );
    await start();
    node = await client.get<Node>(Resources.nodes, cluster.node!.name);
  });

  afterAll(async () => {
    if (containerd) await stopProcess(containerd);
  });

  const mirror: SelectedMirror = {
    name: 'example-invalid',
    uid: 'uid-config-path',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
    spec: {
      host: UPSTREAM,
      upstream: 'Replaced',
      mirrors: [{ url: `https://${registry.host}`, caBundle: readFileSync(registry.caFile, 'utf8') }],
    },
  };

  it('reports ConfigPathNotSet with the lines to add, for the config containerd runs with', async () => {
    expect(dumpedConfigPath()).toBe('');
    const runtime = await detectRuntime(files, { configFile, ...(node ? { node } : {}) });
    expect(runtime.version?.text).toBe(
      node?.status?.nodeInfo?.containerRuntimeVersion?.replace('containerd://', ''),
    );
    expect(runtime.hosts).toMatchObject({ ok: false, reason: 'ConfigPathNotSet' });
    const message = runtime.hosts.ok ? '' : runtime.hosts.message;
    expect(message).toContain(configFile);
    const lines = message.slice(
      message.indexOf('restart containerd once: ') + 'restart containerd once: '.length,
    );
    expect(lines).toBe(
      '[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"',
    );

    const report = await applyMirrors({
      files,
      statePath: join(work, 'mirrors.json'),
      runtime,
      mirrors: [mirror],
    });
    expect(report.mirrors).toEqual([expect.objectContaining({ reason: 'ConfigPathNotSet', message })]);
    expect(existsSync(join(hostsDir, UPSTREAM))).toBe(false);
    expect(criPull()).toContain(`lookup ${UPSTREAM}`);

    // What the user does with the message: add the lines, restart containerd once.
    appendFileSync(configFile, `\n${lines.replace('/etc/containerd/certs.d', hostsDir)}\n`);
    await stopProcess(containerd!);
    await start();
    expect(dumpedConfigPath()).toBe(hostsDir);
    const fixed = await detectRuntime(files, { configFile, ...(node ? { node } : {}) });
    expect(fixed.hosts).toEqual({ ok: true, dir: hostsDir });
    const applied = await applyMirrors({
      files,
      statePath: join(work, 'mirrors.json'),
      runtime: fixed,
      mirrors: [mirror],
    });
    expect(applied.mirrors.map((m) => m.reason)).toEqual(['Applied']);
    expect(existsSync(join(hostsDir, UPSTREAM, 'hosts.toml'))).toBe(true);
    expect(criPull()).toBe('pulled');
  });
});
