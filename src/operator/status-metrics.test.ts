/** The status metrics over made-up cached objects: states, node counts, failures by reason. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../api/prepulledimage.ts';
import type { RegistryCredential } from '../api/registrycredential.ts';
import { objectState, registerStatusMetrics } from './status-metrics.ts';

const condition = (type: string, status: 'True' | 'False') => ({
  type,
  status,
  reason: 'R',
  message: 'm',
  lastTransitionTime: '2026-12-01T00:00:00Z',
});

function ppi(name: string, generation: number, status?: PrePulledImage['status']): PrePulledImage {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: 'team', generation },
    spec: { images: [{ image: 'docker.io/library/nginx:1' }] },
    ...(status ? { status } : {}),
  } as PrePulledImage;
}

function rc(name: string, status?: RegistryCredential['status']): RegistryCredential {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'RegistryCredential',
    metadata: { name, generation: 1 },
    spec: {
      source: { secretRef: { name: 's', namespace: 'n' } },
      target: { secretName: 's', namespaces: ['a'] },
    },
    ...(status ? { status } : {}),
  } as RegistryCredential;
}

const ready = ppi('ready', 1, {
  observedGeneration: 1,
  conditions: [condition('Ready', 'True'), condition('Degraded', 'False')],
  desiredNodes: 3,
  readyNodes: 3,
  pullingNodes: 0,
  failedNodes: 0,
});
const failing = ppi('failing', 2, {
  observedGeneration: 2,
  conditions: [condition('Ready', 'False'), condition('Degraded', 'True')],
  desiredNodes: 3,
  readyNodes: 1,
  pullingNodes: 0,
  failedNodes: 2,
  nodes: [
    { name: 'a', ready: false, images: [{ image: 'x', state: 'Failed', reason: 'NotFound' }] },
    {
      name: 'b',
      ready: false,
      images: [
        { image: 'x', state: 'Failed', reason: 'NotFound' },
        { image: 'y', state: 'Failed', reason: 'Unauthorized' },
      ],
    },
  ],
});
// Ready, but for an older generation: the current spec is not yet reconciled.
const stale = ppi('stale', 3, { observedGeneration: 2, conditions: [condition('Ready', 'True')] });

describe('objectState', () => {
  it('is Progressing without status for the current generation, then Degraded, Ready or Progressing', () => {
    expect(objectState(ppi('new', 1), 'Degraded')).toBe('Progressing');
    expect(objectState(stale, 'Degraded')).toBe('Progressing');
    expect(objectState(failing, 'Degraded')).toBe('Degraded');
    expect(objectState(ready, 'Degraded')).toBe('Ready');
    const stalled = rc('stalled', {
      observedGeneration: 1,
      conditions: [condition('Ready', 'False'), condition('Stalled', 'True')],
    });
    expect(objectState(stalled, 'Stalled')).toBe('Degraded');
  });
});

describe('registerStatusMetrics', () => {
  it('serves the cached statuses at each scrape: states, nodes, failures by reason, namespaces', async () => {
    const registry = new Registry();
    const ppis = [ready, failing, stale];
    const rcs = [
      rc('synced', {
        observedGeneration: 1,
        conditions: [condition('Ready', 'True')],
        desiredNamespaces: 4,
        syncedNamespaces: 4,
        failedNamespaces: 0,
      }),
    ];
    registerStatusMetrics(registry, {
      prePulledImages: { list: () => ppis },
      registryCredentials: { list: () => rcs },
    });
    const text = await registry.metrics();
    expect(text).toContain('prepull_objects{kind="PrePulledImage",state="Ready"} 1');
    expect(text).toContain('prepull_objects{kind="PrePulledImage",state="Progressing"} 1');
    expect(text).toContain('prepull_objects{kind="PrePulledImage",state="Degraded"} 1');
    expect(text).toContain('prepull_objects{kind="RegistryCredential",state="Ready"} 1');
    expect(text).toContain('prepull_prepulledimage_nodes{namespace="team",name="failing",state="failed"} 2');
    expect(text).toContain('prepull_prepulledimage_nodes{namespace="team",name="ready",state="ready"} 3');
    expect(text).not.toContain('name="stale"');
    expect(text).toContain('prepull_node_image_failures{reason="NotFound"} 2');
    expect(text).toContain('prepull_node_image_failures{reason="Unauthorized"} 1');
    expect(text).toContain('prepull_registrycredential_namespaces{name="synced",state="synced"} 4');

    // A later scrape sees the cache as it is then: the failing object is gone.
    ppis.splice(1, 1);
    const later = await registry.metrics();
    expect(later).not.toContain('prepull_node_image_failures{');
    expect(later).toContain('prepull_objects{kind="PrePulledImage",state="Degraded"} 0');
  });
});
