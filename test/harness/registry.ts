/**
 * A private OCI registry on loopback: Debian's docker-registry with TLS from
 * the cluster CA and an htpasswd (bcrypt) password, so pulls need credentials
 * exactly as from a real private registry.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { issueCertificate, type KeyPair } from './pki.ts';
import { startProcess, stopProcess, waitUntilReady } from './process.ts';

export interface Registry {
  host: string;
  username: string;
  password: string;
  caFile: string;
  stop(): Promise<void>;
}

export const REGISTRY_USER = 'prepull';

/** The status of GET /v2/ without credentials: 401 once the registry serves. */
function probe(host: string, caFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`https://${host}/v2/`, { ca: readFileSync(caFile), timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Starts the registry under `<dir>/registry`; resolves once it answers. */
export async function startRegistry(o: {
  dir: string;
  port: number;
  ca: KeyPair;
  password?: string;
}): Promise<Registry> {
  const base = join(o.dir, 'registry');
  mkdirSync(join(base, 'storage'), { recursive: true });
  const host = `127.0.0.1:${o.port}`;
  const cert = issueCertificate(o.ca, {
    dir: base,
    name: 'registry',
    subject: '/CN=prepull-test-registry',
    sans: ['IP:127.0.0.1', 'DNS:localhost'],
    usage: 'server',
  });
  const password = o.password ?? randomBytes(12).toString('hex');
  writeHtpasswd(base, password);
  writeFileSync(
    join(base, 'config.yml'),
    `version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: ${join(base, 'storage')}
  delete:
    enabled: true
http:
  addr: ${host}
  tls:
    certificate: ${cert.cert}
    key: ${cert.key}
auth:
  htpasswd:
    realm: prepull-test
    path: ${join(base, 'htpasswd')}
`,
  );
  const registry = startProcess(
    'registry',
    '/usr/bin/docker-registry',
    ['serve', join(base, 'config.yml')],
    join(o.dir, 'logs'),
  );
  await waitUntilReady(registry, 'registry', async () => (await probe(host, o.ca.cert)) === 401, 30_000);
  return { host, username: REGISTRY_USER, password, caFile: o.ca.cert, stop: () => stopProcess(registry) };
}

/**
 * Replaces the registry's password; the registry re-reads htpasswd on change,
 * which is how a rotation looks from the cluster's side.
 */
export function writeHtpasswd(registryDir: string, password: string): void {
  const line = execFileSync('htpasswd', ['-Bbn', REGISTRY_USER, password], { encoding: 'utf8' });
  writeFileSync(join(registryDir, 'htpasswd'), line);
}

/** One request to the registry with basic auth; bounded in time. */
function registryRequest(
  registry: Omit<Registry, 'stop'>,
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ status: number; location?: string; text: string }> {
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
  return new Promise((resolve, reject) => {
    const req = request(
      url.startsWith('https://') ? url : `https://${registry.host}${url}`,
      {
        method,
        ca: readFileSync(registry.caFile),
        timeout: 30_000,
        headers: {
          authorization: `Basic ${auth}`,
          ...headers,
          ...(body ? { 'content-length': body.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(res.headers.location ? { location: res.headers.location } : {}),
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Uploads a blob (monolithic upload) unless the repository has it. */
export async function pushBlob(
  registry: Omit<Registry, 'stop'>,
  repo: string,
  data: Buffer,
): Promise<string> {
  const digest = digestOf(data);
  const head = await registryRequest(registry, 'HEAD', `/v2/${repo}/blobs/${digest}`);
  if (head.status === 200) return digest;
  const started = await registryRequest(registry, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (started.status !== 202 || !started.location)
    throw new Error(`starting an upload to ${repo}: ${started.status} ${started.text}`);
  const location = new URL(started.location, `https://${registry.host}`);
  location.searchParams.set('digest', digest);
  const put = await registryRequest(
    registry,
    'PUT',
    location.toString(),
    { 'content-type': 'application/octet-stream' },
    data,
  );
  if (put.status !== 201) throw new Error(`uploading ${digest} to ${repo}: ${put.status} ${put.text}`);
  return digest;
}

/** Puts a manifest or index under `reference` (a tag or digest); returns its digest, what the kubelet reports. */
export async function pushManifest(
  registry: Omit<Registry, 'stop'>,
  repo: string,
  reference: string,
  mediaType: string,
  data: Buffer,
): Promise<string> {
  const put = await registryRequest(
    registry,
    'PUT',
    `/v2/${repo}/manifests/${reference}`,
    { 'content-type': mediaType },
    data,
  );
  if (put.status !== 201) throw new Error(`putting manifest ${repo}:${reference}: ${put.status} ${put.text}`);
  return digestOf(data);
}
