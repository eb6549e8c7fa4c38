import { describe, expect, it } from 'vitest';
import type { RegistryCredentialSpec } from '../../api/registrycredential.ts';
import type { Namespace } from '../../kube/objects.ts';
import {
  allowedRequesters,
  allowsRequestFrom,
  matchesLabelSelector,
  selectTargetNamespaces,
} from './targets.ts';

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

  const allowAll = { namespaceSelector: {} };

  it('takes the selector, the listed namespaces and the allowed PrePulledImages, sorted', () => {
    const out = selectTargetNamespaces({
      spec: spec({
        namespaceSelector: { matchLabels: { pull: 'yes' } },
        namespaces: ['c'],
        allowRequestsFrom: allowAll,
      }),
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
        allowRequestsFrom: allowAll,
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

  it('ignores PrePulledImages by default: no allowRequestsFrom, no request is honoured', () => {
    const out = selectTargetNamespaces({
      spec: spec({ namespaces: ['c'] }),
      namespaces: [...namespaces, ns('ppi-ns')],
      requestedBy: new Set(['ppi-ns', 'a']),
    });
    expect(out).toEqual(['c']);
  });

  it('honours requests only from the namespaces allowRequestsFrom selects', () => {
    const out = selectTargetNamespaces({
      spec: spec({
        namespaces: ['c'],
        allowRequestsFrom: { namespaceSelector: { matchLabels: { team: 'x' } } },
      }),
      namespaces: [...namespaces, ns('team-x', { team: 'x' }), ns('team-y', { team: 'y' })],
      requestedBy: new Set(['team-x', 'team-y']),
    });
    expect(out).toEqual(['c', 'team-x']);
  });
});

describe('allowsRequestFrom', () => {
  it('denies without allowRequestsFrom, and follows its selector', () => {
    const team = ns('team-x', { team: 'x' });
    expect(allowsRequestFrom(spec({ namespaces: ['a'] }), team)).toBe(false);
    expect(allowsRequestFrom(spec({ allowRequestsFrom: { namespaceSelector: {} } }), team)).toBe(true);
    const onlyY = spec({ allowRequestsFrom: { namespaceSelector: { matchLabels: { team: 'y' } } } });
    expect(allowsRequestFrom(onlyY, team)).toBe(false);
  });
});

describe('allowedRequesters', () => {
  it('gives the allowed requesting namespaces, sorted, without excluded or terminating ones', () => {
    const out = allowedRequesters({
      spec: spec({
        namespaces: ['a'],
        excludeNamespaces: ['team-z'],
        allowRequestsFrom: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } },
      }),
      namespaces: [
        ns('team-y', { team: 'y' }),
        ns('team-x', { team: 'x' }),
        ns('team-z', { team: 'z' }),
        ns('team-gone', { team: 'g' }, true),
        ns('no-team'),
        ns('team-w', { team: 'w' }),
      ],
      requestedBy: new Set(['team-x', 'team-y', 'team-z', 'team-gone', 'no-team']),
    });
    expect(out).toEqual(['team-x', 'team-y']);
  });
});
