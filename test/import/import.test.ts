/**
 * Air-gapped import on the real node: tarball sources of a PrePulledImage are
 * imported into the node's containerd (k8s.io) by the node agent (deploy/
 * agent.yaml, in Prepull's namespace) and then run by a plain pod with
 * imagePullPolicy Never. The tenant namespace is PodSecurity `restricted`,
 * so its puller pods import nothing themselves. Runs on containerd 2.x and,
 * with PREPULL_TEST_RUNTIME=containerd16, on Debian's containerd 1.6.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { buildDockerArchive, buildOciArchive, buildOciImage, holdBinary } from '../harness/images.ts';
import {
  agentArchiveUrl,
  agentPodUrl,
  applyImportPolicy,
  type NodeAgent,
  startNodeAgent,
} from '../support/agent.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator, testAgentOptions } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const node = cluster.node!;
const NS = 'import';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const dir = join(cluster.dir, 'import-archives');
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };
/** The pod network's gateway: the node itself, as seen from a pod (the harness's CNI bridge). */
const NODE_FROM_POD = node.podGateway;

/** Files of a runnable image, with a marker so every case has its own image ID. */
function files(marker: string) {
  return [
    { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
    { path: 'etc/case', content: `${marker}\n`, mode: 0o644 },
  ];
}

function ctr(args: string[]): string {
  return execFileSync(node.ctr, ['--address', node.containerdSocket, '--namespace', 'k8s.io', ...args], {
    encoding: 'utf8',
  });
}

const getPpi = (name: string) => getPrePulledImage(client, NS, name);
const nodeImage = (ppi: PrePulledImage, image: string) => nodeImageState(ppi, node.name, image);

let agent: NodeAgent | undefined;
let removePolicy: (() => void) | undefined;
/** This run's docker-archive image, which the retry describe checks is unpinned once its object is gone. */
let dockerImage = '';

beforeAll(async () => {
  expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
  kubectl(cluster, ['create', 'namespace', NS]);
  // The tenant's namespace admits only restricted pods: the puller pods of tarball images included.
  const labelled = kubectl(cluster, [
    'label',
    '--overwrite',
    'namespace',
    NS,
    'pod-security.kubernetes.io/enforce=restricted',
  ]);
  expect(labelled.status, labelled.stderr).toBe(0);
  mkdirSync(dir, { recursive: true });
  // Fast retries, so the retry case below sees one within seconds.
  agent = await startNodeAgent(cluster, { archiveDirectories: [dir], args: ['--import-retry=1,4'] });
}, 180_000);

afterAll(async () => {
  removePolicy?.();
  await agent?.stop();
});

describe(`tarball import on the real node (${node.runtime})`, () => {
  let operator: TestOperator;
  let server: Server;
  let serverPort = 0;
  const served = new Map<string, Buffer>();
  const cases: Record<string, { image: string; tarball: Record<string, unknown> }> = {};
  let pvcCase: { image: string; tarball: Record<string, unknown> } | undefined;
  let claimName = '';
  const run = randomBytes(3).toString('hex');

  beforeAll(async () => {
    const name = (c: string) => `import.test/${c}-${run}:v1`;

    // docker save / skopeo docker-archive: a named docker archive.
    const dockerArchive = await buildDockerArchive({
      workDir: dir,
      ref: name('docker'),
      files: files(`docker ${run}`),
    });
    // skopeo itself, from docker archives: oci-archive:FILE:NAME is named by the
    // ref.name annotation; oci-archive:FILE names nothing (where ctr --base-name imports nothing).
    const skopeo = async (marker: string, target: string) => {
      const source = await buildDockerArchive({
        workDir: dir,
        ref: `source/${marker}-${run}:1`,
        files: files(`${marker} ${run}`),
      });
      execFileSync('skopeo', ['copy', '--quiet', `docker-archive:${source}`, target], {
        stdio: 'pipe',
        timeout: 60_000,
      });
    };
    const named = join(dir, `oci-named-${run}.tar`);
    await skopeo('oci-named', `oci-archive:${named}:${name('oci-named')}`);
    const unnamed = join(dir, `oci-unnamed-${run}.tar`);
    await skopeo('oci-unnamed', `oci-archive:${unnamed}`);
    // A multi-platform export whose arm64 blobs were left out.
    const multi = buildOciArchive({
      workDir: dir,
      images: [
        buildOciImage({ workDir: dir, files: files(`multi ${run}`), entrypoint: ['/hold'] }),
        buildOciImage({
          workDir: dir,
          arch: 'arm64',
          files: [{ path: 'hold', content: holdBinary('arm64'), mode: 0o755 }],
        }),
      ],
      refName: name('multi'),
      omitBlobsOf: 'arm64',
    });
    // ctr export of an image containerd holds (the Prepull image, by its release name), imported under another name.
    const exported = join(dir, `ctr-export-${run}.tar`);
    ctr([
      'images',
      'export',
      ...(node.runtime === 'containerd2' ? ['--local'] : []),
      exported,
      inject('image').name,
    ]);
    // A volume holding archives: a static hostPath PersistentVolume over the
    // archive directory (the harness has no provisioner), bound to a claim.
    const pvcArchive = `pvc-${run}.tar`;
    renameSync(
      await buildDockerArchive({ workDir: dir, ref: name('pvc'), files: files(`pvc ${run}`) }),
      join(dir, pvcArchive),
    );
    const claim = `archives-${run}`;
    const volumes = [
      {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: claim },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadOnlyMany'],
          storageClassName: '',
          hostPath: { path: dir, type: 'Directory' },
          claimRef: { namespace: NS, name: claim },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: { name: claim, namespace: NS },
        spec: {
          accessModes: ['ReadOnlyMany'],
          storageClassName: '',
          volumeName: claim,
          resources: { requests: { storage: '1Gi' } },
        },
      },
    ];
    const created = kubectl(
      cluster,
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: volumes }),
    );
    expect(created.status, created.stderr).toBe(0);
    const corrupt = join(dir, `corrupt-${run}.tar`);
    writeFileSync(corrupt, randomBytes(64 * 1024));
    const download = await buildDockerArchive({
      workDir: dir,
      ref: name('download'),
      files: files(`download ${run}`),
    });
    served.set('/download.tar', readFileSync(download));
    served.set('/tampered.tar', readFileSync(download));

    server = createServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (!body) return res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, NODE_FROM_POD, resolve));
    serverPort = (server.address() as { port: number }).port;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

    Object.assign(cases, {
      docker: { image: name('docker'), tarball: { hostPath: dockerArchive } },
      ociNamed: { image: name('oci-named'), tarball: { hostPath: named } },
      ociUnnamed: { image: name('oci-unnamed'), tarball: { hostPath: unnamed } },
      multiPlatform: { image: name('multi'), tarball: { hostPath: multi } },
      ctrExport: { image: name('ctr-export'), tarball: { hostPath: exported } },
      url: {
        image: name('download'),
        tarball: {
          url: `http://${NODE_FROM_POD}:${serverPort}/download.tar`,
          sha256: sha(served.get('/download.tar')!),
        },
      },
      corrupt: { image: name('corrupt'), tarball: { hostPath: corrupt } },
      badChecksum: {
        image: name('tampered'),
        tarball: { url: `http://${NODE_FROM_POD}:${serverPort}/tampered.tar`, sha256: 'f'.repeat(64) },
      },
    });
    dockerImage = name('docker');

    // Read by the tenant's own puller pod and sent to the agent.
    cases.pvc = {
      image: name('pvc'),
      tarball: { persistentVolumeClaim: { claimName: claim, path: pvcArchive } },
    };
    claimName = claim;
    // What a hostile tenant could put in its claim: a symlink out of it, and a FIFO.
    symlinkSync('/etc/hostname', join(dir, `escape-${run}.tar`));
    execFileSync('mkfifo', [join(dir, `fifo-${run}.tar`)]);
    cases.pvcEscape = {
      image: name('pvc-escape'),
      tarball: { persistentVolumeClaim: { claimName: claim, path: `escape-${run}.tar` } },
    };
    cases.pvcFifo = {
      image: name('pvc-fifo'),
      tarball: { persistentVolumeClaim: { claimName: claim, path: `fifo-${run}.tar` } },
    };
    // A claim the policy does not name.
    pvcCase = {
      image: name('pvc'),
      tarball: { persistentVolumeClaim: { claimName: 'not-listed', path: pvcArchive } },
    };
    // The admin lets this namespace import its test images from the archive
    // directory and from the test's server, and nothing else.
    removePolicy = applyImportPolicy(cluster, [
      {
        namespaces: [NS],
        images: ['import.test/**'],
        hostPaths: [`${dir}/`],
        urls: [`http://${NODE_FROM_POD}:${serverPort}/`],
        persistentVolumeClaims: [claim],
      },
    ]);
    operator = startTestOperator(cluster, `import-${node.runtime}`, {
      agent: { ...testAgentOptions(cluster), archiveUrl: agentArchiveUrl(cluster) },
    });
    await eventually(() => expect(operator.ready()).toBe(true));
    const manifest = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'airgap', namespace: NS },
      spec: { ...onRealNode, images: Object.values(cases) },
    };
    const applied = kubectl(
      cluster,
      ['apply', '--server-side', '--field-manager=test', '-f', '-'],
      JSON.stringify(manifest),
    );
    expect(applied.status, applied.stderr).toBe(0);
    // Every image gets a verdict: the good ones Ready, the bad ones Failed.
    await eventually(async () => {
      const ppi = await getPpi('airgap');
      for (const c of Object.values(cases))
        expect(['Ready', 'Failed']).toContain(nodeImage(ppi, c.image)?.state);
    }, 240_000);
  });

  afterAll(async () => {
    await operator?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  const good = ['docker', 'ociNamed', 'ociUnnamed', 'multiPlatform', 'ctrExport', 'url', 'pvc'] as const;
  for (const key of good) {
    it(`imports ${key} and a plain pod with imagePullPolicy Never then runs it`, async () => {
      const { image } = cases[key]!;
      const ppi = await getPpi('airgap');
      expect(nodeImage(ppi, image)).toMatchObject({ state: 'Ready' });
      expect(nodeImage(ppi, image)?.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      // In containerd, named as asked, and pinned against kubelet image GC.
      const listed = ctr(['images', 'ls', `name==${image}`]);
      expect(listed).toContain(image);
      expect(listed).toContain('io.cri-containerd.pinned=pinned');
      const pod = `never-${key.toLowerCase()}`;
      const manifest = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: pod, namespace: NS },
        spec: {
          ...onRealNode,
          // The namespace is restricted: so is the workload.
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'app',
              image,
              imagePullPolicy: 'Never',
              command: ['/hold'],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
          terminationGracePeriodSeconds: 1,
        },
      };
      expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest)).status).toBe(0);
      await eventually(async () => {
        const p = await client.get<Pod>(Resources.pods, pod, NS);
        expect(p?.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
      }, 120_000);
    });
  }

  it('takes a claim archive only from the puller pod: other senders are refused, and a send after the import changes nothing', async () => {
    const ppi = await getPpi('airgap');
    const index = Object.values(cases).indexOf(cases.pvc!);
    const url = `${agentPodUrl(cluster)}/v1/imports/${ppi.metadata.uid}/${index}`;
    const before = ctr(['images', 'ls', `name==${cases.pvc!.image}`]);
    const send = async (token: string | undefined, body = 'not an archive') => {
      const res = await fetch(url, {
        method: 'PUT',
        headers: {
          'content-type': 'application/octet-stream',
          ...(token && { authorization: `Bearer ${token}` }),
        },
        body,
      });
      return {
        status: res.status,
        answer: (await res.json()) as { ok: boolean; message?: string; digest?: string },
      };
    };
    const token = (namespace: string, args: string[]) => {
      const made = kubectl(cluster, [
        'create',
        'token',
        'default',
        '-n',
        namespace,
        '--duration=10m',
        ...args,
      ]);
      expect(made.status, made.stderr).toBe(0);
      return made.stdout.trim();
    };
    const pullerPod = kubectl(cluster, [
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `prepull.dev/owner-uid=${ppi.metadata.uid}`,
      '-o',
      'jsonpath={.items[0].metadata.name}',
    ]).stdout.trim();
    expect(pullerPod).not.toBe('');
    const bound = (namespace: string, pod: string, audience = 'prepull.dev/agent') =>
      token(namespace, ['--audience', audience, '--bound-object-kind=Pod', `--bound-object-name=${pod}`]);
    // Another team's namespace, with a pod of its own to bind a token to.
    const other = `${NS}-other`;
    kubectl(cluster, ['create', 'namespace', other]);
    kubectl(cluster, ['wait', '--for=create', 'serviceaccount/default', '-n', other, '--timeout=60s']);
    const otherPod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'sender', namespace: other },
      spec: {
        containers: [{ name: 'c', image: cases.docker!.image, imagePullPolicy: 'Never', command: ['/hold'] }],
      },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(otherPod)).status).toBe(0);

    expect(await send(undefined)).toMatchObject({ status: 401 });
    expect(await send('x'.repeat(40))).toMatchObject({
      status: 401,
      answer: { message: expect.stringContaining('not accepted') },
    });
    expect(await send(bound(NS, pullerPod, 'https://kubernetes.default.svc'))).toMatchObject({ status: 401 });
    expect(await send(token(NS, ['--audience', 'prepull.dev/agent']))).toMatchObject({
      status: 403,
      answer: { message: expect.stringContaining('not bound to a pod') },
    });
    expect(await send(bound(NS, 'never-docker'))).toMatchObject({
      status: 403,
      answer: { message: expect.stringContaining('no puller pod') },
    });
    expect(await send(bound(other, 'sender'))).toMatchObject({ status: 403 });
    // The tenant itself can bind a token to its puller pod: for its own object, after the import,
    // the agent answers from what it did and reads nothing.
    const done = await send(bound(NS, pullerPod), 'other bytes');
    expect(done).toMatchObject({ status: 200, answer: { ok: true } });
    // The digest the import gave the image in containerd (its manifest's), which stands unchanged.
    expect(done.answer.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(before).toContain(done.answer.digest);
    expect(ctr(['images', 'ls', `name==${cases.pvc!.image}`])).toBe(before);
    kubectl(cluster, ['delete', 'namespace', other, '--wait=false']);
  });

  it('shows the archive sender in the tenant pod as restricted as the rest', async () => {
    const pods = await client.list<Pod>(Resources.pods, {
      namespace: NS,
      labelSelector: 'app.kubernetes.io/name=prepull-puller',
    });
    const sender = pods.items.flatMap((p) => p.spec.containers).find((c) => c.name.startsWith('archive-'));
    expect(sender?.args?.[0]).toBe('send-archive');
    expect(sender?.volumeMounts).toContainEqual(
      expect.objectContaining({ readOnly: true, mountPath: `/archives/${claimName}` }),
    );
  });

  it('reports a corrupt tarball as ImportFailed and a wrong checksum as ChecksumMismatch, the rest unaffected', async () => {
    const ppi = await getPpi('airgap');
    expect(nodeImage(ppi, cases.corrupt!.image)).toMatchObject({ state: 'Failed', reason: 'ImportFailed' });
    expect(nodeImage(ppi, cases.badChecksum!.image)).toMatchObject({
      state: 'Failed',
      reason: 'ChecksumMismatch',
    });
    expect(nodeImage(ppi, cases.badChecksum!.image)?.message).toContain('f'.repeat(64));
    expect(ppi.status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({ status: 'True' });
    // A failed import stays failed without the controller retrying it hot.
    expect((await operator.reconcileCounts()).errors).toBe(0);
  });

  it('reports what the puller pod cannot send from its claim: a symlink out of it, a FIFO, without blocking', async () => {
    const ppi = await getPpi('airgap');
    expect(nodeImage(ppi, cases.pvcEscape!.image)).toMatchObject({ state: 'Failed', reason: 'PathRefused' });
    expect(nodeImage(ppi, cases.pvcFifo!.image)).toMatchObject({
      state: 'Failed',
      reason: 'NotRegularFile',
      message: expect.stringContaining('is a FIFO'),
    });
    expect(ctr(['images', 'ls', '-q', `name==${cases.pvcEscape!.image}`]).trim()).toBe('');
    // The other claim image of the same pod came through all the same.
    expect(nodeImage(ppi, cases.pvc!.image)).toMatchObject({ state: 'Ready' });
  });

  it('keeps the puller pods restricted: no host path, no root, no import step in the tenant namespace', async () => {
    const pods = await client.list<Pod>(Resources.pods, {
      namespace: NS,
      labelSelector: 'app.kubernetes.io/name=prepull-puller',
    });
    expect(pods.items.length).toBeGreaterThan(0);
    for (const pod of pods.items) {
      expect(JSON.stringify(pod.spec)).not.toContain('hostPath');
      expect((pod.spec.initContainers ?? []).map((c) => c.name)).toEqual(['install-hold']);
      expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true });
    }
  });

  it('refuses what the policy does not allow before any pod work, as ImportNotAllowed', async () => {
    const refused = [
      {
        name: 'other-registry',
        images: [{ image: 'registry.k8s.io/pause:3.10', tarball: cases.docker!.tarball }],
      },
      {
        name: 'other-directory',
        images: [{ image: cases.docker!.image, tarball: { hostPath: '/etc/hostname' } }],
      },
      { name: 'claim', images: [pvcCase!] },
    ];
    for (const { name, images } of refused) {
      const manifest = {
        apiVersion: 'prepull.dev/v1alpha1',
        kind: 'PrePulledImage',
        metadata: { name, namespace: NS },
        spec: { ...onRealNode, images },
      };
      expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest)).status).toBe(0);
    }
    for (const { name } of refused) {
      await eventually(async () => {
        const ppi = await getPpi(name);
        expect(ppi.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
          status: 'False',
          reason: 'ImportNotAllowed',
        });
      });
      const daemonSets = kubectl(cluster, [
        'get',
        'daemonset',
        '-n',
        NS,
        `ppi-${name}`,
        '--ignore-not-found',
        '-o',
        'name',
      ]);
      expect(daemonSets.stdout.trim()).toBe('');
      kubectl(cluster, ['delete', 'prepulledimage', name, '-n', NS, '--wait']);
    }
  });
});

describe(`a failed import is retried (${node.runtime})`, () => {
  let operator: TestOperator;
  let airgapGone = false;
  const run = randomBytes(3).toString('hex');
  const image = `import.test/late-${run}:v1`;
  // The PrePulledImage comes first; its archive is copied to the node later.
  const archive = join(dir, `late-${run}.tar`);

  beforeAll(async () => {
    // The previous describe's object fails for good (corrupt, wrong checksum): out of the way.
    kubectl(cluster, ['delete', 'prepulledimage', 'airgap', '-n', NS, '--ignore-not-found', '--wait']);
    airgapGone = true;
    operator = startTestOperator(cluster, `import-retry-${node.runtime}`);
    await eventually(() => expect(operator.ready()).toBe(true));
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it('imports the archive once it appears on the node, without a spec change', async () => {
    const manifest = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'late', namespace: NS },
      spec: { ...onRealNode, images: [{ image, tarball: { hostPath: archive } }] },
    };
    const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest));
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      expect(nodeImage(await getPpi('late'), image)).toMatchObject({ state: 'Failed' });
    }, 120_000);
    const generation = (await getPpi('late')).metadata.generation;
    const pullerPods = async () =>
      (
        await client.list<Pod>(Resources.pods, {
          namespace: NS,
          labelSelector: 'app.kubernetes.io/name=prepull-puller',
        })
      ).items
        .filter((p) => p.metadata.annotations?.['prepull.dev/owner'] === `${NS}/late`)
        .map((p) => p.metadata.uid);
    const podsBefore = await pullerPods();

    renameSync(await buildDockerArchive({ workDir: dir, ref: image, files: files(`late ${run}`) }), archive);
    await eventually(async () => {
      const ppi = await getPpi('late');
      expect(nodeImage(ppi, image)).toMatchObject({ state: 'Ready' });
      expect(nodeImage(ppi, image)?.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    }, 120_000);
    // The agent tried again by itself: same spec, same puller pod.
    expect((await getPpi('late')).metadata.generation).toBe(generation);
    expect(await pullerPods()).toEqual(podsBefore);
    expect(ctr(['images', 'ls', `name==${image}`])).toContain(image);
    expect((await operator.reconcileCounts()).errors).toBe(0);
  });

  it('unpins what no PrePulledImage holds any longer, and leaves it in containerd', async () => {
    expect(airgapGone).toBe(true);
    expect(dockerImage).not.toBe('');
    // Only this run's image: the node's containerd keeps other runs' images.
    await eventually(() => {
      const listed = ctr(['images', 'ls', `name==${dockerImage}`]);
      expect(listed).toContain(dockerImage);
      expect(listed).not.toContain('io.cri-containerd.pinned=pinned');
    }, 60_000);
  });
});
