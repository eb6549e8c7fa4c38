import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { KubeClient } from '../../kube/client.ts';
import { ApiError } from '../../kube/errors.ts';
import type { Secret } from '../../kube/objects.ts';
import { type RegistryClient, RegistryUnavailableError } from '../../registry/index.ts';
import { FakeClock } from '../../runtime/clock.ts';
import { createRegistryChecks } from './registry-checks.ts';

const IMAGE = 'registry.example.com/team/app:v1';
const DIGEST = `sha256:${'a'.repeat(64)}`;

const ppi: PrePulledImage = {
  apiVersion: 'prepull.dev/v1alpha1',
  kind: 'PrePulledImage',
  metadata: { name: 'app', namespace: 'team', uid: 'u1', generation: 1 },
  spec: { images: [{ image: IMAGE }], imagePullSecrets: [{ name: 'pull' }], refresh: { interval: '1m' } },
};

const pullSecret: Secret = {
  metadata: { name: 'pull', namespace: 'team' },
  type: 'kubernetes.io/dockerconfigjson',
  data: {
    '.dockerconfigjson': Buffer.from(
      JSON.stringify({ auths: { 'registry.example.com': { username: 'u', password: 'p' } } }),
    ).toString('base64'),
  },
};

/** Checks over a registry and an API server the test answers for, counting the requests. */
function setup(o: { registry: () => Promise<unknown>; secrets?: () => Promise<Secret[]> }) {
  const clock = new FakeClock();
  const requests = { registry: 0, secrets: 0 };
  const client = {
    list: async () => {
      requests.secrets++;
      return { items: await (o.secrets ?? (async () => [pullSecret]))(), metadata: {} };
    },
  } as unknown as KubeClient;
  const registry = {
    inspect: async () => {
      requests.registry++;
      return o.registry();
    },
  } as unknown as RegistryClient;
  const checks = createRegistryChecks({ client, registry, clock, random: () => 0 });
  return { clock, requests, check: () => checks.check(ppi, ['pull']) };
}

describe('registry checks', () => {
  it('date an answer by when the registry gave it, not by when a pass asked again', async () => {
    const { clock, requests, check } = setup({
      registry: async () => ({ digest: DIGEST, kind: 'manifest', mediaType: 'x', platforms: [] }),
    });
    const first = await check();
    clock.advance(30_000);
    const again = await check();
    expect(requests.registry).toBe(1);
    expect(again.resolutions).toEqual(first.resolutions);
    expect(again.resolutions[0]).toMatchObject({
      resolvedDigest: DIGEST,
      resolvedAt: '2026-01-01T00:00:00Z',
    });
  });

  it('a failure repeated during its back-off reads the same, so a pass then writes no status', async () => {
    const { clock, requests, check } = setup({
      registry: async () => {
        throw new RegistryUnavailableError('registry.example.com', 'connect ECONNREFUSED');
      },
    });
    // Three failures in a row: the back-off is 4 s now.
    for (const wait of [1_000, 2_000, 0]) {
      await check();
      clock.advance(wait);
    }
    expect(requests.registry).toBe(3);
    const failed = await check();
    clock.advance(2_500);
    const during = await check();
    expect(requests.registry).toBe(3);
    expect(during.resolutions).toEqual(failed.resolutions);
    expect(during.resolutions[0]).toMatchObject({
      resolvedAt: '2026-01-01T00:00:03Z',
      registryCheck: { reason: 'RegistryUnavailable', message: 'connect ECONNREFUSED' },
    });
    // The pass comes back when the back-off ends, and only then asks again.
    expect(during.nextInMs).toBe(1_500);
    clock.advance(1_500);
    await check();
    expect(requests.registry).toBe(4);
  });

  it('pull secrets that cannot be read are read again only when due, the failure dated by that read', async () => {
    const { clock, requests, check } = setup({
      registry: async () => ({ digest: DIGEST, kind: 'manifest', mediaType: 'x', platforms: [] }),
      secrets: async () => {
        throw new ApiError(403, 'Forbidden', 'secrets is forbidden', 'list');
      },
    });
    const first = await check();
    expect(first.resolutions[0]).toMatchObject({
      resolvedAt: '2026-01-01T00:00:00Z',
      registryCheck: { reason: 'Forbidden' },
    });
    clock.advance(10_000);
    const again = await check();
    expect(requests.secrets).toBe(1);
    expect(again.resolutions).toEqual(first.resolutions);
    expect(again.nextInMs).toBe(20_000);
    clock.advance(20_000);
    await check();
    expect(requests.secrets).toBe(2);
    expect(requests.registry).toBe(0);
  });
});
