import { describe, expect, it } from 'vitest';
import { FakeClock } from '../runtime/clock.ts';
import { parseTokenResponse, TokenCache } from './token-cache.ts';

describe('token responses', () => {
  it('takes token or access_token, with the spec default of 60 s', () => {
    expect(parseTokenResponse('{"token":"a","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}')).toEqual({
      token: 'a',
      expiresInS: 300,
      issuedAt: '2026-01-01T00:00:00Z',
    });
    expect(parseTokenResponse('{"access_token":"b"}')).toEqual({ token: 'b', expiresInS: 60 });
    expect(parseTokenResponse('{"token":""}')).toBeUndefined();
    expect(parseTokenResponse('<html>')).toBeUndefined();
  });
});

describe('TokenCache', () => {
  it('keeps a token until shortly before it expires', () => {
    const clock = new FakeClock();
    const cache = new TokenCache(clock);
    cache.set('k', { token: 't', expiresInS: 300 });
    clock.advance(289_999);
    expect(cache.get('k')).toBe('t');
    clock.advance(1);
    expect(cache.get('k')).toBeUndefined();
  });

  it('counts the lifetime from issued_at, but never from the future', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 1, 0));
    const cache = new TokenCache(clock);
    cache.set('old', { token: 'o', expiresInS: 60, issuedAt: '2026-01-01T00:00:00Z' });
    expect(cache.get('old')).toBeUndefined();
    cache.set('future', { token: 'f', expiresInS: 60, issuedAt: '2027-01-01T00:00:00Z' });
    expect(cache.get('future')).toBe('f');
    clock.advance(54_000);
    expect(cache.get('future')).toBeUndefined();
  });

  it('keys hold no credentials', () => {
    expect(TokenCache.key('r.io', 'repository:a:pull', 'sha256:abc')).toBe(
      'r.io repository:a:pull sha256:abc',
    );
  });
});
