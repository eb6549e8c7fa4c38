import { describe, expect, it } from 'vitest';
import type { RegistryCredentialSpec } from '../api/registrycredential.ts';
import type { Namespace } from '../kube/objects.ts';
import { allowsRequestFrom, matchesLabelSelector } from './requests.ts';

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

describe('allowsRequestFrom', () => {
  it('denies without allowRequestsFrom, and follows its selector', () => {
    const team = ns('team-x', { team: 'x' });
    expect(allowsRequestFrom(spec({ namespaces: ['a'] }), team)).toBe(false);
    expect(allowsRequestFrom(spec({ allowRequestsFrom: { namespaceSelector: {} } }), team)).toBe(true);
    const onlyY = spec({ allowRequestsFrom: { namespaceSelector: { matchLabels: { team: 'y' } } } });
    expect(allowsRequestFrom(onlyY, team)).toBe(false);
  });
});
