/**
 * A second registry that wants bearer tokens: Debian's docker-registry with
 * `auth: token`, and distribution's own token server (contrib/token-server,
 * built by build.sh) issuing the JWTs for htpasswd users. Both serve TLS from
 * the cluster CA. Started only by the tiers that ask for it, so no other tier
 * pays for it. The token server grants a user only the repositories under
 * `<user>/`, so images live under `prepull/`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { cachedBinDir } from './cluster.ts';
import { issueCertificate, type KeyPair } from './pki.ts';
import { startProcess, stopProcess, waitUntilReady } from './process.ts';
import { REGISTRY_USER, writeHtpasswd } from './registry.ts';

export interface TokenRegistry {
  /** host:port of the registry. */
  host: string;
  /** The token realm the registry names in its challenges. */
  realm: string;
  /** The service name the registry names, and the token server writes as the audience. */
  service: string;
  username: string;
  password: string;
  caFile: string;
  /** The token server's log: one `get token complete` line per token issued. */
  tokenServerLog: string;
  stop(): Promise<void>;
}

const ISSUER = 'prepull-test-token-issuer';
const SERVICE = 'prepull-token-registry';

function status(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Starts the token server and the registry under `<dir>/token-registry`; resolves once both answer. */
export async function startTokenRegistry(o: {
  dir: string;
  registryPort: number;
  tokenServerPort: number;
  ca: KeyPair;
}): Promise<TokenRegistry> {
  const base = join(o.dir, 'token-registry');
  const logDir = join(base, 'logs');
  mkdirSync(join(base, 'storage'), { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const host = `127.0.0.1:${o.registryPort}`;
  const realm = `https://127.0.0.1:${o.tokenServerPort}/token/`;
  const serving = issueCertificate(o.ca, {
    dir: base,
    name: 'serving',
    subject: '/CN=prepull-test-token-registry',
    sans: ['IP:127.0.0.1', 'DNS:localhost'],
    usage: 'server',
  });
  // The token signing key, and a certificate of it: the registry trusts tokens signed by this key only.
  const signingKey = join(base, 'signing.key');
  const signingCert = join(base, 'signing.crt');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', signingKey], {
    stdio: 'pipe',
  });
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-x509',
      '-key',
      signingKey,
      '-out',
      signingCert,
      '-days',
      '30',
      '-subj',
      '/CN=token-signer',
    ],
    { stdio: 'pipe' },
  );
  const password = randomBytes(12).toString('hex');
  writeHtpasswd(base, password);

  const tokenServer = startProcess(
    'token-server',
    join(cachedBinDir('tokenserver'), 'token-server'),
    [
      `-addr=127.0.0.1:${o.tokenServerPort}`,
      `-realm=${realm}`,
      `-passwd=${join(base, 'htpasswd')}`,
      `-key=${signingKey}`,
      `-issuer=${ISSUER}`,
      `-tlscert=${serving.cert}`,
      `-tlskey=${serving.key}`,
    ],
    logDir,
  );
  writeFileSync(
    join(base, 'config.yml'),
    `version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: ${join(base, 'storage')}
http:
  addr: ${host}
  tls:
    certificate: ${serving.cert}
    key: ${serving.key}
auth:
  token:
    realm: ${realm}
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${signingCert}
`,
  );
  const registry = startProcess(
    'token-registry',
    '/usr/bin/docker-registry',
    ['serve', join(base, 'config.yml')],
    logDir,
  );
  const stop = async () => {
    await stopProcess(registry);
    await stopProcess(tokenServer);
  };
  try {
    const ca = readFileSync(o.ca.cert);
    // Without credentials the token server challenges (401), the registry too.
    await waitUntilReady(tokenServer, 'token-server', async () => (await status(realm, ca)) === 401, 30_000);
    await waitUntilReady(
      registry,
      'token registry',
      async () => (await status(`https://${host}/v2/`, ca)) === 401,
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host,
    realm,
    service: SERVICE,
    username: REGISTRY_USER,
    password,
    caFile: o.ca.cert,
    tokenServerLog: tokenServer.logFile,
    stop,
  };
}
