/** The cluster's certificates, made with openssl. Reused when already there. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/** A self-signed CA in `dir` (ca.crt, ca.key). */
export function ensureCa(dir: string): KeyPair {
  mkdirSync(dir, { recursive: true });
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  if (!existsSync(ca.cert)) {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
      '-days',
      '3650',
      '-subj',
      '/CN=prepull-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  }
  return ca;
}

/** A certificate signed by `ca`, for a client or a server (with SANs). */
export function issueCertificate(
  ca: KeyPair,
  o: { dir: string; name: string; subject: string; sans?: string[]; usage: 'client' | 'server' },
): KeyPair {
  const pair = { cert: join(o.dir, `${o.name}.crt`), key: join(o.dir, `${o.name}.key`) };
  const csr = join(o.dir, `${o.name}.csr`);
  const ext = join(o.dir, `${o.name}.ext`);
  const lines = [
    `# subject=${o.subject}`,
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${o.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
  ];
  if (o.sans?.length) lines.push(`subjectAltName=${o.sans.join(',')}`);
  const extText = `${lines.join('\n')}\n`;
  // Reused only while what it says is unchanged (a harness that adds a SAN gets a new one).
  if (existsSync(pair.cert) && existsSync(ext) && readFileSync(ext, 'utf8') === extText) return pair;
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    pair.key,
    '-out',
    csr,
    '-subj',
    o.subject,
  ]);
  writeFileSync(ext, extText);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '365',
    '-out',
    pair.cert,
    '-extfile',
    ext,
  ]);
  return pair;
}

/** An RSA key pair for signing service-account tokens. */
export function ensureServiceAccountKey(dir: string): { key: string; pub: string } {
  const key = join(dir, 'sa.key');
  const pub = join(dir, 'sa.pub');
  if (!existsSync(key)) {
    openssl(['genrsa', '-out', key, '2048']);
    openssl(['rsa', '-in', key, '-pubout', '-out', pub]);
  }
  return { key, pub };
}

/** A kubeconfig that authenticates with a client certificate. */
export function writeKubeconfig(
  path: string,
  server: string,
  caCert: string,
  client: KeyPair,
  user: string,
): void {
  writeFileSync(
    path,
    JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'prepull', cluster: { server, 'certificate-authority': caCert } }],
        users: [{ name: user, user: { 'client-certificate': client.cert, 'client-key': client.key } }],
        contexts: [{ name: 'prepull', context: { cluster: 'prepull', user } }],
        'current-context': 'prepull',
      },
      null,
      2,
    ),
  );
}
