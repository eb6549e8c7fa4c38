/**
 * What `npm start` offers a newcomer on the embedded cluster: a small demo
 * image in the local (password-protected) registry with a manifest that
 * pre-pulls it (namespace, pull secret, PrePulledImage), and an image archive
 * both for `kubectl prepull load` and for a PrePulledImage that the node agent
 * imports (with the agent's manifests and an import policy that allows the
 * demo's archive directory). Writes files under the cluster directory and
 * pushes to the registry; returns the commands to print and the objects to
 * apply.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_IMPORT_POLICY,
  IMPORT_POLICY_CONFIGMAP,
  IMPORT_POLICY_KEY,
} from '../../src/image/import-policy.ts';
import { nodeAgentManifests } from './agent.ts';
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
  /** `kubectl apply -f …` of a PrePulledImage that imports the demo archive through the node agent. */
  importApply: string;
  /** The node agent (deploy/agent.yaml, adapted to the embedded node) and the import policy; the DaemonSet is the last. */
  agentObjects: unknown[];
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
      // Content of its own: the same layers as the registry's demo image would be
      // the image the kubelet pulled with the demo's pull secret, and since
      // Kubernetes 1.35 a pod without that secret may not use it (ErrImageNeverPull).
      files: [
        files[0]!,
        {
          path: 'hello.txt',
          content: 'Hello from Prepull: imported from an archive, no registry.\n',
          mode: 0o644,
        },
      ],
      entrypoint: ['/hold'],
    }),
    archive,
  );
  // The air-gapped way: the node agent imports the archive on every node. The
  // admin's policy keeps the default rule and lets the demo namespace import
  // from the demo directory, which the agent mounts.
  const importManifest = join(dir, 'hello-tarball.yaml');
  writeFileSync(
    importManifest,
    `# The demo archive, imported on every node by Prepull's node agent: no registry involved.
apiVersion: prepull.dev/v1alpha1
kind: PrePulledImage
metadata:
  name: hello-tarball
  namespace: ${NAMESPACE}
spec:
  images:
    - image: prepull.local/${NAMESPACE}/hello:dev
      tarball:
        hostPath: ${archive}
`,
  );
  const policy = {
    rules: [
      ...DEFAULT_IMPORT_POLICY.rules,
      {
        namespaces: [NAMESPACE],
        images: [`prepull.local/${NAMESPACE}/**`],
        hostPaths: [`${dir}/`],
        urls: [],
      },
    ],
  };
  const agentObjects = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: IMPORT_POLICY_CONFIGMAP, namespace: 'prepull-system' },
      data: { [IMPORT_POLICY_KEY]: JSON.stringify(policy, null, 2) },
    },
    ...nodeAgentManifests(cluster, { archiveDirectories: [dir] }),
  ];
  return {
    apply: `kubectl apply -f ${manifest}`,
    wait: `kubectl wait -n ${NAMESPACE} --for=condition=Ready prepulledimage/hello --timeout=2m`,
    // The embedded node's containerd listens under the cluster directory, not at a distribution's path.
    load: `kubectl prepull load ${archive} --containerd-socket ${node.containerdSocket}`,
    importApply: `kubectl apply -f ${importManifest}`,
    agentObjects,
  };
}
