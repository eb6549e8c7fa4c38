/**
 * What `npm start` offers a newcomer on the embedded cluster: a small demo
 * image in the local (password-protected) registry with a manifest that
 * pre-pulls it (namespace, pull secret, PrePulledImage), and an image archive
 * for `kubectl prepull load`. Writes files under the cluster directory and
 * pushes to the registry; returns the commands to print.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDockerArchive, buildOciImage, holdBinary, OCI_MANIFEST } from './images.ts';
import { pushBlob, pushManifest } from './registry.ts';
import type { ClusterInfo } from './types.ts';

export interface Demo {
  /** `kubectl apply -f …` of the demo PrePulledImage (and its namespace and pull secret). */
  apply: string;
  /** Waits until it is Ready. */
  wait: string;
  /** `kubectl prepull load …` of the demo archive onto every node. */
  load: string;
}

const NAMESPACE = 'demo';

/** Pushes the demo image and writes the demo files; the cluster must have its registry and real node. */
export async function prepareDemo(cluster: ClusterInfo): Promise<Demo> {
  const { registry, node } = cluster;
  if (!registry || !node) throw new Error('the demo needs the cluster with its registry and real node');
  const dir = join(cluster.dir, 'demo');
  mkdirSync(dir, { recursive: true });
  const files = [
    { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
    {
      path: 'hello.txt',
      content: 'Hello from Prepull: this image was on the node before any pod needed it.\n',
      mode: 0o644,
    },
  ];
  const image = buildOciImage({ workDir: dir, files, entrypoint: ['/hold'] });
  const repo = 'prepull-demo/hello';
  for (const blob of [...image.layers, image.config]) await pushBlob(registry, repo, blob);
  await pushManifest(registry, repo, 'v1', OCI_MANIFEST, image.manifest);

  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
  const dockerConfig = JSON.stringify({ auths: { [registry.host]: { auth } } });
  const manifest = join(dir, 'hello.yaml');
  writeFileSync(
    manifest,
    `# The demo image of the embedded cluster's local registry, pre-pulled on every node.
apiVersion: v1
kind: Namespace
metadata:
  name: ${NAMESPACE}
---
# The local registry wants a password, as a private registry does.
apiVersion: v1
kind: Secret
metadata:
  name: local-registry
  namespace: ${NAMESPACE}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: ${Buffer.from(dockerConfig).toString('base64')}
---
apiVersion: prepull.dev/v1alpha1
kind: PrePulledImage
metadata:
  name: hello
  namespace: ${NAMESPACE}
spec:
  images:
    - image: ${registry.host}/${repo}:v1
  imagePullSecrets:
    - name: local-registry
`,
  );
  // As `docker save` would write it: an image that exists in no registry.
  const archive = join(dir, 'hello.tar');
  renameSync(
    await buildDockerArchive({
      workDir: dir,
      ref: 'prepull.local/demo/hello:dev',
      files,
      entrypoint: ['/hold'],
    }),
    archive,
  );
  return {
    apply: `kubectl apply -f ${manifest}`,
    wait: `kubectl wait -n ${NAMESPACE} --for=condition=Ready prepulledimage/hello --timeout=2m`,
    // The embedded node's containerd listens under the cluster directory, not at a distribution's path.
    load: `kubectl prepull load ${archive} --containerd-socket ${node.containerdSocket}`,
  };
}
