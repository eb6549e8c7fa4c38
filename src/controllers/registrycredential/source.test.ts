import { describe, expect, it } from 'vitest';
import type { Secret } from '../../kube/objects.ts';
import { encodeBasicAuth, readSource } from './source.ts';

const source = { secretRef: { namespace: 'vault', name: 'pull' } };
const b64 = (text: string) => Buffer.from(text).toString('base64');
const fromB64 = (text: string) => Buffer.from(text, 'base64').toString('utf8');
const PASSWORD = 's3cr3t-Pa55';

function secret(type: string | undefined, data: Record<string, string>): Secret {
  return {
    metadata: { name: 'pull', namespace: 'vault', resourceVersion: '42' },
    ...(type ? { type } : {}),
    data,
  };
}

function dockerConfig(json: string): Secret {
  return secret('kubernetes.io/dockerconfigjson', { '.dockerconfigjson': b64(json) });
}

describe('readSource', () => {
  it('takes a dockerconfigjson as it is, with its resourceVersion', () => {
    const json = JSON.stringify({ auths: { 'registry.example.com': { auth: b64(`me:${PASSWORD}`) } } });
    const result = readSource(dockerConfig(json), source);
    expect(result).toEqual({ ok: true, dockerConfigJson: b64(json), resourceVersion: '42' });
  });

  it('takes entries with username and password, and a credsStore beside usable entries', () => {
    const json = JSON.stringify({
      auths: { a: { username: 'robot', password: PASSWORD }, b: { auth: b64(`x:${PASSWORD}`) } },
      credsStore: 'desktop',
    });
    expect(readSource(dockerConfig(json), source).ok).toBe(true);
  });

  it('turns basic-auth into a dockerconfigjson for spec.source.registry, auth = base64(user:pass)', () => {
    const result = readSource(
      secret('kubernetes.io/basic-auth', { username: b64('robot'), password: b64(PASSWORD) }),
      { ...source, registry: 'registry.example.com:5000' },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(JSON.parse(fromB64(result.dockerConfigJson))).toEqual({
      auths: {
        'registry.example.com:5000': {
          username: 'robot',
          password: PASSWORD,
          auth: b64(`robot:${PASSWORD}`),
        },
      },
    });
    expect(result.dockerConfigJson).toBe(encodeBasicAuth('registry.example.com:5000', 'robot', PASSWORD));
  });

  it('reports a missing secret as SourceNotFound', () => {
    expect(readSource(undefined, source)).toEqual({
      ok: false,
      reason: 'SourceNotFound',
      message: 'source secret vault/pull not found',
    });
  });

  const invalid: Array<[string, Secret, string, string?]> = [
    ['bad JSON', dockerConfig(`{"auths": {"r": {"auth": "${PASSWORD}"`), 'is not valid JSON'],
    ['JSON that is not an object', dockerConfig(`["${PASSWORD}"]`), 'is not a JSON object'],
    [
      'no auths',
      dockerConfig(JSON.stringify({ HttpHeaders: { 'X-Token': PASSWORD } })),
      'has no "auths" object',
    ],
    ['empty auths', dockerConfig('{"auths": {}}'), 'lists no registry'],
    [
      'only credHelpers',
      dockerConfig(JSON.stringify({ credHelpers: { [PASSWORD]: 'ecr-login' } })),
      "holds only credsStore/credHelpers: the credentials are in a workstation's credential helper",
    ],
    [
      "a laptop's config.json: credsStore and empty auths entries",
      dockerConfig(JSON.stringify({ auths: { 'ghcr.io': {}, [PASSWORD]: {} }, credsStore: 'desktop' })),
      '2 of 2 entries under "auths" carry no credentials: the credentials are in a workstation\'s credential helper',
    ],
    [
      'an entry without auth or username/password',
      dockerConfig(
        JSON.stringify({ auths: { a: { auth: b64(`robot:${PASSWORD}`) }, [PASSWORD]: { email: 'x@y' } } }),
      ),
      '1 of 2 entries under "auths" cannot be used: an entry has neither "auth" nor "username" and "password"',
    ],
    [
      'an entry with an empty auth',
      dockerConfig(JSON.stringify({ auths: { r: { auth: '' } } })),
      'neither "auth" nor "username" and "password"',
    ],
    [
      'an entry with only an identitytoken',
      dockerConfig(JSON.stringify({ auths: { r: { identitytoken: PASSWORD } } })),
      'neither "auth" nor "username" and "password"',
    ],
    [
      'an entry with a username but no password',
      dockerConfig(JSON.stringify({ auths: { r: { username: 'robot' } } })),
      'has a "username" but no "password"',
    ],
    [
      'an entry with a password but no username',
      dockerConfig(JSON.stringify({ auths: { r: { password: PASSWORD } } })),
      'has a "password" but no "username"',
    ],
    [
      'an auth without a colon',
      dockerConfig(JSON.stringify({ auths: { r: { auth: b64(PASSWORD) } } })),
      '"auth" is not base64 of username:password',
    ],
    [
      'an auth that is not base64',
      dockerConfig(JSON.stringify({ auths: { r: { auth: `robot:${PASSWORD}` } } })),
      '"auth" is not base64 of username:password',
    ],
    [
      'an entry that is not an object',
      dockerConfig(JSON.stringify({ auths: { [PASSWORD]: 1 } })),
      'not an object',
    ],
    [
      'no .dockerconfigjson key',
      secret('kubernetes.io/dockerconfigjson', {}),
      'has no .dockerconfigjson key',
    ],
    ['an Opaque secret', secret('Opaque', { '.dockerconfigjson': b64('{}') }), 'has type Opaque'],
    ['a secret without type', secret(undefined, { password: b64(PASSWORD) }), 'has type Opaque'],
    ['a TLS secret', secret('kubernetes.io/tls', {}), 'has type kubernetes.io/tls'],
    [
      'basic-auth without registry',
      secret('kubernetes.io/basic-auth', { username: b64('robot'), password: b64(PASSWORD) }),
      'spec.source.registry must name the registry host',
    ],
    [
      'basic-auth without username',
      secret('kubernetes.io/basic-auth', { password: b64(PASSWORD) }),
      'has no username',
      'r.example.com',
    ],
    [
      'basic-auth without password',
      secret('kubernetes.io/basic-auth', { username: b64('robot') }),
      'has no password',
      'r.example.com',
    ],
    [
      "basic-auth with ':' in the username",
      secret('kubernetes.io/basic-auth', { username: b64('ro:bot'), password: b64(PASSWORD) }),
      "must not contain ':'",
      'r.example.com',
    ],
  ];
  it.each(invalid)(
    'reports %s as SourceInvalid, naming the secret but never its content',
    (_, s, text, registry) => {
      const result = readSource(s, { ...source, ...(registry ? { registry } : {}) });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.reason).toBe('SourceInvalid');
      expect(result.message).toContain('vault/pull');
      expect(result.message).toContain(text);
      expect(result.message).not.toContain(PASSWORD);
      expect(result.message).not.toContain(b64(PASSWORD));
      expect(result.message).not.toContain('robot');
    },
  );
});
