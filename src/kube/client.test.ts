import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, RequestTimeoutError } from './client.ts';
import { loadKubeConfig } from './config.ts';
import { ApiError, isForbidden, isNamespaceTerminating } from './errors.ts';
import { Resources } from './resources.ts';

/** A local API server that hangs: it never answers, or answers headers and never the body. */
describe('KubeClient request deadlines', () => {
  let server: Server;
  let kubeconfig = '';
  const codes: string[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prepull-client-'));
    // client-node speaks https only; a throwaway self-signed certificate.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
    const tls = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
    server = createServer(tls, (req, res) => {
      if (req.url?.includes('/namespaces/going')) {
        // What NamespaceLifecycle answers for new content in a namespace being deleted.
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            message:
              'leases.coordination.k8s.io "lease" is forbidden: unable to create new content in namespace going because it is being terminated',
            reason: 'Forbidden',
            details: {
              name: 'lease',
              kind: 'leases',
              causes: [
                { reason: 'NamespaceTerminating', type: 'NamespaceTerminating', field: 'metadata.namespace' },
              ],
            },
            code: 403,
          }),
        );
        return;
      }
      if (req.url?.includes('/namespaces/quiet')) {
        // A watch the server sends no bookmarks on: one event, a long quiet, one more.
        const event = (rv: string) =>
          `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: rv, resourceVersion: rv } } })}\n`;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(event('1'));
        setTimeout(() => res.end(event('2')), 1_000);
        return;
      }
      if (req.url?.includes('/namespaces/headers-only')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"kind":');
      }
      // Otherwise: no answer at all.
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    kubeconfig = join(dir, 'config');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'hang',
            cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true },
          },
        ],
        users: [{ name: 'u', user: {} }],
        contexts: [{ name: 'c', context: { cluster: 'hang', user: 'u' } }],
        'current-context': 'c',
      }),
    );
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = () =>
    new KubeClient(loadKubeConfig(kubeconfig), {
      requestTimeoutMs: 200,
      observe: (_verb, code) => codes.push(code),
    });

  it('gives up on a request that gets no answer', async () => {
    await expect(client().get(Resources.leases, 'lease', 'silent')).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    expect(codes).toContain('timeout');
  });

  it('gives up on an answer whose body never ends', async () => {
    await expect(client().get(Resources.leases, 'lease', 'headers-only')).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
  });

  it("keeps the causes of the server's Status: a namespace being deleted is told from any other 403", async () => {
    const err = await client()
      .get(Resources.leases, 'lease', 'going')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).causes).toEqual(['NamespaceTerminating']);
    expect(isForbidden(err)).toBe(true);
    expect(isNamespaceTerminating(err)).toBe(true);
    expect(isNamespaceTerminating(new ApiError(403, 'Forbidden', 'quota', 'create'))).toBe(false);
  });

  it('keeps a watch whose stream is quiet for longer than the connection pool allows a body to be', async () => {
    // The pool client-node builds, with undici's body timeout (5 minutes by default) cut to 250 ms.
    const kc = loadKubeConfig(kubeconfig);
    Object.assign(kc, {
      createDispatcher: () => new Agent({ bodyTimeout: 250, connect: { rejectUnauthorized: false } }),
    });
    const pooled = new KubeClient(kc, { requestTimeoutMs: 200 });
    const names: string[] = [];
    for await (const event of pooled.watch(
      Resources.configMaps,
      { namespace: 'quiet', resourceVersion: '1' },
      new AbortController().signal,
    )) {
      names.push(event.object.metadata.name ?? '');
    }
    expect(names).toEqual(['1', '2']);
  });

  it('gives up on a watch whose response never starts', async () => {
    const watch = client().watch(
      Resources.leases,
      { namespace: 'silent', resourceVersion: '1' },
      new AbortController().signal,
    );
    await expect(watch.next()).rejects.toBeInstanceOf(RequestTimeoutError);
  });
});
