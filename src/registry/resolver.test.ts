import { describe, expect, it } from 'vitest';
import { parseImageReference } from '../image/reference.ts';
import { FakeClock } from '../runtime/clock.ts';
import { RegistryNotFoundError, RegistryUnavailableError } from './errors.ts';
import { type ResolveTarget, resolveKey, SharedResolver } from './resolver.ts';

const MINUTE = 60_000;
const alice = [{ username: 'alice', password: 'pw-a' }];
const bob = [{ username: 'bob', password: 'pw-b' }];
const target = (image: string, credentials = alice): ResolveTarget => ({
  ref: parseImageReference(image),
  credentials,
});

/** A resolver over a fetch the test settles by hand; counts the fetches per key. */
function setup(random = () => 0) {
  const clock = new FakeClock();
  const calls: string[] = [];
  let answer: (t: ResolveTarget) => Promise<string> = async (t) => `digest-of-${t.ref.tag}`;
  const resolver = new SharedResolver<string>({
    clock,
    random,
    fetch: (t) => {
      calls.push(resolveKey(t));
      return answer(t);
    },
  });
  return { clock, calls, resolver, answerWith: (f: typeof answer) => (answer = f) };
}

describe('SharedResolver', () => {
  it('callers asking at once share one request', async () => {
    const { resolver, calls, answerWith } = setup();
    let release!: (d: string) => void;
    answerWith(() => new Promise((r) => (release = r)));
    const asks = [1, 2, 3].map(() => resolver.get(target('r.io/app:v1'), MINUTE));
    release('sha256:one');
    expect(await Promise.all(asks)).toEqual(['sha256:one', 'sha256:one', 'sha256:one']);
    expect(calls.length).toBe(1);
  });

  it('one request per interval, however many callers ask in it', async () => {
    const { resolver, calls, clock } = setup();
    for (let i = 0; i < 10; i++) {
      await resolver.get(target('r.io/app:v1'), MINUTE);
      clock.advance(5_000);
    }
    // 50 s of asking every 5 s: still the first answer.
    expect(calls.length).toBe(1);
    clock.advance(10_000);
    await resolver.get(target('r.io/app:v1'), MINUTE);
    expect(calls.length).toBe(2);
  });

  it('a refresh asked for at a time fetches anew once, an answer or a failure in back-off alike', async () => {
    const { resolver, calls, clock, answerWith } = setup();
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    clock.advance(MINUTE);
    const askedAt = clock.now();
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE, askedAt);
    expect(calls.length).toBe(2);
    // Answered after the request: every later asker of that request shares it.
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE, askedAt);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    expect(calls.length).toBe(2);
    answerWith(async () => {
      throw new RegistryUnavailableError('r.io', 'connection refused');
    });
    clock.advance(10 * MINUTE);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE).catch(() => {});
    expect(calls.length).toBe(3);
    // In back-off (1 s): a refresh asked for now does not wait for it.
    clock.advance(100);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE, clock.now()).catch(() => {});
    expect(calls.length).toBe(4);
  });

  it('the shortest interval among askers rules, and others share its answers', async () => {
    const { resolver, calls, clock } = setup();
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    clock.advance(MINUTE);
    await resolver.get(target('r.io/app:v1'), MINUTE);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    expect(calls.length).toBe(2);
  });

  it('jitter shortens reuse by up to its share of the interval, fixed per answer', async () => {
    const { resolver, calls, clock } = setup(() => 0.5);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    // random 0.5 × jitter 0.1 = 5 %: reuse ends 30 s early, at 9.5 minutes.
    expect(resolver.dueIn(target('r.io/app:v1'), 10 * MINUTE)).toBe(9.5 * MINUTE);
    clock.advance(9.5 * MINUTE - 1);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    expect(calls.length).toBe(1);
    clock.advance(1);
    await resolver.get(target('r.io/app:v1'), 10 * MINUTE);
    expect(calls.length).toBe(2);
  });

  it('distinct tags, repositories, registries and credentials are distinct requests', async () => {
    const { resolver, calls } = setup();
    for (const t of [
      target('r.io/app:v1'),
      target('r.io/app:v2'),
      target('r.io/other:v1'),
      target('q.io/app:v1'),
      target('r.io/app:v1', bob),
      target('r.io/app:v1', []),
      target('r.io/app:v1'),
    ]) {
      await resolver.get(t, MINUTE);
    }
    expect(calls.length).toBe(6);
    expect(calls.join(' ')).not.toContain('pw-');
  });

  it('a failure is remembered and retried with doubling backoff, capped by the interval', async () => {
    const { resolver, calls, clock, answerWith } = setup();
    answerWith(async () => {
      throw new RegistryNotFoundError('r.io', 'no such tag', 404);
    });
    const t = target('r.io/app:gone');
    const attempts: number[] = [];
    for (let s = 0; s < 40; s++) {
      await resolver.get(t, 10_000).catch(() => {});
      attempts.push(calls.length);
      clock.advance(1_000);
    }
    // Backoff 1 s, 2 s, 4 s, 8 s, then the 10 s interval caps it.
    const times = attempts.flatMap((n, i) => (i === 0 || n !== attempts[i - 1] ? [i] : []));
    expect(times).toEqual([0, 1, 3, 7, 15, 25, 35]);
  });

  it("a failure's Retry-After is waited out even past the interval", async () => {
    const { resolver, calls, clock, answerWith } = setup();
    answerWith(async () => {
      throw new RegistryUnavailableError('r.io', 'rate limited', 429, { retryAfterMs: 5 * MINUTE });
    });
    const t = target('r.io/app:v1');
    await expect(resolver.get(t, MINUTE)).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(resolver.dueIn(t, MINUTE)).toBe(5 * MINUTE);
    clock.advance(5 * MINUTE - 1);
    await expect(resolver.get(t, MINUTE)).rejects.toThrow('rate limited');
    expect(calls.length).toBe(1);
    clock.advance(1);
    await resolver.get(t, MINUTE).catch(() => {});
    expect(calls.length).toBe(2);
  });

  it('answeredAt is when the registry answered, whether the answer or failure is reused or fetched anew', async () => {
    const { resolver, clock, answerWith } = setup();
    const t = target('r.io/app:v1');
    expect(resolver.answeredAt(t)).toBeUndefined();
    const first = clock.now();
    await resolver.get(t, MINUTE);
    clock.advance(30_000);
    await resolver.get(t, MINUTE);
    expect(resolver.answeredAt(t)).toBe(first);
    clock.advance(30_000);
    answerWith(async () => {
      throw new RegistryUnavailableError('r.io', 'down');
    });
    await resolver.get(t, MINUTE).catch(() => {});
    const failed = clock.now();
    expect(resolver.answeredAt(t)).toBe(failed);
    // Within the back-off the failure is repeated without a request, and keeps its time.
    clock.advance(500);
    await expect(resolver.get(t, MINUTE)).rejects.toThrow('down');
    expect(resolver.answeredAt(t)).toBe(failed);
  });

  it('a success after failures resets the backoff', async () => {
    const { resolver, calls, clock, answerWith } = setup();
    answerWith(async () => {
      throw new RegistryUnavailableError('r.io', 'down');
    });
    const t = target('r.io/app:v1');
    await resolver.get(t, MINUTE).catch(() => {});
    clock.advance(1_000);
    answerWith(async () => 'sha256:back');
    await expect(resolver.get(t, MINUTE)).resolves.toBe('sha256:back');
    expect(calls.length).toBe(2);
    expect(resolver.dueIn(t, MINUTE)).toBe(MINUTE);
  });

  it('prune forgets targets nobody asked for in the idle time', async () => {
    const { resolver, clock } = setup();
    await resolver.get(target('r.io/app:v1'), MINUTE);
    await resolver.get(target('r.io/app:v2'), MINUTE);
    clock.advance(30 * MINUTE);
    await resolver.get(target('r.io/app:v2'), MINUTE);
    clock.advance(31 * MINUTE);
    resolver.prune();
    expect(resolver.size).toBe(1);
  });

  it('a digest is part of the key: two digests of one repository are two targets', () => {
    const a = resolveKey(target(`r.io/app@sha256:${'a'.repeat(64)}`));
    expect(a).not.toBe(resolveKey(target(`r.io/app@sha256:${'b'.repeat(64)}`)));
    expect(a).not.toBe(resolveKey(target('r.io/app:v1')));
  });
});
