import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Namespace } from '../../kube/objects.ts';
import {
  CREDENTIALS_CONDITION,
  credentialsCondition,
  pullSecretProblems,
  registryCredentialProblems,
  withCredentialsCondition,
} from './credentials.ts';

const ppi = (names: string[]): PrePulledImage => ({
  apiVersion: 'prepull.dev/v1alpha1',
  kind: 'PrePulledImage',
  metadata: { name: 'app', namespace: 'team-a', generation: 4 },
  spec: { images: [{ image: 'nginx' }], registryCredentials: names.map((name) => ({ name })) },
});
const namespace: Namespace = { metadata: { name: 'team-a', labels: { team: 'a' } } };
const rc = (name: string, allow?: Record<string, string>): RegistryCredential => ({
  apiVersion: 'prepull.dev/v1alpha1',
  kind: 'RegistryCredential',
  metadata: { name },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: {
      secretName: `${name}-pull`,
      namespaces: ['ci'],
      ...(allow ? { allowRequestsFrom: { namespaceSelector: { matchLabels: allow } } } : {}),
    },
  },
});
const known = new Map([
  ['open', rc('open', { team: 'a' })],
  ['closed', rc('closed')],
  ['elsewhere', rc('elsewhere', { team: 'b' })],
]);
const lookup = (name: string) => known.get(name);
const NOW = new Date('2026-12-01T22:00:00Z');

describe('registryCredentialProblems', () => {
  it('finds unknown names and RegistryCredentials that do not allow this namespace', () => {
    expect(
      registryCredentialProblems(ppi(['open', 'missing', 'closed', 'elsewhere']), namespace, lookup),
    ).toEqual([
      { name: 'missing', reason: 'RegistryCredentialNotFound' },
      { name: 'closed', reason: 'RegistryCredentialNotAllowed' },
      { name: 'elsewhere', reason: 'RegistryCredentialNotAllowed' },
    ]);
    expect(registryCredentialProblems(ppi(['open']), namespace, lookup)).toEqual([]);
  });
});

describe('credentialsCondition', () => {
  it('is absent without registryCredentials, and True when all are served', () => {
    expect(credentialsCondition(ppi([]), [])).toBeUndefined();
    expect(credentialsCondition(ppi(['open']), [])).toMatchObject({
      type: CREDENTIALS_CONDITION,
      status: 'True',
      reason: 'CredentialsResolved',
      observedGeneration: 4,
    });
  });

  it('names each problem and what it means', () => {
    const p = ppi(['missing', 'closed']);
    const condition = credentialsCondition(p, registryCredentialProblems(p, namespace, lookup));
    expect(condition).toMatchObject({ status: 'False', reason: 'RegistryCredentialNotFound' });
    expect(condition?.message).toBe(
      'RegistryCredential missing does not exist; RegistryCredential closed does not allow requests from namespace team-a (its spec.target.allowRequestsFrom): images that need these credentials cannot be pulled',
    );
  });
});

describe('pullSecretProblems', () => {
  it('reports the imagePullSecrets entries known to be missing, and names them in the condition', () => {
    const p: PrePulledImage = {
      ...ppi([]),
      spec: { ...ppi([]).spec, imagePullSecrets: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] },
    };
    const exists = (name: string) => (name === 'a' ? true : name === 'b' ? false : undefined);
    const problems = pullSecretProblems(p, exists);
    expect(problems).toEqual([{ name: 'b', reason: 'PullSecretNotFound' }]);
    expect(credentialsCondition(p, problems)).toMatchObject({
      status: 'False',
      reason: 'PullSecretNotFound',
      message:
        'pull secret b (spec.imagePullSecrets) does not exist in namespace team-a: images that need these credentials cannot be pulled',
    });
    expect(credentialsCondition(p, [])).toMatchObject({
      status: 'True',
      message: 'pull secrets a, b, c exist',
    });
  });
});

describe('withCredentialsCondition', () => {
  const ready = {
    type: 'Ready',
    status: 'True' as const,
    reason: 'AllNodesReady',
    message: '',
    lastTransitionTime: 'x',
  };
  it('adds the warning beside Ready, leaving Ready as it was, and removes it again', () => {
    const p = ppi(['missing']);
    const warned = withCredentialsCondition(
      { conditions: [ready] },
      credentialsCondition(p, registryCredentialProblems(p, namespace, lookup)),
      NOW,
    );
    expect(warned.conditions?.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['CredentialsResolved', 'False'],
    ]);
    expect(withCredentialsCondition(warned, undefined, NOW).conditions).toEqual([ready]);
  });
});
