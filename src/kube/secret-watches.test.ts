import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../runtime/clock.ts';
import type { KubeClient, ListOptions, WatchOptions } from './client.ts';
import { ApiError } from './errors.ts';
import { Informer } from './informer.ts';
import type { Secret } from './objects.ts';
import { copyNameSelection, SecretWatches, secretSelection } from './secret-watches.ts';

/** Lists what `secrets` holds (or fails with `failure`); watches stay open until aborted. */
class FakeApi {
  secrets: Secret[] = [];
  failure: ApiError | undefined;
  lists: ListOptions[] = [];

  async list(_type: unknown, options: ListOptions) {
    this.lists.push(options);
    if (this.failure) throw this.failure;
    return { items: structuredClone(this.secrets), resourceVersion: '1' };
  }

  async *watch(_type: unknown, _options: WatchOptions, signal: AbortSignal) {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    yield* [];
  }
}

function setup() {
  const api = new FakeApi();
  const clock = new FakeClock();
  const notified: string[] = [];
  const seen: string[] = [];
  const informers: Informer<Secret>[] = [];
  const watches = new SecretWatches({
    client: api as unknown as KubeClient,
    newInformer: (name, source) => {
      const informer = new Informer<Secret>({ name, source, clock, log: pino({ level: 'silent' }) });
      informers.push(informer);
      return informer;
    },
    notify: (user) => notified.push(user),
    seen: (secret) => seen.push(secret.metadata.name ?? ''),
  });
  return { api, clock, notified, seen, informers, watches };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SecretWatches', () => {
  it('lists one secret by field selector, tells its users when synced, and hands out its cache', async () => {
    const { api, watches, notified, seen } = setup();
    api.secrets = [{ metadata: { name: 'pull', namespace: 'vault', resourceVersion: '1' } }];
    const [state] = watches.use('corp', [secretSelection('vault', 'pull')]);
    await tick();
    expect(api.lists[0]).toMatchObject({ namespace: 'vault', fieldSelector: 'metadata.name=pull' });
    expect(state?.synced).toBe(true);
    expect(state?.informer.get('vault/pull')).toBeDefined();
    expect(notified).toContain('corp');
    expect(seen).toEqual(['pull']);
    await watches.stop();
  });

  it('shares one informer between users and stops it when the last one lets go', async () => {
    const { watches, informers } = setup();
    watches.use('a', [copyNameSelection('regcred')]);
    watches.use('b', [copyNameSelection('regcred'), secretSelection('vault', 'pull')]);
    expect(informers).toHaveLength(2);
    expect(watches.size).toBe(2);
    watches.forget('a');
    expect(watches.size).toBe(2);
    // b no longer needs the source: its informer stops.
    watches.use('b', [copyNameSelection('regcred')]);
    expect(watches.size).toBe(1);
    watches.forget('b');
    expect(watches.size).toBe(0);
    await watches.stop();
  });

  it('reports a failing list (403) to its users instead of retrying silently, and its recovery', async () => {
    const { api, clock, watches, notified } = setup();
    api.failure = new ApiError(403, 'Forbidden', 'secrets is forbidden', 'list');
    const [state] = watches.use('corp', [secretSelection('locked', 'pull')]);
    await tick();
    expect(state?.synced).toBe(false);
    expect(state?.error?.status).toBe(403);
    expect(notified).toEqual(['corp']);
    // The same failure again is not news.
    clock.advance(60_000);
    await tick();
    expect(notified).toEqual(['corp']);
    api.failure = undefined;
    clock.advance(60_000);
    await tick();
    expect(state?.error).toBeUndefined();
    expect(state?.synced).toBe(true);
    await watches.stop();
  });
});
