import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseListenAddress, startHealthServer } from './health.ts';

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:8081', { host: '127.0.0.1', port: 8081 }],
    [':8081', { host: undefined, port: 8081 }],
    ['[::1]:0', { host: '[::1]', port: 0 }],
  ])('%s', (address, expected) => {
    expect(parseListenAddress(address)).toEqual(expected);
  });

  it.each(['8081', 'host:', 'host:99999', 'host:x'])('rejects %s', (address) => {
    expect(() => parseListenAddress(address)).toThrowError(/invalid listen address/);
  });
});

describe('startHealthServer', () => {
  let close: (() => void) | undefined;
  afterEach(() => close?.());

  it('serves /healthz, /readyz from the readiness function, and /metrics', async () => {
    let ready = false;
    const metrics = new Registry();
    metrics.setDefaultLabels({ test: 'health' });
    const { server, port } = await startHealthServer({ address: '127.0.0.1:0', ready: () => ready, metrics });
    close = () => server.close();
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(typeof body).toBe('string');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
