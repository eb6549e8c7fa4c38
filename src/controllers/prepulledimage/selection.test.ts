import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { Node } from '../../kube/objects.ts';
import { selectsNode } from './selection.ts';

function ppi(spec: Partial<PrePulledImage['spec']>): PrePulledImage {
  return { metadata: { name: 'p', namespace: 'ns' }, spec: { images: [{ image: 'a:1' }], ...spec } };
}

function node(
  labels: Record<string, string>,
  taints: Array<{ key: string; value?: string; effect: string }> = [],
): Node {
  return { metadata: { name: 'n1', labels: { 'kubernetes.io/os': 'linux', ...labels } }, spec: { taints } };
}

describe('selectsNode', () => {
  it('follows the node selector and Linux', () => {
    expect(selectsNode(ppi({ nodeSelector: { pool: 'gpu' } }), node({ pool: 'gpu' }))).toBe(true);
    expect(selectsNode(ppi({ nodeSelector: { pool: 'gpu' } }), node({ pool: 'cpu' }))).toBe(false);
    expect(selectsNode(ppi({}), node({ 'kubernetes.io/os': 'windows' }))).toBe(false);
  });

  it('follows required node affinity: terms ORed, expressions ANDed, fields by name', () => {
    const affinity = (terms: unknown[]) =>
      ppi({
        affinity: {
          nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
        },
      } as Partial<PrePulledImage['spec']>);
    const n = node({ zone: 'a', cores: '16' });
    expect(
      selectsNode(affinity([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }]), n),
    ).toBe(false);
    expect(
      selectsNode(
        affinity([
          { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
          {
            matchExpressions: [
              { key: 'cores', operator: 'Gt', values: ['8'] },
              { key: 'spot', operator: 'DoesNotExist' },
            ],
          },
        ]),
        n,
      ),
    ).toBe(true);
    expect(
      selectsNode(affinity([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }]), n),
    ).toBe(true);
    expect(selectsNode(affinity([{}]), n)).toBe(false);
  });

  it('skips nodes whose NoSchedule taints the pods do not tolerate, but never for the startup taint', () => {
    const tainted = node({}, [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }]);
    expect(selectsNode(ppi({}), tainted)).toBe(false);
    expect(
      selectsNode(ppi({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml' }] }), tainted),
    ).toBe(true);
    expect(selectsNode(ppi({ tolerations: [{ operator: 'Exists' }] }), tainted)).toBe(true);
    expect(
      selectsNode(ppi({}), node({}, [{ key: 'prepull.dev/images-not-ready', effect: 'NoSchedule' }])),
    ).toBe(true);
    expect(selectsNode(ppi({}), node({}, [{ key: 'soft', effect: 'PreferNoSchedule' }]))).toBe(true);
    expect(
      selectsNode(ppi({}), node({}, [{ key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' }])),
    ).toBe(true);
  });
});
