import { describe, expect, it } from 'vitest';
import type { MirrorNodeReport, RegistryMirror } from '../../api/registrymirror.ts';
import type { Node } from '../../kube/objects.ts';
import { MAX_REPORT_BYTES } from '../node/report.ts';
import { fitReport, selectedMirrors } from './module.ts';

const node: Node = { metadata: { name: 'n1', labels: { site: 'edge' } } };
function rm(
  name: string,
  spec: Record<string, unknown>,
  extra: Partial<RegistryMirror['metadata']> = {},
): RegistryMirror {
  return {
    metadata: {
      name,
      uid: `uid-${name}`,
      generation: 3,
      creationTimestamp: '2026-01-01T00:00:00Z',
      ...extra,
    },
    spec: { host: 'docker.io', mirrors: [{ url: 'https://m.local' }], ...spec } as RegistryMirror['spec'],
  };
}

describe('selectedMirrors', () => {
  it('keeps the objects whose selector matches the node, with their generation, and no others', () => {
    const selected = selectedMirrors(
      [
        rm('all', {}),
        rm('edge', { nodeSelector: { matchLabels: { site: 'edge' } } }),
        rm('core', { nodeSelector: { matchLabels: { site: 'core' } } }),
        rm('going', {}, { deletionTimestamp: '2026-01-02T00:00:00Z' }),
        rm('invalid', { host: 'Not A Host' }),
      ],
      node,
    );
    expect(selected.map((m) => [m.name, m.generation])).toEqual([
      ['all', 3],
      ['edge', 3],
    ]);
  });
});

describe('fitReport', () => {
  const entry = (i: number) => ({
    name: `m${i}`,
    uid: `u${i}`,
    generation: 1,
    reason: 'Conflict',
    message: 'x'.repeat(1000),
  });

  it('leaves a small report as it is', () => {
    const report: MirrorNodeReport = { mirrors: [entry(0)] };
    expect(fitReport(report)).toBe(report);
  });

  it('shortens messages, then leaves entries out, to stay within the annotation budget', () => {
    const fitted = fitReport({ mirrors: Array.from({ length: 400 }, (_, i) => entry(i)) });
    expect(Buffer.byteLength(JSON.stringify(fitted))).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    expect(fitted.mirrors[0]?.message.length).toBeLessThanOrEqual(160);
    expect(fitted.mirrors.length).toBeGreaterThan(50);
    expect(fitted.mirrors.length).toBeLessThan(400);
  });
});
