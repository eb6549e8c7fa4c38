/**
 * The operator's HTTP endpoints: /healthz (the process serves), /readyz (it is
 * connected and ready to reconcile) and /metrics (Prometheus).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthServerOptions {
  /** `host:port`; `:8081` listens on every address. */
  address: string;
  /** Readiness, asked on every /readyz. */
  ready: () => boolean;
  metrics: Registry;
}

/** Parses `host:port` or `:port`. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(':');
  const digits = address.slice(colon + 1);
  const port = Number(digits);
  if (colon < 0 || !/^[0-9]+$/.test(digits) || port > 65535) {
    throw new Error(`invalid listen address ${JSON.stringify(address)}: want host:port or :port`);
  }
  const host = address.slice(0, colon);
  return { host: host === '' ? undefined : host, port };
}

/** Starts the server; resolves once it listens, with the bound port. */
export async function startHealthServer(
  options: HealthServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = options.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok\n' : 'not ready\n');
    } else if (path === '/metrics') {
      options.metrics.metrics().then(
        (body) => res.writeHead(200, { 'content-type': options.metrics.contentType }).end(body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  const { host, port } = parseListenAddress(options.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  return { server, port: typeof bound === 'object' && bound ? bound.port : port };
}
