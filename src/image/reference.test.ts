import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  defaultPullPolicy,
  IMAGE_REFERENCE_PATTERN,
  InvalidImageReferenceError,
  normalizeImageReference,
  parseImageReference,
} from './reference.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('normalizeImageReference', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['localhost/app:dev', 'localhost/app:dev'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['127.0.0.1:5443/prepull-test/scratch:v1', '127.0.0.1:5443/prepull-test/scratch:v1'],
    ['ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3'],
    [`nginx@${digest}`, `docker.io/library/nginx@${digest}`],
    [`nginx:1.27@${digest}`, `docker.io/library/nginx:1.27@${digest}`],
    ['registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10'],
    ['my_app/x__y/a-b--c.d', 'docker.io/my_app/x__y/a-b--c.d:latest'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeImageReference(input)).toBe(expected);
  });

  it.each([
    ['', 'empty'],
    [' nginx', 'white space'],
    ['Nginx', 'lower case'],
    ['docker.io/Library/nginx', 'lower case'],
    ['nginx@sha256:abc', 'digest'],
    [`nginx@sha256:${'A'.repeat(64)}`, 'digest'],
    ['nginx@md5:0123', 'digest'],
    ['nginx:', 'tag'],
    ['nginx:-bad', 'tag'],
    [`nginx:${'a'.repeat(129)}`, 'tag'],
    ['-nginx', 'repository component'],
    ['nginx//app', 'repository component'],
    ['nginx/', 'repository component'],
    ['host.example.com/', 'repository name is empty'],
    ['bad_host.example.com/app', 'registry host'],
    [`x/${'a'.repeat(260)}`, 'longer than 255'],
  ])('rejects %j (%s)', (input, why) => {
    expect(() => parseImageReference(input)).toThrowError(InvalidImageReferenceError);
    expect(() => parseImageReference(input)).toThrowError(why);
  });
});

describe('defaultPullPolicy', () => {
  it.each([
    ['nginx', 'Always'],
    ['nginx:latest', 'Always'],
    ['nginx:1.27', 'IfNotPresent'],
    [`nginx@${digest}`, 'IfNotPresent'],
    [`nginx:latest@${digest}`, 'Always'],
    ['localhost:5000/app', 'Always'],
  ])('%s → %s', (input, expected) => {
    expect(defaultPullPolicy(input)).toBe(expected);
  });
});

const lower = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''));
const alnumRun = fc.array(lower, { minLength: 1, maxLength: 6 }).map((a) => a.join(''));
const separator = fc.constantFrom('.', '_', '__', '-', '--');
const pathComponent = fc
  .tuple(alnumRun, fc.array(fc.tuple(separator, alnumRun), { maxLength: 2 }))
  .map(([head, tail]) => head + tail.map(([s, r]) => s + r).join(''));
const firstComponent = fc
  .tuple(alnumRun, fc.array(fc.tuple(fc.constantFrom('_', '__', '-'), alnumRun), { maxLength: 2 }))
  .map(([head, tail]) => head + tail.map(([s, r]) => s + r).join(''));
const domain = fc.oneof(
  fc.constant('localhost'),
  fc.tuple(alnumRun, alnumRun).map(([a, b]) => `${a}.${b}`),
  fc.tuple(alnumRun, fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`),
);
const tag = fc
  .tuple(
    fc.constantFrom(...'abcXYZ019_'.split('')),
    fc.array(fc.constantFrom(...'abcXYZ019_.-'.split('')), { maxLength: 20 }),
  )
  .map(([h, t]) => h + t.join(''));
const hexDigest = fc
  .array(fc.constantFrom(...'0123456789abcdef'.split('')), { minLength: 64, maxLength: 64 })
  .map((a) => `sha256:${a.join('')}`);
const validReference = fc
  .tuple(
    fc.option(domain, { nil: undefined }),
    firstComponent,
    pathComponent,
    fc.array(pathComponent, { maxLength: 2 }),
    fc.option(tag, { nil: undefined }),
    fc.option(hexDigest, { nil: undefined }),
  )
  .map(([d, first, single, more, t, dg]) => {
    // Without a host, a leading component with a dot would be read as a host.
    const path = d ? [single, ...more] : more.length > 0 ? [first, ...more] : [single];
    return `${d ? `${d}/` : ''}${path.join('/')}${t ? `:${t}` : ''}${dg ? `@${dg}` : ''}`;
  });

describe('properties', () => {
  const patternRe = new RegExp(IMAGE_REFERENCE_PATTERN);

  it('every generated valid reference parses, and normalising is idempotent', () => {
    fc.assert(
      fc.property(validReference, (input) => {
        const once = normalizeImageReference(input);
        expect(normalizeImageReference(once)).toBe(once);
        expect(patternRe.test(once)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('the CRD pattern agrees with the parser on valid and arbitrary strings', () => {
    const arbitrary = fc.oneof(
      validReference,
      fc.string({ maxLength: 40 }),
      validReference.map((s) => s.toUpperCase()),
      validReference.map((s) => `${s}@sha256:abc`),
    );
    fc.assert(
      fc.property(arbitrary, (input) => {
        let parses = true;
        try {
          parseImageReference(input);
        } catch {
          parses = false;
        }
        // The pattern has no length limit of its own (the CRD adds maxLength), so
        // only compare strings short enough not to hit the 255-character rule.
        if (input.length < 200) expect(patternRe.test(input)).toBe(parses);
      }),
      { numRuns: 3000 },
    );
  });

  it('a name without a registry host lands on docker.io, with library/ for one component', () => {
    fc.assert(
      fc.property(pathComponent, tag, (name, t) => {
        expect(parseImageReference(`${name}:${t}`)).toEqual({
          domain: 'docker.io',
          path: `library/${name}`,
          tag: t,
        });
      }),
    );
  });
});
