import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { containerdVersionOf, hostsDirectoryOf, pullsThroughTransferService } from './containerd-config.ts';

const v1_6 = containerdVersionOf('containerd://1.6.20~ds1');
const v2_0 = containerdVersionOf('containerd://v2.0.5');
const v2_4 = containerdVersionOf('containerd://2.4.2+unknown');
const twoDirs = (extra = '') =>
  parse(
    `version = 3\n[plugins."io.containerd.cri.v1.images"]\n${extra}[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"\n`,
  );

describe('containerdVersionOf', () => {
  it("reads the kubelet's containerRuntimeVersion", () => {
    expect(v1_6).toEqual({ major: 1, minor: 6, text: '1.6.20~ds1' });
    expect(v2_0).toEqual({ major: 2, minor: 0, text: '2.0.5' });
    expect(v2_4).toEqual({ major: 2, minor: 4, text: '2.4.2+unknown' });
    expect(containerdVersionOf('cri-o://1.34.0')).toBeUndefined();
    expect(containerdVersionOf(undefined)).toBeUndefined();
  });
});

describe('pullsThroughTransferService', () => {
  it('is the default, and off where containerd falls back to the local pull', () => {
    expect(pullsThroughTransferService(twoDirs())).toBe(true);
    expect(pullsThroughTransferService(twoDirs('  use_local_image_pull = true\n'))).toBe(false);
    expect(pullsThroughTransferService(twoDirs('  discard_unpacked_layers = true\n'))).toBe(false);
    expect(pullsThroughTransferService(twoDirs('  max_concurrent_downloads = 3\n'))).toBe(true);
    expect(pullsThroughTransferService(twoDirs('  max_concurrent_downloads = 6\n'))).toBe(false);
    // A version-2 file, where containerd migrates these from.
    const v2 = (containerd: string) =>
      parse(
        `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n${containerd}[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/a:/b"\n`,
      );
    expect(pullsThroughTransferService(v2(''))).toBe(true);
    expect(pullsThroughTransferService(v2('  disable_snapshot_annotations = false\n'))).toBe(false);
  });
});

describe('hostsDirectoryOf with several config_path directories', () => {
  it("is ConfigPathListUnread on containerd 2.1+'s transfer-service pull, which reads none of them", () => {
    const hosts = hostsDirectoryOf(twoDirs(), '/etc/containerd/config.toml', undefined, v2_4);
    expect(hosts).toMatchObject({ ok: false, reason: 'ConfigPathListUnread' });
    expect(!hosts.ok && hosts.message).toContain('#12415');
    expect(!hosts.ok && hosts.message).toContain('single directory "/etc/containerd/certs.d"');
  });

  it('writes to the first where containerd reads the list: before 2.1, or a local pull', () => {
    for (const [config, version] of [
      [twoDirs(), v1_6],
      [twoDirs(), v2_0],
      [twoDirs('  use_local_image_pull = true\n'), v2_4],
    ] as const) {
      const hosts = hostsDirectoryOf(config, '/c.toml', undefined, version);
      expect(hosts).toMatchObject({ ok: true, dir: '/etc/containerd/certs.d' });
      expect(hosts.ok && hosts.note).not.toContain('#12415');
    }
  });

  it("writes to the first and warns when the node's containerd version is unknown", () => {
    const hosts = hostsDirectoryOf(twoDirs(), '/c.toml');
    expect(hosts).toMatchObject({ ok: true, dir: '/etc/containerd/certs.d' });
    expect(hosts.ok && hosts.note).toContain('2.1 or newer');
  });
});

describe('hostsDirectoryOf without config_path', () => {
  it("names containerd 2.2+'s default list, which its transfer-service pull does not read", () => {
    const config = parse('version = 3\n');
    const old = hostsDirectoryOf(config, '/c.toml', undefined, v1_6);
    const recent = hostsDirectoryOf(config, '/c.toml', undefined, v2_4);
    expect(old).toMatchObject({ ok: false, reason: 'ConfigPathNotSet' });
    expect(!old.ok && old.message).not.toContain('defaults it');
    expect(recent).toMatchObject({ ok: false, reason: 'ConfigPathNotSet' });
    expect(!recent.ok && recent.message).toContain('/etc/containerd/certs.d:/etc/docker/certs.d');
  });
});
