/**
 * A moved tag rolled onto kwok nodes (BENCH_NODES, default 1000), in one run
 * on one cluster with the harness's registry:
 *   1. the floor: a bare DaemonSet of exactly the pods a PrePulledImage
 *      renders, pinned to the tag's digest, whose image is then changed to
 *      the new digest by hand: time until every node runs the new pod;
 *   2. a PrePulledImage (refresh 1m) with the operator run as the image runs
 *      it with --registry-checks: the tag moves at the registry, and we time
 *      the check that finds it (bounded by the interval) and then the roll
 *      until every node's pod names the new digest and the object is Ready
 *      again, as a ratio to the floor; the operator's API requests during the
 *      roll (audit log), the registry's requests for the tag (its own log) and
 *      the operator's RSS.
 * BENCH_WAVE sets maxConcurrentPulls (default none: every node at once, like
 * the floor's 100% surge). kwok pulls nothing: this is the control plane's cost.
 * Run: node bench/digest-roll.ts   (prints figures; asserts nothing)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBundle } from '../scripts/build.ts';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import { pinnedDigests, withPinnedImages } from '../src/controllers/prepulledimage/pinning.ts';
import { renderPullDaemonSet } from '../src/controllers/prepulledimage/render.ts';
import { resolvedImage } from '../src/controllers/prepulledimage/resolution.ts';
import type { DaemonSet, Node, Pod } from '../src/kube/objects.ts';
import { Resources } from '../src/kube/resources.ts';
import { USER_AGENT } from '../src/operator/manager.ts';
import { releasedImage } from '../src/version.ts';
import { buildOciImage, OCI_MANIFEST } from '../test/harness/images.ts';
import { pushBlob, pushManifest } from '../test/harness/registry.ts';
import { auditedRequests } from '../test/support/audit.ts';
import { createFakeNodes, KWOK_TOLERATION } from '../test/support/nodes.ts';
import { createRegistryPullSecret } from '../test/support/pull-secret.ts';
import {
  applyPrePulledImage,
  fmt,
  kubectl,
  sampleRssMiB,
  say,
  startOperatorProcess,
  until,
  untilControllersStarted,
  withCluster,
} from './support.ts';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const WAVE = process.env.BENCH_WAVE;
const NS = 'bench-digest';
const REPO = 'bench/rolled';
const TAG = 'v1';
const basePort = Number(process.env.BENCH_BASE_PORT ?? 24450);

await withCluster('bench-digest', basePort, { kwok: true, registry: true }, async (cluster, client) => {
  const registry = cluster.registry!;
  const ref = `${registry.host}/${REPO}:${TAG}`;
  const push = async (generation: string) => {
    const image = buildOciImage({
      workDir: join(cluster.dir, 'bench-digest-images'),
      files: [{ path: 'generation', content: `${generation}\n`, mode: 0o644 }],
    });
    for (const blob of [...image.layers, image.config]) await pushBlob(registry, REPO, blob);
    return pushManifest(registry, REPO, TAG, OCI_MANIFEST, image.manifest);
  };
  kubectl(cluster, ['create', 'namespace', NS]);
  createRegistryPullSecret(cluster, NS, 'registry');
  say(`creating ${NODES} kwok nodes`);
  for (let from = 0; from < NODES; from += 250) {
    createFakeNodes(cluster, 'bench', from, Math.min(NODES, from + 250), { 'prepull-bench/pool': 'all' });
  }
  await until(
    async () => {
      const nodes = await client.list<Node>(Resources.nodes, { labelSelector: 'prepull-bench/pool=all' });
      return (
        nodes.items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length === NODES
      );
    },
    900_000,
    `${NODES} nodes Ready`,
  );
  const spec = {
    images: [{ image: ref }],
    imagePullSecrets: [{ name: 'registry' }],
    refresh: { interval: '1m' },
    nodeSelector: { 'prepull-bench/pool': 'all' },
    tolerations: [KWOK_TOLERATION],
    ...(WAVE ? { maxConcurrentPulls: WAVE.endsWith('%') ? WAVE : Number(WAVE) } : {}),
  };
  const first = await push('1');
  const second = await push('2');

  // The floor: the same pods, pinned by hand, rolled by the DaemonSet controller alone (no gate to lift).
  const fake: PrePulledImage = {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name: 'bare', namespace: NS, uid: '00000000-0000-4000-8000-000000000000', generation: 1 },
    spec,
  };
  const bareAt = (digest: string): DaemonSet => {
    const rendered = renderPullDaemonSet(fake, {
      agent: { image: releasedImage, pullPolicy: 'IfNotPresent', holdPath: '/hold' },
      extraPullSecrets: ['registry'],
    });
    const ds = withPinnedImages(rendered, pinnedDigests(fake, [resolvedImage(digest, [], new Date())]));
    delete ds.metadata.ownerReferences;
    delete ds.metadata.annotations;
    delete ds.spec.template.spec.schedulingGates;
    delete ds.spec.template.metadata.annotations?.['prepull.dev/owner'];
    return ds;
  };
  const rolledOnto = async (name: string, digest: string) => {
    const ds = await client.get<DaemonSet>(Resources.daemonSets, name, NS);
    if (!ds || ds.spec.template.spec.containers[0]?.image !== `${ref}@${digest}`) return false;
    if ((ds.status?.observedGeneration ?? 0) < (ds.metadata.generation ?? 0)) return false;
    const pods = await client.list<Pod>(Resources.pods, {
      namespace: NS,
      labelSelector: `prepull.dev/owner-uid=${ds.spec.selector.matchLabels?.['prepull.dev/owner-uid']}`,
    });
    const live = pods.items.filter((p) => !p.metadata.deletionTimestamp);
    return (
      live.length === NODES &&
      live.every(
        (p) =>
          p.spec.containers[0]?.image === `${ref}@${digest}` &&
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )
    );
  };
  say(`floor: a bare DaemonSet over ${NODES} nodes`);
  await client.create(Resources.daemonSets, bareAt(first));
  await until(() => rolledOnto('ppi-bare', first), 1_800_000, 'the bare DaemonSet to be ready');
  const bareStart = Date.now();
  await client.patch(
    Resources.daemonSets,
    'ppi-bare',
    NS,
    [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: `${ref}@${second}` }],
    'json',
  );
  await until(() => rolledOnto('ppi-bare', second), 1_800_000, 'the bare DaemonSet to roll');
  const bareSeconds = (Date.now() - bareStart) / 1000;
  say(`floor rolled in ${fmt(bareSeconds)} s`);
  await client.delete(Resources.daemonSets, 'ppi-bare', NS, { propagationPolicy: 'Background' });
  await until(
    async () => (await client.list<Pod>(Resources.pods, { namespace: NS, limit: 1 })).items.length === 0,
    900_000,
    'the bare pods to go',
  );

  // Back to the first digest at the registry, then the PrePulledImage.
  await pushManifest(
    registry,
    REPO,
    TAG,
    OCI_MANIFEST,
    buildOciImage({
      workDir: join(cluster.dir, 'bench-digest-images'),
      files: [{ path: 'generation', content: '1\n', mode: 0o644 }],
    }).manifest,
  );
  const logFile = join(cluster.dir, 'logs', 'bench-digest-operator.log');
  const operator = startOperatorProcess(await buildBundle(), cluster, logFile, [
    '--registry-checks',
    '--registry-ca-file',
    registry.caFile,
    // Its own port: other benchmarks' operators may hold the default one.
    '--health-address',
    `127.0.0.1:${basePort + 9}`,
  ]);
  try {
    await untilControllersStarted(logFile);
    say(`PrePulledImage over ${NODES} nodes`);
    applyPrePulledImage(cluster, NS, 'rolled', spec);
    const status = async () =>
      (await client.get<PrePulledImage>(Resources.prePulledImages, 'rolled', NS))?.status;
    const readyOn = async (digest: string) => {
      const s = await status();
      return (
        s?.images?.[0]?.resolvedDigest === digest &&
        s.ready === `${NODES}/${NODES}` &&
        s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
      );
    };
    await until(() => readyOn(first), 1_800_000, 'the PrePulledImage to be Ready');
    await until(() => rolledOnto('ppi-rolled', first), 600_000, 'every pod to name the first digest');

    const headsBefore = tagRequests(cluster.dir);
    const moveAt = Date.now();
    await push('2');
    say('tag moved; waiting for the check');
    await until(
      async () => (await status())?.images?.[0]?.resolvedDigest === second,
      300_000,
      'the check to find the move',
    );
    const foundAt = Date.now();
    await until(
      async () => (await rolledOnto('ppi-rolled', second)) && (await readyOn(second)),
      1_800_000,
      'the PrePulledImage to roll',
    );
    const rolledAt = Date.now();
    // From the move: the pass that finds it also applies the DaemonSet that rolls, before status shows it.
    const requests = auditedRequests(cluster.auditLog, USER_AGENT, moveAt).filter(
      (r) => r.at <= rolledAt && r.verb !== 'watch',
    );
    const writes = (verb: string) => requests.filter((r) => r.verb === verb).length;
    const heads = tagRequests(cluster.dir) - headsBefore;
    const rss = await sampleRssMiB(operator.pid ?? 0, 10);
    const rollSeconds = (rolledAt - foundAt) / 1000;
    const lines = [
      `Digest pinning on ${NODES} kwok nodes (Kubernetes ${cluster.kubernetesVersion}), maxConcurrentPulls ${WAVE ?? 'unset (100% surge)'}:`,
      `  floor: bare DaemonSet, image changed to the new digest by hand: ${fmt(bareSeconds)} s until every node runs it`,
      `  PrePulledImage: tag move found by the check after ${fmt((foundAt - moveAt) / 1000)} s (refresh 1m; the check is due at most an interval after the last)`,
      `  PrePulledImage: roll from the check until every pod names the new digest and Ready ${NODES}/${NODES}: ${fmt(rollSeconds)} s, ratio ${fmt(rollSeconds / bareSeconds, 2)}x to the floor`,
      `  operator API requests from the move until rolled: ${requests.length} (${writes('patch')} patches, ${writes('create')} creates, ${writes('delete')} deletes, ${writes('list')} lists)`,
      `  registry requests for the tag from the move until rolled: ${heads} (kwok pulls nothing; the operator's HEADs and GETs)`,
      `  operator RSS after the roll: ${fmt(rss.median)} MiB median, ${fmt(rss.max)} MiB peak over 10 s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    operator.kill('SIGTERM');
  }
});

/** Requests for the tag's manifest in the registry's access log (HEAD or GET, 401 challenges too; not the pushes). */
function tagRequests(dir: string): number {
  const line = new RegExp(`"(HEAD|GET) /v2/${REPO}/manifests/${TAG} HTTP`);
  return readFileSync(join(dir, 'logs', 'registry.log'), 'utf8')
    .split('\n')
    .filter((l) => line.test(l)).length;
}
