import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageNamesInArchive, namesFrom } from './archive.ts';

const dir = mkdtempSync(join(tmpdir(), 'archive-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tarOf(name: string, files: Record<string, string>, format = 'posix'): string {
  const root = join(dir, `${name}-root`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  const out = join(dir, `${name}.tar`);
  execFileSync('tar', ['-C', root, `--format=${format}`, '-cf', out, '.']);
  return out;
}

describe('imageNamesInArchive', () => {
  it('reads the RepoTags of a docker archive', async () => {
    const tar = tarOf('docker', {
      [`${'a'.repeat(64)}/layer.tar`]: 'layer',
      'manifest.json': JSON.stringify([
        { Config: 'c.json', RepoTags: ['app:dev', 'registry.local/app:1'], Layers: [] },
      ]),
    });
    expect(await imageNamesInArchive(tar)).toEqual(['app:dev', 'registry.local/app:1']);
  });

  it('reads the ref.name and containerd name annotations of an OCI archive, skipping bare tags', async () => {
    const index = {
      schemaVersion: 2,
      manifests: [
        { annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/app:dev' } },
        {
          annotations: {
            'io.containerd.image.name': 'quay.io/x/y:1',
            'org.opencontainers.image.ref.name': '1',
          },
        },
        { annotations: { 'org.opencontainers.image.ref.name': 'v1' } },
      ],
    };
    const tar = tarOf('oci', { 'oci-layout': '{}', 'index.json': JSON.stringify(index) }, 'gnu');
    expect(await imageNamesInArchive(tar)).toEqual(['docker.io/library/app:dev', 'quay.io/x/y:1']);
  });

  it('finds nothing in an unnamed archive, and copes with long member names', async () => {
    const tar = tarOf('unnamed', {
      [`blobs/sha256/${'b'.repeat(64)}/${'c'.repeat(120)}`]: 'x',
      'index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 'sha256:1' }] }),
    });
    expect(await imageNamesInArchive(tar)).toEqual([]);
  });

  it('ignores null RepoTags (an untagged docker save)', () => {
    expect(namesFrom(JSON.stringify([{ RepoTags: null }]), undefined)).toEqual([]);
  });
});
