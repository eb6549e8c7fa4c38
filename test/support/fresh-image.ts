/**
 * A private image of its own for one run of a tier, pushed to the harness's
 * registry: content no other test and no earlier run has, so nothing on the
 * node holds it, and no kubelet pull record of it (Kubernetes 1.35+ credential
 * tracking) reaches any other test.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildOciImage, holdBinary, OCI_MANIFEST } from '../harness/images.ts';
import { pushBlob, pushManifest } from '../harness/registry.ts';
import type { ClusterInfo } from '../harness/types.ts';

/** Pushes `repo:<random tag>` with a file of random content beside `hold`; returns its reference. */
export async function pushFreshImage(cluster: ClusterInfo, repo: string): Promise<string> {
  const registry = cluster.registry;
  if (!registry) throw new Error('a fresh image needs the harness registry');
  const run = randomBytes(4).toString('hex');
  const image = buildOciImage({
    workDir: join(cluster.dir, 'fresh-images', repo.replaceAll('/', '-')),
    files: [
      { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
      { path: 'run', content: `${run}\n`, mode: 0o644 },
    ],
    entrypoint: ['/hold'],
  });
  for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
  await pushManifest(registry, repo, run, OCI_MANIFEST, image.manifest);
  return `${registry.host}/${repo}:${run}`;
}
