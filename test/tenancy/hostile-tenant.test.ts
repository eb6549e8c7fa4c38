/**
 * A hostile tenant on the real API server and node. The tenant is a user with
 * only what a team gets: Kubernetes' own `admin` role in its namespace (which
 * deploy/user-roles.yaml extends to PrePulledImages), tested by impersonation.
 * It tries to reach beyond its namespace through Prepull; each attempt is
 * refused at apply time or reported in its own object's status, and nothing of
 * the other team's, nor on the node, changes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PrePulledImage } from '../../src/api/prepulledimage.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import type { Pod } from '../../src/kube/objects.ts';
import { Resources } from '../../src/kube/resources.ts';
import { applyImportPolicy, type NodeAgent, startNodeAgent } from '../support/agent.ts';
import {
  type DownloadServer,
  downloadCa,
  endlessBody,
  startDownloadServer,
} from '../support/download-servers.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { startTestOperator, type TestOperator } from '../support/operator.ts';
import { getPrePulledImage } from '../support/prepulledimage.ts';

const cluster = inject('cluster');
const node = cluster.node!;
const run = randomBytes(3).toString('hex');
const TENANT = `tenant-a-${run}`;
const ATTACKER_NS = `team-a-${run}`;
const VICTIM_NS = `team-b-${run}`;
const SOURCE_NS = `creds-${run}`;
const COPY = 'team-b-pull';
const userRoles = join(import.meta.dirname, '..', '..', 'deploy', 'user-roles.yaml');
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
/** The node directory the admin lets each team import its own archives from: `<archives>/<namespace>/`. */
const archives = join(cluster.dir, `tenant-archives-${run}`);
const PAUSE = 'registry.k8s.io/pause:prepull';
/** The node agent's download cap in this tier: an endless body stops here. */
const DOWNLOAD_CAP = 4 << 20;
/** What the internal service answers: it must never reach the tenant. */
const INTERNAL_TEXT = `INTERNAL-ANSWER-${run}`;

/** Every blob in the node's content store. */
function nodeContent(): Set<string> {
  const out = execFileSync(
    node.ctr,
    ['--address', node.containerdSocket, '-n', 'k8s.io', 'content', 'ls', '-q'],
    { encoding: 'utf8' },
  );
  return new Set(out.split('\n').filter(Boolean));
}

/** Files in the node agent's download directory (its `work` emptyDir), as the node holds them. */
function agentDownloads(): string[] {
  const uids = kubectl(cluster, [
    'get',
    'pods',
    '-n',
    'prepull-system',
    '-l',
    'app.kubernetes.io/component=agent',
    '-o',
    'jsonpath={.items[*].metadata.uid}',
  ]).stdout.split(' ');
  return uids.filter(Boolean).flatMap((uid) => {
    const work = join(
      cluster.dir,
      'node',
      'kubelet',
      'pods',
      uid,
      'volumes',
      'kubernetes.io~empty-dir',
      'work',
    );
    expect(existsSync(work), work).toBe(true);
    return readdirSync(work);
  });
}

/** The image IDs of every name in the node's containerd: what an import could replace. */
function nodeImages(): string {
  return execFileSync(node.ctr, ['--address', node.containerdSocket, '-n', 'k8s.io', 'images', 'ls'], {
    encoding: 'utf8',
  })
    .split('\n')
    .map((line) => line.split(/\s+/).slice(0, 3).join(' '))
    .sort()
    .join('\n');
}

/** kubectl as the tenant. */
const asTenant = (args: string[], input?: string) => kubectl(cluster, ['--as', TENANT, ...args], input);

function ppi(name: string, namespace: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'prepull.dev/v1alpha1', kind: 'PrePulledImage', metadata: { name, namespace }, spec };
}

/** The tenant's server-side apply; its result, never a throw. */
function tenantApplies(object: object) {
  return asTenant(['apply', '--server-side', '--field-manager=tenant', '-f', '-'], JSON.stringify(object));
}

const condition = (p: PrePulledImage, type: string) => p.status?.conditions?.find((c) => c.type === type);
const onTheRealNode = { nodeSelector: { 'kubernetes.io/hostname': node.name } };

/** What the other team has, as a cluster admin sees it: its secrets' data and its object's status. */
async function victimState() {
  const secrets = JSON.parse(kubectl(cluster, ['get', 'secrets', '-n', VICTIM_NS, '-o', 'json']).stdout) as {
    items: { metadata: { name: string }; data?: Record<string, string> }[];
  };
  return {
    secrets: Object.fromEntries(secrets.items.map((s) => [s.metadata.name, s.data])),
    ready: (await getPrePulledImage(client, VICTIM_NS, 'victim')).status?.ready,
  };
}

describe('a hostile tenant, with `admin` in its own namespace only', () => {
  let operator: TestOperator;
  let agent: NodeAgent | undefined;
  let removePolicy: (() => void) | undefined;
  let before: Awaited<ReturnType<typeof victimState>>;
  let imagesBefore: string;
  /** The URL the admin lets the tenant download from, an internal service, and a plain-http one. */
  let allowed: DownloadServer;
  let internal: DownloadServer;
  let plain: DownloadServer;
  const endless = endlessBody(64 << 20);

  beforeAll(async () => {
    expect(kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']).status).toBe(0);
    const roles = kubectl(cluster, ['apply', '--server-side', '-f', userRoles]);
    expect(roles.status, roles.stderr).toBe(0);
    for (const ns of [ATTACKER_NS, VICTIM_NS, SOURCE_NS]) kubectl(cluster, ['create', 'namespace', ns]);
    // The tenant's namespace is as strict as Pod Security goes.
    kubectl(cluster, ['label', 'namespace', ATTACKER_NS, 'pod-security.kubernetes.io/enforce=restricted']);
    const binding = kubectl(cluster, [
      'create',
      'rolebinding',
      'team-a-admin',
      '-n',
      ATTACKER_NS,
      '--clusterrole=admin',
      `--user=${TENANT}`,
    ]);
    expect(binding.status, binding.stderr).toBe(0);
    // The other team's credential, copied into its namespace only, and its object on the node.
    const secret = kubectl(cluster, [
      'create',
      'secret',
      'docker-registry',
      'source',
      '-n',
      SOURCE_NS,
      '--docker-server=registry.example.com',
      '--docker-username=team-b',
      `--docker-password=${randomBytes(12).toString('hex')}`,
    ]);
    expect(secret.status, secret.stderr).toBe(0);
    serverSideApply(cluster, {
      apiVersion: 'prepull.dev/v1alpha1',
      kind: 'RegistryCredential',
      metadata: { name: `team-b-${run}` },
      spec: {
        source: { secretRef: { namespace: SOURCE_NS, name: 'source' } },
        target: { secretName: COPY, namespaces: [VICTIM_NS] },
      },
    });
    serverSideApply(
      cluster,
      ppi('victim', VICTIM_NS, { images: [{ image: node.agentImage }], ...onTheRealNode }),
    );
    // The tenant's download server, which the admin trusts, turned hostile: each
    // of its archives leads elsewhere. The internal service is https with the same
    // CA, so that only the import policy stands between it and the agent.
    const ca = downloadCa(archives, node.podGateway);
    internal = await startDownloadServer(
      node.podGateway,
      (_req, res) => res.writeHead(200).end(INTERNAL_TEXT),
      ca.tls,
    );
    plain = await startDownloadServer(node.podGateway, (_req, res) => res.writeHead(200).end(INTERNAL_TEXT));
    allowed = await startDownloadServer(
      node.podGateway,
      (req, res) => {
        if (req.url === '/archives/internal.tar')
          return res.writeHead(302, { location: `${internal.base}/api/v1/secrets` }).end();
        if (req.url === '/archives/downgrade.tar')
          return res.writeHead(302, { location: `${plain.base}/archives/app.tar` }).end();
        if (req.url === '/archives/endless.tar') return endless.route(req, res);
        res.writeHead(404).end();
      },
      ca.tls,
    );
    // The admin's import policy: each team imports its own names, from its own
    // directory; the tenant also from its download server's /archives/.
    mkdirSync(join(archives, ATTACKER_NS), { recursive: true });
    agent = await startNodeAgent(cluster, {
      archiveDirectories: [archives],
      downloadCa: ca.pem,
      args: [`--max-download-bytes=${DOWNLOAD_CAP}`],
    });
    removePolicy = applyImportPolicy(cluster, [
      {
        namespaces: [ATTACKER_NS, VICTIM_NS],
        images: ['prepull.local/{namespace}/**'],
        hostPaths: [`${archives}/{namespace}/`],
      },
      {
        namespaces: [ATTACKER_NS],
        images: ['prepull.local/{namespace}/**'],
        urls: [`${allowed.base}/archives/`],
      },
    ]);
    imagesBefore = nodeImages();
    operator = startTestOperator(cluster, `hostile-tenant-${run}`);
    await eventually(async () => {
      expect(kubectl(cluster, ['get', 'secret', COPY, '-n', VICTIM_NS]).status).toBe(0);
      const victim = await getPrePulledImage(client, VICTIM_NS, 'victim');
      expect(condition(victim, 'Ready')?.status).toBe('True');
    }, 120_000);
    before = await victimState();
  });

  afterAll(async () => {
    await operator?.stop();
    removePolicy?.();
    await agent?.stop();
    for (const server of [allowed, internal, plain]) await server?.close();
    kubectl(cluster, ['delete', 'registrycredential', `team-b-${run}`, '--wait=false']);
    for (const ns of [ATTACKER_NS, VICTIM_NS, SOURCE_NS]) {
      // The objects first: a later file's operator must find none in a namespace being terminated.
      kubectl(cluster, ['delete', 'prepulledimages', '--all', '-n', ns, '--wait']);
      kubectl(cluster, ['delete', 'namespace', ns, '--wait=false']);
    }
  });

  it('may manage PrePulledImages in its namespace, and nothing of Prepull beyond it', () => {
    const can = (verb: string, resource: string, namespace?: string) =>
      asTenant(['auth', 'can-i', verb, resource, ...(namespace ? ['-n', namespace] : [])]).stdout.trim();
    expect(can('create', 'prepulledimages.prepull.dev', ATTACKER_NS)).toBe('yes');
    expect(can('create', 'prepulledimages.prepull.dev', VICTIM_NS)).toBe('no');
    const statusWrite = ['auth', 'can-i', 'patch', 'prepulledimages.prepull.dev', '--subresource=status'];
    expect(asTenant([...statusWrite, '-n', ATTACKER_NS]).stdout.trim()).toBe('no');
    expect(can('create', 'registrycredentials.prepull.dev')).toBe('no');
    expect(can('get', 'secrets', VICTIM_NS)).toBe('no');
  });

  it("gets no copy of another team's RegistryCredential by naming it", async () => {
    const applied = tenantApplies(
      ppi('steal', ATTACKER_NS, {
        images: [{ image: node.agentImage }],
        registryCredentials: [{ name: `team-b-${run}` }],
        ...onTheRealNode,
      }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      const p = await getPrePulledImage(client, ATTACKER_NS, 'steal');
      expect(p.status?.observedGeneration).toBe(p.metadata.generation);
      expect(condition(p, 'CredentialsResolved')).toMatchObject({
        status: 'False',
        reason: 'RegistryCredentialNotAllowed',
      });
      // Its own images still come: the refusal costs the tenant nothing else.
      expect(condition(p, 'Ready')?.status).toBe('True');
    }, 120_000);
    expect(kubectl(cluster, ['get', 'secret', COPY, '-n', ATTACKER_NS]).stderr).toContain('NotFound');
    const rc = JSON.parse(
      kubectl(cluster, ['get', 'registrycredential', `team-b-${run}`, '-o', 'json']).stdout,
    );
    expect(JSON.stringify(rc.status)).not.toContain(ATTACKER_NS);
  });

  it("changes nothing of another team's object with forged puller pods in its namespace", async () => {
    // The strongest forgery: every label and annotation of the victim's real
    // puller pod, its owner's UID included, on a pod the tenant may create.
    const [victimPod] = (await client.list<Pod>(Resources.pods, { namespace: VICTIM_NS })).items.filter((p) =>
      p.metadata?.name?.startsWith('ppi-victim-'),
    );
    expect(victimPod).toBeDefined();
    const forged = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'ppi-victim-forged',
        namespace: ATTACKER_NS,
        labels: victimPod!.metadata?.labels,
        annotations: victimPod!.metadata?.annotations,
      },
      spec: {
        nodeName: node.name,
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            // What the kubelet says about it (a failed pull naming it) would reach the victim's status if counted.
            name: victimPod!.spec?.containers[0]?.name ?? 'image-0',
            image: 'registry.invalid/forged-by-team-a:v1',
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    };
    const created = asTenant(['create', '-f', '-'], JSON.stringify(forged));
    expect(created.status, created.stderr).toBe(0);
    await eventually(() => {
      const reason = kubectl(cluster, [
        'get',
        'pod',
        'ppi-victim-forged',
        '-n',
        ATTACKER_NS,
        '-o',
        'jsonpath={.status.containerStatuses[0].state.waiting.reason}',
      ]).stdout;
      expect(reason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
    }, 120_000);
    // The victim's team changes its object now, so its status is surely
    // computed with the forged pod in the controller's cache, and reads true.
    serverSideApply(
      cluster,
      ppi('victim', VICTIM_NS, {
        images: [{ image: node.agentImage }, { image: 'registry.k8s.io/pause:prepull' }],
        ...onTheRealNode,
      }),
    );
    await eventually(async () => {
      const victim = await getPrePulledImage(client, VICTIM_NS, 'victim');
      expect(victim.status?.observedGeneration).toBe(victim.metadata.generation);
      expect(victim.status?.ready).toBe(before.ready);
      expect(condition(victim, 'Ready')?.status).toBe('True');
    }, 120_000);
    const victim = await getPrePulledImage(client, VICTIM_NS, 'victim');
    expect(JSON.stringify(victim.status)).not.toContain('forged-by-team-a');
    const events = kubectl(cluster, ['events', '-n', VICTIM_NS, '--for', 'PrePulledImage/victim']).stdout;
    expect(events).not.toContain('forged-by-team-a');
  });

  it('gets a preempting priority class reported, and no pod', async () => {
    const applied = tenantApplies(
      ppi('critical', ATTACKER_NS, {
        images: [{ image: node.agentImage }],
        priorityClassName: 'system-node-critical',
        ...onTheRealNode,
      }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      const p = await getPrePulledImage(client, ATTACKER_NS, 'critical');
      expect(condition(p, 'Degraded')).toMatchObject({ status: 'True', reason: 'PriorityClassNotAllowed' });
    });
    expect(await client.get(Resources.daemonSets, 'ppi-critical', ATTACKER_NS)).toBeUndefined();
  });

  it('is refused at apply time for what the schema bounds', () => {
    const refusals: [string, Record<string, unknown>, RegExp][] = [
      ['a refresh timer past Node’s limit', { refresh: { interval: '1000h' } }, /at most 720h/],
      ['requests far above the cap', { resources: { requests: { cpu: '64' } } }, /cpu/],
    ];
    for (const [what, spec, message] of refusals) {
      const applied = tenantApplies(
        ppi('bounded', ATTACKER_NS, { images: [{ image: node.agentImage }], ...spec }),
      );
      expect(applied.status, what).not.toBe(0);
      expect(applied.stderr, what).toMatch(message);
    }
  });

  it('gets what only the controller can judge reported as InvalidSpec, and no DaemonSet', async () => {
    // CEL compares the text; one image under two names is the controller's check.
    const applied = tenantApplies(
      ppi('twice', ATTACKER_NS, {
        images: [{ image: 'nginx' }, { image: 'docker.io/library/nginx:latest' }],
        ...onTheRealNode,
      }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      const p = await getPrePulledImage(client, ATTACKER_NS, 'twice');
      const invalid = p.status?.conditions?.find((c) => c.reason === 'InvalidSpec');
      expect(invalid?.message).toContain('are the same image (docker.io/library/nginx:latest)');
    });
    expect(await client.get(Resources.daemonSets, 'ppi-twice', ATTACKER_NS)).toBeUndefined();
  });

  it("cannot import over the agent image, the sandbox image or another team's image", async () => {
    const archive = { hostPath: `${archives}/${ATTACKER_NS}/evil.tar` };
    const targets = {
      agent: node.agentImage,
      pause: PAUSE,
      neighbour: `prepull.local/${VICTIM_NS}/app@sha256:${'0'.repeat(64)}`,
    };
    for (const [name, image] of Object.entries(targets)) {
      const applied = tenantApplies(
        ppi(`over-${name}`, ATTACKER_NS, { images: [{ image, tarball: archive }], ...onTheRealNode }),
      );
      expect(applied.status, applied.stderr).toBe(0);
    }
    for (const name of Object.keys(targets)) {
      await eventually(async () => {
        const p = await getPrePulledImage(client, ATTACKER_NS, `over-${name}`);
        expect(condition(p, 'Ready')).toMatchObject({ status: 'False', reason: 'ImportNotAllowed' });
      });
      // Refused before any pod work: nothing ran on the node for it.
      expect(await client.get(Resources.daemonSets, `ppi-over-${name}`, ATTACKER_NS)).toBeUndefined();
    }
  });

  it('cannot leave its archive directory, and a FIFO there blocks nothing', async () => {
    const traversal = tenantApplies(
      ppi('escape', ATTACKER_NS, {
        images: [
          {
            image: `prepull.local/${ATTACKER_NS}/escape:v1`,
            tarball: { hostPath: `${archives}/${ATTACKER_NS}/../${VICTIM_NS}/app.tar` },
          },
        ],
        ...onTheRealNode,
      }),
    );
    expect(traversal.status).not.toBe(0);
    expect(traversal.stderr).toMatch(/\.\./);
    // A FIFO where the tenant's archive should be (the tenant cannot make one on a node; say a
    // workload of theirs did): the import reports it instead of blocking on it.
    const fifo = join(archives, ATTACKER_NS, 'fifo.tar');
    execFileSync('mkfifo', [fifo]);
    const image = `prepull.local/${ATTACKER_NS}/fifo:v1`;
    const applied = tenantApplies(
      ppi('fifo', ATTACKER_NS, { images: [{ image, tarball: { hostPath: fifo } }], ...onTheRealNode }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    await eventually(async () => {
      const p = await getPrePulledImage(client, ATTACKER_NS, 'fifo');
      expect(JSON.stringify(p.status)).toContain('NotRegularFile');
    }, 120_000);
  });

  it('gets a redirect to an internal address, a downgrade to http and an endless body, from a URL the admin allows, refused', async () => {
    const contentBefore = nodeContent();
    const cases = {
      internal: 'RedirectRefused',
      downgrade: 'RedirectRefused',
      endless: 'DownloadTooLarge',
    } as const;
    const image = (name: string) => `prepull.local/${ATTACKER_NS}/${name}:v1`;
    const applied = tenantApplies(
      ppi('downloads', ATTACKER_NS, {
        images: Object.keys(cases).map((name) => ({
          image: image(name),
          tarball: { url: `${allowed.base}/archives/${name}.tar` },
        })),
        ...onTheRealNode,
      }),
    );
    expect(applied.status, applied.stderr).toBe(0);
    let status = '';
    await eventually(async () => {
      const p = await getPrePulledImage(client, ATTACKER_NS, 'downloads');
      const states = p.status?.nodes?.find((n) => n.name === node.name)?.images ?? [];
      for (const [name, reason] of Object.entries(cases)) {
        expect(
          states.find((s) => s.image === image(name)),
          name,
        ).toMatchObject({ state: 'Failed', reason });
      }
      status = JSON.stringify(p.status);
    }, 180_000);
    const states = JSON.parse(status).nodes[0].images as { image: string; message: string }[];
    const message = (name: string) => states.find((s) => s.image === image(name))?.message ?? '';
    expect(message('internal')).toContain('which the import policy does not allow');
    expect(message('downgrade')).toContain('from https to http');
    expect(message('endless')).toContain(`limit of ${DOWNLOAD_CAP} bytes`);
    // The internal service and the plain one were never even asked; the endless body was cut short.
    expect(internal.requests).toEqual([]);
    expect(plain.requests).toEqual([]);
    expect(endless.sent()).toBeLessThan(64 << 20);
    expect(status).not.toContain(INTERNAL_TEXT);
    const events = kubectl(cluster, ['get', 'events', '-n', ATTACKER_NS, '-o', 'json']).stdout;
    expect(events).not.toContain(INTERNAL_TEXT);
    // Nothing landed on the node: no image, no new blob, no download left in the agent's directory.
    for (const name of Object.keys(cases)) expect(nodeImages()).not.toContain(image(name));
    expect([...nodeContent()].filter((blob) => !contentBefore.has(blob))).toEqual([]);
    expect(agentDownloads()).toEqual([]);
  });

  it('changed no image on the node', () => {
    expect(nodeImages()).toBe(imagesBefore);
  });

  it("left the other team's secrets and object as they were", async () => {
    expect(await victimState()).toEqual(before);
  });
});
