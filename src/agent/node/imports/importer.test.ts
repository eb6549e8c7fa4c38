import { describe, expect, it } from 'vitest';
import { credentialInput, importerArgs, parseImporterOutput, unpinArgs } from './importer.ts';
import type { ImportTask } from './plan.ts';

const settings = {
  path: '/prepull-import',
  hostRoot: '/host',
  runtimeSocket: undefined,
  workDir: '/work',
  timeoutMs: 60_000,
};
const base = {
  key: 'u/0',
  uid: 'u',
  index: 0,
  owner: 'team-a/web',
  namespace: 'team-a',
  image: 'prepull.local/team-a/app:v1',
  fingerprint: 'f',
};

describe('importerArgs', () => {
  it('reads a volume claim archive from standard input, where the puller pod sends it', () => {
    const task: ImportTask = {
      ...base,
      tarball: { persistentVolumeClaim: { claimName: 'images', path: 'app.tar' } },
    };
    const args = importerArgs(task, settings);
    expect(args.slice(0, 6)).toEqual([
      '--image',
      'prepull.local/team-a/app:v1',
      '--owner',
      'team-a',
      '--archive',
      '-',
    ]);
    expect(args).not.toContain('--archive-root');
    expect(args.join(' ')).not.toContain('app.tar');
  });

  it('resolves a hostPath inside the host root, names the owner, and detects the socket there', () => {
    const task: ImportTask = { ...base, tarball: { hostPath: '/var/lib/prepull/archives/team-a/app.tar' } };
    expect(importerArgs(task, settings)).toEqual([
      '--image',
      'prepull.local/team-a/app:v1',
      '--owner',
      'team-a',
      '--archive-root',
      '/host',
      '--archive',
      '/var/lib/prepull/archives/team-a/app.tar',
      '--host-root',
      '/host',
      '--work-dir',
      '/work',
      '--timeout',
      '60s',
      '--exit-zero',
    ]);
  });

  it('downloads a URL with its checksum, through the given socket', () => {
    const task: ImportTask = {
      ...base,
      tarball: { url: 'https://a.example/app.tar', sha256: 'b'.repeat(64) },
    };
    const args = importerArgs(task, { ...settings, runtimeSocket: '/host/run/containerd/containerd.sock' });
    expect(args).toEqual(
      expect.arrayContaining(['--url', 'https://a.example/app.tar', '--sha256', 'b'.repeat(64)]),
    );
    expect(args).toEqual(expect.arrayContaining(['--address', '/host/run/containerd/containerd.sock']));
    expect(args).not.toContain('--archive-root');
  });

  it('asks for the credential on standard input, never in an argument, and passes the CA bundle', () => {
    const task: ImportTask = {
      ...base,
      tarball: { url: 'https://a.example/app.tar', credentialsSecretRef: { name: 'download' } },
    };
    const args = importerArgs(task, { ...settings, downloadCaFile: '/etc/prepull/ca.pem' }, true);
    expect(args).toEqual(expect.arrayContaining(['--credentials-stdin', '--ca-file', '/etc/prepull/ca.pem']));
    expect(args.join(' ')).not.toContain('download');
    expect(importerArgs(task, settings)).not.toContain('--credentials-stdin');
    expect(JSON.parse(credentialInput('Basic dTpw'))).toEqual({ authorization: 'Basic dTpw' });
  });

  it("keeps every redirect within the policy's prefixes, and passes the download cap", () => {
    const task: ImportTask = {
      ...base,
      tarball: { url: 'https://a.example/x/app.tar' },
      redirectWithin: ['https://a.example/x/', 'https://cdn.example/'],
    };
    const args = importerArgs(task, { ...settings, maxDownloadBytes: 1024 });
    expect(args.join(' ')).toContain(
      '--redirect-within https://a.example/x/ --redirect-within https://cdn.example/',
    );
    expect(args.join(' ')).toContain('--max-download-bytes 1024');
  });
});

describe('unpinArgs', () => {
  it('names every image still held, sorted, and imports nothing', () => {
    expect(unpinArgs(['b.example/x:1', 'a.example/y:2'], settings)).toEqual([
      '--unpin',
      '--unpin-except',
      'a.example/y:2,b.example/x:1',
      '--host-root',
      '/host',
      '--exit-zero',
    ]);
  });
});

describe('parseImporterOutput', () => {
  it('is a success only with an explicit ok, and keeps the digest', () => {
    expect(parseImporterOutput('{"ok":true,"image":"a","digest":"sha256:1"}\n', 'x')).toEqual({
      ok: true,
      digest: 'sha256:1',
    });
  });

  it('keeps a known reason and the message, and turns an unknown reason into ImportFailed', () => {
    expect(parseImporterOutput('{"ok":false,"reason":"ChecksumMismatch","message":"differs"}', 'x')).toEqual({
      ok: false,
      reason: 'ChecksumMismatch',
      message: 'differs',
    });
    expect(parseImporterOutput('{"ok":false,"reason":"Whatever","message":"m"}', 'x')).toMatchObject({
      reason: 'ImportFailed',
    });
  });

  it('is a failure with the fallback message when there is no result', () => {
    expect(parseImporterOutput('panic: boom', 'the importer failed without a result (2)')).toEqual({
      ok: false,
      reason: 'ImportFailed',
      message: 'the importer failed without a result (2)',
    });
  });
});
