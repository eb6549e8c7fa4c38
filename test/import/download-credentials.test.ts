/**
 * Download credentials on the real node: a url tarball source whose server
 * wants HTTP Basic imports with `tarball.credentialsSecretRef` naming a
 * Secret of the object's own namespace, fails with a clear reason without it
 * (or when its namespace has no such Secret: another namespace's is never
 * used), and the password appears nowhere a user or another tenant reads:
 * status, Events, pod specs and annotations, the agent's and the operator's
 * logs. The credential goes to the URL's own origin only, never to the host a
 * redirect leads to. The copy for the node agents, in Prepull's namespace, is
 * deleted once no object names the Secret.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { downloadCredentialsCopyName } from '../../src/image/download-credentials.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { buildDockerArchive, holdBinary } from '../harness/images.ts';
import { applyImportPolicy, type NodeAgent, startNodeAgent } from '../support/agent.ts';
import { type DownloadServer, downloadCa, startDownloadServer } from '../support/download-servers.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage, nodeImageState } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const node = cluster.node!;
const run = randomBytes(3).toString('hex');
const NS = `downloads-${run}`;
const OTHER_NS = `downloads-other-${run}`;
const SECRET = 'downloads';
const USERNAME = 'tenant';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const BASIC = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const dir = join(cluster.dir, `download-credentials-${run}`);
const onRealNode = { nodeSelector: { 'prepull.dev/test-node': 'real' } };
const image = (tag: string) => `import.test/credentials-${run}:${tag}`;

const getPpi = (namespace: string, name: string) => getPrePulledImage(client, namespace, name);
const stateOf = (ppi: PrePulledImage, tag: string) => nodeImageState(ppi, node.name, image(tag));

/** Every form the password could take in text: as is, and base64 alone or in the Basic value. */
const secretForms = [
  PASSWORD,
  Buffer.from(PASSWORD).toString('base64'),
  Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64'),
];

function ppi(namespace: string, name: string, images: unknown[]): object {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace },
    spec: { ...onRealNode, images },
  };
}

function apply(object: object): void {
  const applied = kubectl(cluster, ['apply', '--server-side', '-f', '-'], JSON.stringify(object));
  expect(applied.status, applied.stderr).toBe(0);
}

describe(`download credentials from a Secret (${node.runtime})`, () => {
  let origin: DownloadServer;
  let elsewhere: DownloadServer;
  let operator: TestOperator;
  let agent: NodeAgent | undefined;
  let removePolicy: (() => void) | undefined;

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    mkdirSync(dir, { recursive: true });
    for (const ns of [NS, OTHER_NS]) {
      kubectl(cluster, ['create', 'namespace', ns]);
      kubectl(cluster, ['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
    }
    const archive = readFileSync(
      await buildDockerArchive({
        workDir: dir,
        ref: image('archive'),
        files: [
          { path: 'hold', content: holdBinary('amd64'), mode: 0o755 },
          { path: 'etc/case', content: `credentials ${run}\n`, mode: 0o644 },
        ],
      }),
    );
    const ca = downloadCa(dir, node.podGateway);
    // Another origin (same host, another port): a redirect's target, which must never see the credential.
    elsewhere = await startDownloadServer(
      node.podGateway,
      (_req, res) => res.writeHead(200, { 'content-length': archive.length }).end(archive),
      ca.tls,
    );
    origin = await startDownloadServer(
      node.podGateway,
      (req, res) => {
        if (req.headers.authorization !== BASIC) {
          return res.writeHead(401, { 'www-authenticate': 'Basic realm="archives"' }).end('who are you');
        }
        if (req.url === '/private.tar') {
          return res.writeHead(200, { 'content-length': archive.length }).end(archive);
        }
        if (req.url === '/moved.tar') {
          return res.writeHead(302, { location: `${elsewhere.base}/moved.tar` }).end();
        }
        res.writeHead(404).end();
      },
      ca.tls,
    );
    const secret = kubectl(cluster, [
      'create',
      'secret',
      'generic',
      SECRET,
      '-n',
      NS,
      '--type=kubernetes.io/basic-auth',
      `--from-literal=username=${USERNAME}`,
      `--from-literal=password=${PASSWORD}`,
    ]);
    expect(secret.status, secret.stderr).toBe(0);
    removePolicy = applyImportPolicy(cluster, [
      {
        namespaces: [NS, OTHER_NS],
        images: ['import.test/**'],
        urls: [`${origin.base}/`, `${elsewhere.base}/`],
      },
    ]);
    agent = await startNodeAgent(cluster, { downloadCa: ca.pem, args: ['--import-retry=5,20'] });
    operator = startTestOperator(cluster, `download-credentials-${node.runtime}`);
    await eventually(() => expect(operator.ready()).toBe(true));
    const withCredentials = { credentialsSecretRef: { name: SECRET } };
    apply(
      ppi(NS, 'with-credentials', [
        { image: image('private'), tarball: { url: `${origin.base}/private.tar`, ...withCredentials } },
        { image: image('moved'), tarball: { url: `${origin.base}/moved.tar`, ...withCredentials } },
      ]),
    );
    apply(ppi(NS, 'without', [{ image: image('without'), tarball: { url: `${origin.base}/private.tar` } }]));
    // The other namespace names a Secret that exists only in the first.
    apply(
      ppi(OTHER_NS, 'borrowed', [
        { image: image('borrowed'), tarball: { url: `${origin.base}/private.tar`, ...withCredentials } },
      ]),
    );
  });

  afterAll(async () => {
    await operator?.stop();
    await agent?.stop();
    removePolicy?.();
    await origin?.close();
    await elsewhere?.close();
    for (const ns of [NS, OTHER_NS]) {
      // The objects first: a later file's operator must find none in a namespace being terminated.
      kubectl(cluster, ['delete', 'prepulledimages', '--all', '-n', ns, '--wait']);
      kubectl(cluster, ['delete', 'namespace', ns, '--wait=false']);
    }
  });

  it('imports from a URL that needs the credential, and sends it to that origin only', async () => {
    await eventually(async () => {
      const p = await getPpi(NS, 'with-credentials');
      expect(stateOf(p, 'private')).toMatchObject({ state: 'Ready' });
      expect(stateOf(p, 'moved')).toMatchObject({ state: 'Ready' });
    }, 240_000);
    expect(origin.requests.some((r) => r.path === '/private.tar' && r.authorization === BASIC)).toBe(true);
    expect(elsewhere.requests.map((r) => r.path)).toContain('/moved.tar');
    expect(elsewhere.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('fails with Unauthorized, saying what to give, without the credential', async () => {
    await eventually(async () => {
      const p = await getPpi(NS, 'without');
      expect(stateOf(p, 'without')).toMatchObject({ state: 'Failed', reason: 'Unauthorized' });
    }, 240_000);
    const state = stateOf(await getPpi(NS, 'without'), 'without');
    expect(state?.message).toContain('HTTP 401');
    expect(state?.message).toContain('tarball.credentialsSecretRef');
  });

  it("never uses another namespace's Secret of that name", async () => {
    // Awaited as a whole: on a busy machine the agent can run the import before the controller
    // has written the copy's verdict, and the first failure then says "not copied yet".
    await eventually(async () => {
      const state = stateOf(await getPpi(OTHER_NS, 'borrowed'), 'borrowed');
      expect(state).toMatchObject({ state: 'Failed', reason: 'CredentialsUnavailable' });
      expect(state?.message).toContain(
        `Secret ${SECRET} (tarball.credentialsSecretRef) in namespace ${OTHER_NS}`,
      );
      expect(state?.message).toContain('does not exist');
    }, 240_000);
  });

  it('shows the password nowhere: status, Events, pod specs, agent and operator logs', () => {
    const texts = {
      status: kubectl(cluster, ['get', 'prepulledimages', '-A', '-o', 'json']).stdout,
      events: kubectl(cluster, ['get', 'events', '-A', '-o', 'json']).stdout,
      pods: kubectl(cluster, ['get', 'pods', '-A', '-o', 'json']).stdout,
      daemonSets: kubectl(cluster, ['get', 'daemonsets', '-A', '-o', 'json']).stdout,
      agentLogs: kubectl(cluster, [
        'logs',
        '-n',
        'prepull-system',
        '-l',
        'app.kubernetes.io/component=agent',
        '--tail=-1',
      ]).stdout,
      operatorLogs: operator.logLines().join('\n'),
    };
    // They are not empty: the checks below look at real text.
    expect(texts.status).toContain(image('private'));
    expect(texts.agentLogs).toContain('imported');
    for (const [where, text] of Object.entries(texts)) {
      for (const form of secretForms) expect(text.includes(form), `${where} shows the password`).toBe(false);
    }
  });

  it('deletes the copy for the node agents once no object names the Secret', async () => {
    const copy = downloadCredentialsCopyName(NS, SECRET);
    const copyOf = () => kubectl(cluster, ['get', 'secret', copy, '-n', 'prepull-system', '-o', 'json']);
    const held = JSON.parse(copyOf().stdout) as { data?: Record<string, string> };
    // Only the Authorization value, nothing else of the source.
    expect(Object.keys(held.data ?? {})).toEqual(['authorization']);
    expect(held.data?.authorization === Buffer.from(BASIC).toString('base64')).toBe(true);
    kubectl(cluster, ['delete', 'prepulledimage', 'with-credentials', '-n', NS, '--wait']);
    // `without` names no Secret; the copy goes with the last object that did.
    await eventually(() => expect(copyOf().stderr).toContain('NotFound'));
    kubectl(cluster, ['delete', 'prepulledimage', 'borrowed', '-n', OTHER_NS, '--wait']);
    await eventually(() =>
      expect(
        kubectl(cluster, [
          'get',
          'secret',
          downloadCredentialsCopyName(OTHER_NS, SECRET),
          '-n',
          'prepull-system',
        ]).stderr,
      ).toContain('NotFound'),
    );
  });
});
