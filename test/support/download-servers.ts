/**
 * HTTP and HTTPS servers that tarball downloads of the node agent reach: they
 * listen on the node's address on the pod bridge (what a pod reaches the node
 * at), HTTPS with a certificate for that address from a CA of the test's own,
 * whose PEM the agent is given (startNodeAgent's downloadCa). Each server
 * counts its requests and keeps their Authorization headers.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { ensureCa, issueCertificate } from '../harness/pki.ts';

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

export interface DownloadServer {
  /** `https://<address>:<port>` (or http). */
  base: string;
  /** Requests so far: path and Authorization header (undefined when none). */
  requests: { path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

export interface DownloadCa {
  /** The CA's certificate, PEM. */
  pem: string;
  tls: { cert: Buffer; key: Buffer };
}

/** A CA and a serving certificate for `address`, under `dir`. */
export function downloadCa(dir: string, address: string): DownloadCa {
  const pki = join(dir, 'download-pki');
  mkdirSync(pki, { recursive: true });
  const ca = ensureCa(pki);
  const serving = issueCertificate(ca, {
    dir: pki,
    name: 'downloads',
    subject: `/CN=${address}`,
    sans: [`IP:${address}`],
    usage: 'server',
  });
  return {
    pem: readFileSync(ca.cert, 'utf8'),
    tls: { cert: readFileSync(serving.cert), key: readFileSync(serving.key) },
  };
}

/** Starts a server on `address` (a free port) answering with `route`; HTTPS with `tls`. */
export async function startDownloadServer(
  address: string,
  route: Route,
  tls?: DownloadCa['tls'],
): Promise<DownloadServer> {
  const requests: DownloadServer['requests'] = [];
  const handler: Route = (req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
    route(req, res);
  };
  const server: Server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    base: `${tls ? 'https' : 'http'}://${address}:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An endless body, bounded on this side at `limit` bytes; `sent()` says how much went out. */
export function endlessBody(limit: number): { route: Route; sent(): number } {
  let sent = 0;
  return {
    sent: () => sent,
    route: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-tar' });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (sent < limit) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    },
  };
}
