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

/** Pushes a docker archive to `ref` on the registry with skopeo; returns the manifest digest it serves. */
export function pushArchive(
  registry: Omit<Registry, 'stop'>,
  archive: string,
  ref: string,
  certDir: string,
): string {
  mkdirSync(certDir, { recursive: true });
  writeFileSync(join(certDir, 'ca.crt'), readFileSync(registry.caFile));
  const creds = `${registry.username}:${registry.password}`;
  // Bounded: a stuck registry call must fail the start-up, not hang it.
  execFileSync(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--dest-creds',
      creds,
      '--dest-cert-dir',
      certDir,
      `docker-archive:${archive}`,
      `docker://${ref}`,
    ],
    { stdio: 'pipe', timeout: 60_000 },
  );
  // The digest of the manifest bytes the registry serves for the tag: what the kubelet reports as imageID.
  const manifest = execFileSync(
    'skopeo',
    ['inspect', '--raw', '--creds', creds, '--cert-dir', certDir, `docker://${ref}`],
    { timeout: 60_000 },
  );
  return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
}
