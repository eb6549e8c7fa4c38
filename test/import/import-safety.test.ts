/**
 * Import safety on the real node, both runtimes: what a hostile PrePulledImage
 * author tries through a tarball import is refused and leaves the node's
 * images as they were. Cases that need a puller pod go through the operator;
 * the download and size limits are driven on the importer binary itself
 * (run here as root against the node's containerd, as its init container
 * would), with small caps so that an endless body ends.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { buildDockerArchive, holdBinary } from '../harness/images.ts';
import { ensureCa, issueCertificate } from '../harness/pki.ts';
import { applyImportPolicy, type NodeAgent, startNodeAgent } from '../support/agent.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const node = cluster.node!;
/** The agent image by its release name: what ctr knows it as, and what a tenant's archive would claim. */
const AGENT = inject('image').name;
const NS = 'import-safety';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const dir = join(cluster.dir, 'import-safety');
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };
/** The node's sandbox image, imported by the harness (not by Prepull). */
const PAUSE = 'registry.k8s.io/pause:prepull';

interface ImportResult {
  ok: boolean;
  image: string;
  digest?: string;
  reason?: string;
  message?: string;
}

function ctr(args: string[]): string {
  return execFileSync(node.ctr, ['--address', node.containerdSocket, '--namespace', 'k8s.io', ...args], {
    encoding: 'utf8',
  });
}

/** The digest and labels containerd holds for `name`, or undefined. */
function nodeImage(name: string): { digest: string; labels: string } | undefined {
  const line = ctr(['images', 'ls', `name==${name}`])
    .split('\n')
    .slice(1)
    .find((l) => l.startsWith(`${name} `));
  if (!line) return undefined;
  return {
    digest: line.match(/sha256:[a-f0-9]{64}/)?.[0] ?? '',
    labels: line.trim().split(/\s+/).at(-1) ?? '',
  };
}

const importer = join(
  execFileSync('bash', [join(import.meta.dirname, '..', '..', 'scripts', 'build-importer.sh')], {
    encoding: 'utf8',
  }).trim(),
  'prepull-import-amd64',
);

/**
 * Runs the importer binary against the node's containerd and returns its JSON
 * result. Asynchronously: the download servers live in this process.
 */
async function runImporter(
  args: string[],
  o: { input?: Buffer; env?: Record<string, string> } = {},
): Promise<ImportResult> {
  const child = spawn(
    importer,
    ['--address', node.containerdSocket, '--work-dir', dir, '--exit-zero', '--timeout', '60s', ...args],
    { env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // The importer may stop reading early (a cap): a closed pipe is expected then.
  child.stdin.on('error', () => {});
  child.stdin.end(o.input ?? Buffer.alloc(0));
  const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  expect(status, stderr).toBe(0);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ImportResult;
}

const files = (marker: string) => [
  { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
  { path: 'pause', content: holdBinary('amd64'), mode: 0o755 },
  { path: 'etc/case', content: `${marker}\n`, mode: 0o644 },
];

describe(`imports never replace what they do not own (${node.runtime})`, () => {
  let operator: TestOperator;
  let agent: NodeAgent | undefined;
  let removePolicy: (() => void) | undefined;
  const run = randomBytes(3).toString('hex');
  const before: Record<string, { digest: string; labels: string } | undefined> = {};
  const images: Record<string, string> = {};

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    kubectl(cluster, ['create', 'namespace', NS]);
    mkdirSync(dir, { recursive: true });
    before.pause = nodeImage(PAUSE);
    before.agent = nodeImage(AGENT);
    expect(before.pause?.digest).toMatch(/^sha256:/);
    expect(before.agent?.digest).toMatch(/^sha256:/);
    // Archives that claim those names, with other content (still runnable, so
    // that a failing refusal does not break the node for the tests after it).
    const pauseArchive = await buildDockerArchive({ workDir: dir, ref: PAUSE, files: files(`evil ${run}`) });
    const agentArchive = await buildDockerArchive({
      workDir: dir,
      ref: AGENT,
      files: files(`evil ${run}`),
    });
    const pinned = `import.test/pinned-${run}@sha256:${'a'.repeat(64)}`;
    const pinnedArchive = await buildDockerArchive({
      workDir: dir,
      ref: `import.test/pinned-${run}:v1`,
      files: files(`pinned ${run}`),
    });
    const fifo = join(dir, `fifo-${run}.tar`);
    execFileSync('mkfifo', [fifo]);
    Object.assign(images, {
      pause: PAUSE,
      agent: AGENT,
      pinned,
      fifo: `import.test/fifo-${run}:v1`,
    });

    // Without a policy that names them, these imports are refused before any
    // pod work (the default lets a namespace import only prepull.local/<namespace>/).
    operator = startTestOperator(cluster, `import-safety-${node.runtime}`);
    await eventually(() => expect(operator.ready()).toBe(true));
    const refused = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'by-default', namespace: NS },
      spec: { ...onRealNode, images: [{ image: AGENT, tarball: { hostPath: agentArchive } }] },
    };
    expect(kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(refused)).status).toBe(0);
    await eventually(async () => {
      const ppi = await getPrePulledImage(client, NS, 'by-default');
      expect(ppi.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
        reason: 'ImportNotAllowed',
      });
    });
    kubectl(cluster, ['delete', 'prepulledimage', 'by-default', '-n', NS, '--wait']);
    // An admin who lets the namespace name them anyway: the node agent's importer still refuses.
    removePolicy = applyImportPolicy(cluster, [
      {
        namespaces: [NS],
        images: ['registry.k8s.io/**', 'ghcr.io/prepull/**', 'import.test/**'],
        hostPaths: [`${dir}/`],
      },
    ]);
    agent = await startNodeAgent(cluster, { archiveDirectories: [dir], args: ['--import-retry=3600,3600'] });
    const manifest = {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'PrePulledImage',
      metadata: { name: 'hostile', namespace: NS },
      spec: {
        ...onRealNode,
        images: [
          { image: PAUSE, tarball: { hostPath: pauseArchive } },
          { image: AGENT, tarball: { hostPath: agentArchive } },
          { image: pinned, tarball: { hostPath: pinnedArchive } },
          { image: images.fifo, tarball: { hostPath: fifo } },
        ],
      },
    };
    const applied = kubectl(cluster, ['apply', '-f', '-'], JSON.stringify(manifest));
    expect(applied.status, applied.stderr).toBe(0);
  });

  afterAll(async () => {
    kubectl(cluster, ['delete', 'prepulledimage', 'hostile', '-n', NS, '--ignore-not-found', '--wait']);
    await operator?.stop();
    removePolicy?.();
    await agent?.stop();
  });

  /** What status says of each image on the real node, as the node agent reported it. */
  async function importResults(): Promise<Map<string, ImportResult>> {
    const ppi = await getPrePulledImage(client, NS, 'hostile');
    const results = new Map<string, ImportResult>();
    for (const image of Object.values(images)) {
      const state = nodeImageState(ppi, node.name, image);
      if (state?.state === 'Failed') {
        results.set(image, { ok: false, image, reason: state.reason ?? '', message: state.message ?? '' });
      } else if (state?.state === 'Ready') {
        results.set(image, { ok: true, image });
      }
    }
    return results;
  }

  it('refuses to replace the sandbox (pause) image and the agent image, which Prepull did not import', async () => {
    let results = new Map<string, ImportResult>();
    await eventually(async () => {
      const r = await importResults();
      expect(r.get(PAUSE)).toBeDefined();
      expect(r.get(AGENT)).toBeDefined();
      results = r;
    }, 180_000);
    expect(results.get(PAUSE)).toMatchObject({ ok: false, reason: 'ImportConflict' });
    expect(results.get(PAUSE)?.message).toContain('was not imported by Prepull');
    expect(results.get(AGENT)).toMatchObject({ ok: false, reason: 'ImportConflict' });
    expect(nodeImage(PAUSE)).toEqual(before.pause);
    expect(nodeImage(AGENT)).toEqual(before.agent);
    expect(nodeImage(PAUSE)?.labels).not.toContain('prepull.dev/imported');
  });

  it('refuses an @sha256: name whose digest is not the archive image’s, and names nothing', async () => {
    let results = new Map<string, ImportResult>();
    await eventually(async () => {
      const r = await importResults();
      expect(r.get(images.pinned!)).toBeDefined();
      results = r;
    }, 180_000);
    expect(results.get(images.pinned!)).toMatchObject({ ok: false, reason: 'DigestMismatch' });
    expect(results.get(images.pinned!)?.message).toContain(`sha256:${'a'.repeat(64)}`);
    expect(nodeImage(images.pinned!)).toBeUndefined();
    expect(nodeImage(images.pinned!.replace(/@.*/, ':v1'))).toBeUndefined();
  });

  it('refuses a FIFO as the archive instead of blocking on it', async () => {
    let results = new Map<string, ImportResult>();
    await eventually(async () => {
      const r = await importResults();
      expect(r.get(images.fifo!)).toBeDefined();
      results = r;
    }, 180_000);
    expect(results.get(images.fifo!)).toMatchObject({ ok: false, reason: 'NotRegularFile' });
    expect(results.get(images.fifo!)?.message).toContain('FIFO');
  });
});

describe(`the importer's own limits (${node.runtime})`, () => {
  const run = randomBytes(3).toString('hex');
  let http: Server;
  let https: Server;
  let httpBase = '';
  let httpsBase = '';
  let archive: Buffer;
  let caFile = '';
  let endlessBytes = 0;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    archive = readFileSync(
      await buildDockerArchive({
        workDir: dir,
        ref: `import.test/limits-${run}:v1`,
        files: files(`limits ${run}`),
      }),
    );
    const ca = ensureCa(join(dir, 'pki'));
    caFile = ca.cert;
    const serving = issueCertificate(ca, {
      dir: join(dir, 'pki'),
      name: 'downloads',
      subject: '/CN=127.0.0.1',
      sans: ['IP:127.0.0.1'],
      usage: 'server',
    });
    const routes =
      (base: () => string) => (req: { url?: string }, res: import('node:http').ServerResponse) => {
        const url = req.url ?? '';
        if (url === '/archive.tar')
          return res.writeHead(200, { 'content-length': archive.length }).end(archive);
        if (url.startsWith('/loop'))
          return res.writeHead(302, { location: `${base()}/loop?n=${Math.random()}` }).end();
        if (url === '/to-http') return res.writeHead(302, { location: `${httpBase}/archive.tar` }).end();
        if (url === '/to-https') return res.writeHead(302, { location: `${httpsBase}/archive.tar` }).end();
        if (url === '/endless') {
          // Bounded on this side too: at most 64 MiB, then the server stops.
          res.writeHead(200);
          const chunk = Buffer.alloc(64 * 1024);
          const pump = () => {
            while (endlessBytes < 64 << 20) {
              endlessBytes += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          res.on('close', () => res.removeAllListeners('drain'));
          return pump();
        }
        res.writeHead(404).end();
      };
    http = createServer(routes(() => httpBase));
    https = createHttpsServer(
      { cert: readFileSync(serving.cert), key: readFileSync(serving.key) },
      routes(() => httpsBase),
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    httpBase = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
    httpsBase = `https://127.0.0.1:${(https.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    http?.closeAllConnections();
    https?.closeAllConnections();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (https ? https.close(() => resolve()) : resolve()));
  });

  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const tls = () => ({ env: { SSL_CERT_FILE: caFile } });

  it('downloads over https, and follows a redirect from http to https', async () => {
    const image = `import.test/limits-${run}:https`;
    expect(await runImporter(['--image', image, '--url', `${httpsBase}/archive.tar`], tls())).toMatchObject({
      ok: true,
    });
    const viaRedirect = await runImporter(
      ['--image', `${image}-2`, '--url', `${httpBase}/to-https`, '--sha256', sha(archive)],
      tls(),
    );
    expect(viaRedirect).toMatchObject({ ok: true });
  });

  it('refuses a redirect from https to http', async () => {
    const result = await runImporter(
      [
        '--image',
        `import.test/limits-${run}:downgrade`,
        '--url',
        `${httpsBase}/to-http`,
        '--sha256',
        sha(archive),
      ],
      tls(),
    );
    expect(result).toMatchObject({ ok: false, reason: 'RedirectRefused' });
    expect(result.message).toContain('from https to http');
  });

  it('refuses a redirect loop after a few hops', async () => {
    const result = await runImporter(
      ['--image', `import.test/limits-${run}:loop`, '--url', `${httpsBase}/loop`],
      tls(),
    );
    expect(result).toMatchObject({ ok: false, reason: 'RedirectRefused' });
    expect(result.message).toContain('redirected more than 5 times');
  });

  it('stops an endless body at the download cap', async () => {
    endlessBytes = 0;
    const result = await runImporter([
      '--image',
      `import.test/limits-${run}:endless`,
      '--url',
      `${httpBase}/endless`,
      '--sha256',
      'a'.repeat(64),
      '--max-download-bytes',
      String(1 << 20),
    ]);
    expect(result).toMatchObject({ ok: false, reason: 'DownloadTooLarge' });
    expect(endlessBytes).toBeLessThan(64 << 20);
  });

  it('requires a sha256 for plain http', async () => {
    const result = await runImporter([
      '--image',
      `import.test/limits-${run}:plain`,
      '--url',
      `${httpBase}/archive.tar`,
    ]);
    expect(result).toMatchObject({ ok: false, reason: 'ChecksumRequired' });
  });

  it('never writes a URL’s userinfo or query into its result', async () => {
    const result = await runImporter(
      [
        '--image',
        `import.test/limits-${run}:secret`,
        '--url',
        `${httpsBase.replace('https://', 'https://tenant:hunter2@')}/missing.tar?X-Amz-Signature=s3cr3t`,
      ],
      tls(),
    );
    expect(result).toMatchObject({ ok: false, reason: 'DownloadFailed' });
    expect(result.message).toContain(`${httpsBase}/missing.tar`);
    expect(JSON.stringify(result)).not.toMatch(/hunter2|tenant|s3cr3t|X-Amz/);
  });

  it('caps what one archive writes into the content store, from a file and from a stream', async () => {
    const path = join(dir, `limits-${run}.tar`);
    writeFileSync(path, archive);
    // Well inside the archive: tar readers stop before an archive's trailing padding.
    const cap = ['--max-archive-bytes', String(Math.floor(archive.length / 2))];
    const fromFile = await runImporter([
      '--image',
      `import.test/limits-${run}:capped`,
      '--archive',
      path,
      ...cap,
    ]);
    expect(fromFile).toMatchObject({ ok: false, reason: 'ArchiveTooLarge' });
    const fromStream = await runImporter(
      ['--image', `import.test/limits-${run}:capped`, '--archive', '-', ...cap],
      {
        input: archive,
      },
    );
    expect(fromStream).toMatchObject({ ok: false, reason: 'ArchiveTooLarge' });
    expect(nodeImage(`import.test/limits-${run}:capped`)).toBeUndefined();
    // Exactly at the cap is fine.
    const atCap = await runImporter(
      [
        '--image',
        `import.test/limits-${run}:capped`,
        '--archive',
        '-',
        '--max-archive-bytes',
        String(archive.length),
      ],
      { input: archive },
    );
    expect(atCap).toMatchObject({ ok: true });
  });

  it('refuses a .. path, and resolves symlinks inside --archive-root so they cannot leave it', async () => {
    const root = join(dir, `root-${run}`);
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'inside.tar'), archive);
    const traversal = await runImporter([
      '--image',
      `import.test/limits-${run}:dots`,
      '--archive',
      `${root}/../etc/passwd`,
    ]);
    expect(traversal).toMatchObject({ ok: false, reason: 'PathRefused' });
    // An absolute link is taken inside the root: /etc/passwd of the root does not exist.
    symlinkSync('/etc/passwd', join(root, 'sub', 'escape.tar'));
    const escaping = await runImporter([
      '--image',
      `import.test/limits-${run}:escape`,
      '--archive-root',
      root,
      '--archive',
      'sub/escape.tar',
    ]);
    expect(escaping).toMatchObject({ ok: false, reason: 'ImportFailed' });
    expect(escaping.message).toContain('no such file');
    // …and an absolute link that stays inside works.
    symlinkSync('/inside.tar', join(root, 'sub', 'inside.tar'));
    const inside = await runImporter([
      '--image',
      `import.test/limits-${run}:inside`,
      '--archive-root',
      root,
      '--archive',
      'sub/inside.tar',
    ]);
    expect(inside).toMatchObject({ ok: true });
  });

  it('re-imports over its own import, by digest too, but not over another owner’s', async () => {
    const image = `import.test/limits-${run}:owned`;
    const first = await runImporter(['--image', image, '--archive', '-', '--owner', 'team-a'], {
      input: archive,
    });
    expect(first).toMatchObject({ ok: true });
    expect(nodeImage(image)?.labels).toContain(`prepull.dev/imported=${image}`);
    const other = readFileSync(
      await buildDockerArchive({ workDir: dir, ref: image, files: files(`other ${run}`) }),
    );
    const again = await runImporter(['--image', image, '--archive', '-', '--owner', 'team-a'], {
      input: other,
    });
    expect(again).toMatchObject({ ok: true });
    expect(again.digest).not.toBe(first.digest);
    const stolen = await runImporter(['--image', image, '--archive', '-', '--owner', 'team-b'], {
      input: archive,
    });
    expect(stolen).toMatchObject({ ok: false, reason: 'ImportConflict' });
    expect(nodeImage(image)?.digest).toBe(again.digest);
    // The right digest pins fine.
    const pinned = `import.test/limits-${run}@${again.digest}`;
    expect(await runImporter(['--image', pinned, '--archive', '-'], { input: other })).toMatchObject({
      ok: true,
      digest: again.digest,
    });
  });
});
