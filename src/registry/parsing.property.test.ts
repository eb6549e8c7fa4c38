/**
 * Property tests of what the client parses from registries and users:
 * WWW-Authenticate challenges, digests, references as keyring input, and
 * registry error messages (which must never echo a credential).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDigest, parseImageReference, repositoryOf } from '../image/reference.ts';
import { parseWwwAuthenticate } from './challenge.ts';
import { registryMessage } from './errors.ts';
import { Keyring } from './keyring.ts';

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,11}$/);
const paramValue = fc.string({ maxLength: 30 }).filter((s) => !/[\r\n]/.test(s));
const quote = (v: string) => `"${v.replace(/[\\"]/g, '\\$&')}"`;
const challenge = fc.record({
  scheme: token,
  params: fc.uniqueArray(fc.tuple(token, paramValue), {
    minLength: 1,
    maxLength: 4,
    selector: ([k]) => k.toLowerCase(),
  }),
  quoted: fc.boolean(),
});

describe('WWW-Authenticate', () => {
  it('parses back every list of challenges it is given, quoted or plain', () => {
    fc.assert(
      fc.property(
        fc.array(challenge, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(',', ', ', ' , '),
        (list, sep) => {
          const header = list
            .map(
              (c) =>
                `${c.scheme} ${c.params.map(([k, v]) => `${k}=${c.quoted || !/^[A-Za-z0-9_.-]+$/.test(v) ? quote(v) : v}`).join(sep)}`,
            )
            .join(sep);
          const parsed = parseWwwAuthenticate(header);
          expect(parsed.map((c) => c.scheme)).toEqual(list.map((c) => c.scheme.toLowerCase()));
          parsed.forEach((p, i) => {
            expect(p.params).toEqual(
              Object.fromEntries(list[i]!.params.map(([k, v]) => [k.toLowerCase(), v])),
            );
          });
        },
      ),
    );
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (header) => {
        expect(Array.isArray(parseWwwAuthenticate(header))).toBe(true);
      }),
    );
  });

  it("reads registries' real challenges", () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        },
      },
    ]);
    expect(
      parseWwwAuthenticate('Basic realm="Registry Realm", Bearer realm="https://t/x",error="invalid_token"'),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', error: 'invalid_token' } },
    ]);
    expect(parseWwwAuthenticate('Negotiate abc+/==, Basic realm=x')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });
});

const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });

describe('digests', () => {
  it('sha256 with 64 lower-case hex digits is a digest, and the reference parser agrees', () => {
    fc.assert(
      fc.property(hex, (h) => {
        expect(isDigest(`sha256:${h}`)).toBe(true);
        expect(parseImageReference(`r.io/app@sha256:${h}`).digest).toBe(`sha256:${h}`);
      }),
    );
  });

  it('anything else is not, and the reference parser refuses it too', () => {
    const notDigest = fc.oneof(
      fc.string({ maxLength: 80 }),
      hex.map((h) => `sha256:${h.toUpperCase()}`).filter((s) => /[A-F]/.test(s)),
      hex.map((h) => `sha512:${h}`),
      hex.map((h) => `sha256:${h.slice(1)}`),
      hex.map((h) => `sha256:${h}0`),
    );
    fc.assert(
      fc.property(notDigest, (d) => {
        fc.pre(!/^sha256:[a-f0-9]{64}$/.test(d));
        expect(isDigest(d)).toBe(false);
        expect(() => parseImageReference(`r.io/app@${d}`)).toThrow();
      }),
    );
  });
});

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?$/);
const host = fc.oneof(
  fc.tuple(label, label).map(([a, b]) => `${a}.${b}`),
  fc.tuple(label, label, fc.integer({ min: 1, max: 65535 })).map(([a, b, p]) => `${a}.${b}:${p}`),
);

describe('references as keyring input', () => {
  it("a registry's host entry covers every image under it, and no other host's", () => {
    fc.assert(
      fc.property(host, host, label, label, (h, other, team, app) => {
        fc.pre(h !== other);
        const repository = repositoryOf(parseImageReference(`${h}/${team}/${app}:v1`));
        const keyring = new Keyring([
          {
            name: 's',
            type: 'kubernetes.io/dockerconfigjson',
            data: {
              '.dockerconfigjson': JSON.stringify({ auths: { [h]: { username: 'u', password: 'p' } } }),
            },
          },
        ]);
        expect(keyring.lookup(repository)).toEqual([{ username: 'u', password: 'p' }]);
        expect(keyring.lookup(repositoryOf(parseImageReference(`${other}/${team}/${app}`)))).toEqual([]);
      }),
    );
  });
});

describe('registry messages', () => {
  it('never echo a secret that the body contains', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 4, maxLength: 20 }),
        fc.string({ maxLength: 30 }),
        (secret, text) => {
          const body = JSON.stringify({ errors: [{ code: 'DENIED', message: `${text}${secret}${text}` }] });
          expect(registryMessage(body, [secret])).not.toContain(secret);
        },
      ),
    );
  });
});
