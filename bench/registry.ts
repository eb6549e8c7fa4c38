/**
 * Registry requests per refresh interval, counted at the registry's own log:
 * 100 PrePulledImages sharing 20 tags (five objects per tag), each with
 * refresh.interval 1m, with the operator run as the image runs it with
 * --registry-checks. The target is 20 HEADs per interval, one per distinct
 * (registry, repository, tag, credentials), whatever the number of objects.
 * The objects select no node: only the registry traffic is measured.
 * Run: node bench/registry.ts   (prints figures; asserts nothing)
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { buildBundle } from '../scripts/build.ts';
import type { PrePulledImage } from '../src/api/prepulledimage.ts';
import { Resources } from '../src/kube/resources.ts';
import { buildOciImage, OCI_MANIFEST } from '../test/harness/images.ts';
import { pushBlob, pushManifest } from '../test/harness/registry.ts';
import { createRegistryPullSecret } from '../test/support/pull-secret.ts';
import {
  kubectl,
  say,
  startOperatorProcess,
  until,
  untilControllersStarted,
  withCluster,
} from './support.ts';

const OBJECTS = 100;
const TAGS = 20;
const INTERVAL_S = 60;
const WINDOWS = 2;
const NS = 'bench-registry';
const REPO = 'bench/shared';
const basePort = Number(process.env.BENCH_BASE_PORT ?? 24190);

interface LoggedRequest {
  method: string;
  uri: string;
  status: number;
}

await withCluster('bench-registry', basePort, { kwok: false, registry: true }, async (cluster, client) => {
  const registry = cluster.registry!;
  const caBundle = readFileSync(registry.caFile);
  const registryLog = join(cluster.dir, 'logs', 'registry.log');

  /** The registry's request lines so far: a marker request first, so every line before it is in the file. */
  const loggedRequests = async (): Promise<LoggedRequest[]> => {
    const marker = `/v2/log-marker-${randomBytes(4).toString('hex')}/manifests/x`;
    await new Promise<void>((resolve, reject) => {
      const req = request(`https://${registry.host}${marker}`, { ca: caBundle, method: 'HEAD' }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    let lines: string[] = [];
    await until(
      () => {
        lines = readFileSync(registryLog, 'utf8').split('\n');
        return lines.some((l) => l.includes(marker));
      },
      30_000,
      "the registry's log to show the marker",
    );
    // One access-log line per request (the structured lines come several per request).
    return lines.flatMap((line) => {
      const access = /"(\w+) (\/v2\/\S+) HTTP\/[\d.]+" (\d{3})/.exec(line);
      if (!access?.[2]?.startsWith(`/v2/${REPO}/`)) return [];
      return [{ method: access[1] ?? '', uri: access[2], status: Number(access[3]) }];
    });
  };

  kubectl(cluster, ['create', 'namespace', NS]);
  createRegistryPullSecret(cluster, NS, 'registry');
  const image = buildOciImage({
    workDir: join(cluster.dir, 'bench-registry-images'),
    files: [{ path: 'content', content: 'shared\n', mode: 0o644 }],
  });
  for (const blob of [...image.layers, image.config]) await pushBlob(registry, REPO, blob);
  const tags = Array.from({ length: TAGS }, (_, i) => `tag-${i}`);
  for (const tag of tags) await pushManifest(registry, REPO, tag, OCI_MANIFEST, image.manifest);

  const bundle = await buildBundle();
  const logFile = join(cluster.dir, 'logs', 'bench-registry-operator.log');
  const operator = startOperatorProcess(bundle, cluster, logFile, [
    '--registry-checks',
    '--registry-ca-file',
    registry.caFile,
  ]);
  try {
    await untilControllersStarted(logFile);
    const before = (await loggedRequests()).length;
    const started = Date.now();
    const objects = Array.from({ length: OBJECTS }, (_, i) => ({
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: `shared-${i}`, namespace: NS },
      spec: {
        images: [{ image: `${registry.host}/${REPO}:${tags[i % TAGS]}` }],
        imagePullSecrets: [{ name: 'registry' }],
        refresh: { interval: `${INTERVAL_S}s` },
        nodeSelector: { 'prepull-bench/pool': 'none' },
      },
    }));
    kubectl(
      cluster,
      ['apply', '--server-side', '--field-manager=bench', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    );
    await until(
      async () => {
        const listed = await client.list<PrePulledImage>(Resources.prePulledImages, { namespace: NS });
        return (
          listed.items.length === OBJECTS &&
          listed.items.every((p) => p.status?.images?.[0]?.resolvedDigest !== undefined)
        );
      },
      120_000,
      'every object to show its resolved digest',
    );
    const firstRound = (await loggedRequests()).slice(before);
    say(`first round: ${OBJECTS} objects resolved in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const windows: LoggedRequest[][] = [];
    let mark = before + firstRound.length;
    for (let w = 0; w < WINDOWS; w++) {
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_S * 1000));
      const all = await loggedRequests();
      windows.push(all.slice(mark));
      mark = all.length;
    }

    const count = (
      list: LoggedRequest[],
      method: string,
      kind: 'manifests/tag' | 'manifests/digest' | 'blobs',
    ) =>
      list.filter((r) => {
        if (r.method !== method) return false;
        if (kind === 'blobs') return r.uri.includes('/blobs/');
        const manifest = /\/manifests\/(.+)$/.exec(r.uri)?.[1];
        if (!manifest) return false;
        return kind === 'manifests/digest' ? manifest.startsWith('sha256:') : !manifest.startsWith('sha256:');
      }).length;
    const row = (name: string, list: LoggedRequest[]) =>
      `${name.padEnd(22)} ${String(count(list, 'HEAD', 'manifests/tag')).padStart(10)} ${String(
        count(list, 'GET', 'manifests/tag'),
      ).padStart(10)} ${String(count(list, 'GET', 'manifests/digest')).padStart(12)} ${String(
        count(list, 'GET', 'blobs'),
      ).padStart(
        10,
      )} ${String(list.filter((r) => r.status === 401).length).padStart(6)} ${String(list.length).padStart(8)}`;
    console.log(
      `\nRegistry requests for ${OBJECTS} PrePulledImages sharing ${TAGS} tags, refresh ${INTERVAL_S}s`,
    );
    console.log("(counted at the registry's own log; target: 20 HEADs of tags per interval)\n");
    console.log(
      `${'window'.padEnd(22)} ${'HEAD tag'.padStart(10)} ${'GET tag'.padStart(10)} ${'GET digest'.padStart(12)} ${'GET blob'.padStart(10)} ${'401'.padStart(6)} ${'all'.padStart(8)}`,
    );
    console.log(row('first round', firstRound));
    windows.forEach((list, i) => {
      console.log(row(`interval ${i + 1} (${INTERVAL_S} s)`, list));
    });
    console.log(`\nnaive (one HEAD per object per interval): ${OBJECTS}`);
  } finally {
    operator.kill('SIGTERM');
  }
});
