import { describe, expect, it } from 'vitest';
import {
  credentialFingerprint,
  globMatch,
  InvalidPullSecretError,
  Keyring,
  keyMatches,
  keyringKey,
  type PullSecret,
} from './keyring.ts';

/** A dockerconfigjson secret with one user per location, named after it. */
function secret(name: string, locations: string[], type = 'kubernetes.io/dockerconfigjson'): PullSecret {
  const auths = Object.fromEntries(locations.map((l) => [l, { username: `user@${l}`, password: 'pw' }]));
  const key = type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
  const content = type === 'kubernetes.io/dockercfg' ? auths : { auths };
  return { name, type, data: { [key]: JSON.stringify(content) } };
}

const users = (keyring: Keyring, repository: string) => keyring.lookup(repository).map((c) => c.username);

// Cases follow the kubelet's own keyring_test.go (pkg/credentialprovider).
describe('Keyring: the kubelet matching rules', () => {
  it.each([
    // [entry, repository, matches]
    ['quay.io', 'quay.io/coreos/etcd', true],
    ['quay.io/coreos', 'quay.io/coreos/etcd', true],
    ['quay.io/coreos', 'quay.io/other/etcd', false],
    ['https://quay.io', 'quay.io/coreos/etcd', true],
    ['http://quay.io/v2/', 'quay.io/coreos/etcd', true],
    ['quay.io/v1/', 'quay.io/coreos/etcd', true],
    ['*.kubernetes.io', 'foo.kubernetes.io/bar', true],
    ['*.kubernetes.io', 'kubernetes.io/bar', false],
    ['*.kubernetes.io', 'a.b.kubernetes.io/bar', false],
    ['*.*.kubernetes.io', 'a.b.kubernetes.io/bar', true],
    ['prefix.*.io', 'prefix.kubernetes.io/bar', true],
    ['*-good.kubernetes.io', 'this-is-good.kubernetes.io/bar', true],
    ['*-good.kubernetes.io', 'this-is-bad.kubernetes.io/bar', false],
    ['127.0.0.1:5443', '127.0.0.1:5443/prepull-test/hold', true],
    ['127.0.0.1', '127.0.0.1:5443/prepull-test/hold', false],
    ['127.0.0.1:5000', '127.0.0.1:5443/prepull-test/hold', false],
    ['localhost:5000', 'localhost/app', false],
    ['docker.io', 'docker.io/library/nginx', true],
    ['registry-1.docker.io', 'docker.io/library/nginx', false],
  ])('%s covers %s: %s', (entry, repository, matches) => {
    expect(users(new Keyring([secret('s', [entry])]), repository)).toEqual(matches ? [`user@${entry}`] : []);
  });

  it('more specific entries come first, and every match is returned to be tried in turn', () => {
    const keyring = new Keyring([secret('a', ['quay.io', 'quay.io/coreos', '*.io'])]);
    expect(users(keyring, 'quay.io/coreos/etcd')).toEqual([
      'user@quay.io/coreos',
      'user@quay.io',
      'user@*.io',
    ]);
  });

  it('merges every secret, keeping their order for the same location', () => {
    const keyring = new Keyring([
      secret('first', ['reg.example.com']),
      secret('second', ['https://reg.example.com']),
    ]);
    expect(users(keyring, 'reg.example.com/team/app')).toEqual([
      'user@reg.example.com',
      'user@https://reg.example.com',
    ]);
  });

  it('index.docker.io entries serve Docker Hub images, and only them, when nothing else matched', () => {
    const keyring = new Keyring([secret('hub', ['https://index.docker.io/v1/'])]);
    expect(users(keyring, 'docker.io/library/nginx')).toEqual(['user@https://index.docker.io/v1/']);
    expect(users(keyring, 'docker.io/team/app')).toEqual(['user@https://index.docker.io/v1/']);
    expect(users(keyring, 'quay.io/team/app')).toEqual([]);
    expect(users(keyring, 'localhost:5000/app')).toEqual([]);
  });

  it('reads the legacy dockercfg type and skips secrets of other types', () => {
    const keyring = new Keyring([
      secret('old', ['reg.example.com'], 'kubernetes.io/dockercfg'),
      { name: 'opaque', type: 'Opaque', data: { '.dockerconfigjson': 'not json' } },
    ]);
    expect(users(keyring, 'reg.example.com/app')).toEqual(['user@reg.example.com']);
  });

  it('takes user and password from auth (base64 user:password) over the separate fields', () => {
    const auth = Buffer.from('robot:tok:en').toString('base64');
    const keyring = new Keyring([
      {
        name: 's',
        type: 'kubernetes.io/dockerconfigjson',
        data: {
          '.dockerconfigjson': JSON.stringify({ auths: { 'r.io': { auth, username: 'x', password: 'y' } } }),
        },
      },
    ]);
    expect(keyring.lookup('r.io/app')).toEqual([{ username: 'robot', password: 'tok:en' }]);
  });

  it('refuses a dockerconfigjson that is not JSON, naming the secret', () => {
    const bad: PullSecret = {
      name: 'broken',
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': '{' },
    };
    expect(() => new Keyring([bad])).toThrow(InvalidPullSecretError);
    expect(() => new Keyring([bad])).toThrow(/"broken"/);
  });
});

describe('keyring pieces', () => {
  it.each([
    ['https://index.docker.io/v1/', 'index.docker.io'],
    ['reg.io/v2/', 'reg.io'],
    ['reg.io/', 'reg.io'],
    ['reg.io/team', 'reg.io/team'],
    ['reg.io:443/v2/team', 'reg.io:443/team'],
  ])('keyringKey(%s) = %s', (location, key) => {
    expect(keyringKey(location)).toBe(key);
  });

  it.each([
    ['*', 'anything', true],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['[', 'a', false],
    ['a.b', 'axb', false],
  ])('globMatch(%s, %s) = %s', (pattern, text, expected) => {
    expect(globMatch(pattern, text)).toBe(expected);
  });

  it('keyMatches compares ports exactly, also for bracketed IPv6 hosts', () => {
    expect(keyMatches('[::1]:5000', '[::1]:5000/app')).toBe(true);
    expect(keyMatches('[::1]:5000', '[::1]:5001/app')).toBe(false);
  });

  it('credentialFingerprint tells credentials apart and reveals none of them', () => {
    const a = credentialFingerprint([{ username: 'u', password: 'secret-one' }]);
    const b = credentialFingerprint([{ username: 'u', password: 'secret-two' }]);
    expect(a).not.toBe(b);
    expect(a).not.toContain('secret');
    expect(credentialFingerprint([])).toBe('anonymous');
    expect(credentialFingerprint([{ username: 'ab', password: 'c' }])).not.toBe(
      credentialFingerprint([{ username: 'a', password: 'bc' }]),
    );
  });
});
