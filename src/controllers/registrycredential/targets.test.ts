import { describe, expect, it } from 'vitest';
import type { RegistryCredentialSpec } from '../../api/registrycredential.ts';
import type { Namespace } from '../../kube/objects.ts';
import { matchesLabelSelector, selectTargetNamespaces } from './targets.ts';

function ns(name: string, labels: Record<string, string> = {}, terminating = false): Namespace {
  return {
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
    ...(terminating ? { status: { phase: 'Terminating' } } : {}),
  };
}

function spec(target: Partial<RegistryCredentialSpec['target']>): RegistryCredentialSpec {
  return {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'regcred', ...target },
  };
}

describe('matchesLabelSelector', () => {
  const labels = { team: 'a', tier: 'web' };
  it.each([
    [{}, true],
    [{ matchLabels: { team: 'a' } }, true],
    [{ matchLabels: { team: 'b' } }, false],
    [{ matchExpressions: [{ key: 'team', operator: 'In' as const, values: ['a', 'b'] }] }, true],
    [{ matchExpressions: [{ key: 'team', operator: 'In' as const, values: ['b'] }] }, false],
    [{ matchExpressions: [{ key: 'owner', operator: 'In' as const, values: ['x'] }] }, false],
    [{ matchExpressions: [{ key: 'team', operator: 'NotIn' as const, values: ['a'] }] }, false],
    [{ matchExpressions: [{ key: 'owner', operator: 'NotIn' as const, values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] }, true],
    [{ matchExpressions: [{ key: 'owner', operator: 'Exists' as const }] }, false],
    [{ matchExpressions: [{ key: 'owner', operator: 'DoesNotExist' as const }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' as const }] }, false],
    [
      {
        matchLabels: { team: 'a' },
        matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['db'] }],
      },
      false,
    ],
  ])('%j → %s', (selector, expected) => {
    expect(matchesLabelSelector(selector, labels)).toBe(expected);
  });
});

describe('selectTargetNamespaces', () => {
  const namespaces = [
    ns('a', { pull: 'yes' }),
    ns('b', { pull: 'yes' }),
    ns('c'),
    ns('gone', { pull: 'yes' }, true),
    ns('vault', { pull: 'yes' }),
  ];
  const none = new Set<string>();

  it('takes the selector, the listed namespaces and the PrePulledImages, sorted', () => {
    const out = selectTargetNamespaces({
      spec: spec({ namespaceSelector: { matchLabels: { pull: 'yes' } }, namespaces: ['c'] }),
      namespaces: [...namespaces, ns('ppi-ns')],
      requestedBy: new Set(['ppi-ns']),
    });
    expect(out).toEqual(['a', 'b', 'c', 'ppi-ns', 'vault']);
  });

  it('lets exclusions win over the selector, the list and PrePulledImages', () => {
    const out = selectTargetNamespaces({
      spec: spec({
        namespaceSelector: { matchLabels: { pull: 'yes' } },
        namespaces: ['c'],
        excludeNamespaces: ['a', 'c', 'ppi-ns'],
      }),
      namespaces: [...namespaces, ns('ppi-ns')],
      requestedBy: new Set(['ppi-ns']),
    });
    expect(out).toEqual(['b', 'vault']);
  });

  it('skips terminating and absent namespaces', () => {
    const out = selectTargetNamespaces({
      spec: spec({ namespaces: ['gone', 'not-yet', 'c'] }),
      namespaces,
      requestedBy: none,
    });
    expect(out).toEqual(['c']);
  });

  it("skips the source's namespace when the copy would be the source itself", () => {
    const same = spec({ namespaceSelector: {}, secretName: 'pull' });
    expect(selectTargetNamespaces({ spec: same, namespaces, requestedBy: none })).toEqual(['a', 'b', 'c']);
  });

  it('selects every namespace with an empty selector', () => {
    const out = selectTargetNamespaces({
      spec: spec({ namespaceSelector: {} }),
      namespaces,
      requestedBy: none,
    });
    expect(out).toEqual(['a', 'b', 'c', 'vault']);
  });
});
