import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubeClient, ListResult, WatchEvent } from '../../kube/client.ts';
import { Informer, type ListWatchSource } from '../../kube/informer.ts';
import type { KubeObject } from '../../kube/objects.ts';
import { FakeClock } from '../../runtime/clock.ts';
import type { AgentContext } from './module.ts';
import { runPasses } from './passes.ts';

const log = pino({ level: 'silent' });

/** One object, changed by hand; its watch yields each change. */
class Source implements ListWatchSource<KubeObject> {
  rv = 1;
  #push: ((e: WatchEvent<KubeObject>) => void) | undefined;

  change(): void {
    this.rv++;
    this.#push?.({ type: 'MODIFIED', object: this.#object() });
  }

  #object(): KubeObject {
    return { metadata: { name: 'o', namespace: 'ns', resourceVersion: String(this.rv) } };
  }

  async list(): Promise<ListResult<KubeObject>> {
    return { items: [this.#object()], resourceVersion: String(this.rv) };
  }

  watch(_options: unknown, signal: AbortSignal): AsyncIterable<WatchEvent<KubeObject>> {
    const queue: WatchEvent<KubeObject>[] = [];
    let wake: (() => void) | undefined;
    this.#push = (e) => {
      queue.push(e);
      wake?.();
    };
    signal.addEventListener('abort', () => wake?.());
    return (async function* () {
      while (!signal.aborted) {
        if (queue.length === 0) await new Promise<void>((r) => (wake = r));
        else yield queue.shift()!;
      }
    })();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function setup() {
  const clock = new FakeClock();
  const source = new Source();
  const informer = new Informer<KubeObject>({ name: 'objects', source, clock, log });
  const abort = new AbortController();
  const ctx: AgentContext = {
    nodeName: 'n',
    namespace: 'prepull-system',
    podName: 'agent',
    client: {} as KubeClient,
    clock,
    log,
    signal: abort.signal,
    report: () => {},
  };
  return { clock, source, informer, abort, ctx };
}

describe('runPasses', () => {
  it('passes once synced, after each change, and on the re-check; a change during a pass runs the next at once', async () => {
    const { clock, source, informer, abort, ctx } = setup();
    let passes = 0;
    let changeDuringPass = false;
    const done = runPasses(ctx, [informer], 60_000, async () => {
      passes++;
      if (changeDuringPass) {
        changeDuringPass = false;
        source.change();
        await settle();
      }
    });
    await settle();
    expect(passes).toBe(1);
    source.change();
    await settle();
    expect(passes).toBe(2);
    clock.advance(59_999);
    await settle();
    expect(passes).toBe(2);
    clock.advance(1);
    await settle();
    expect(passes).toBe(3);
    // The change lands while the pass runs: no sleep in between.
    changeDuringPass = true;
    source.change();
    await settle();
    await settle();
    expect(passes).toBe(5);
    abort.abort();
    await done;
    // Stopped, informers included: a change now runs nothing.
    source.change();
    clock.advance(120_000);
    await settle();
    expect(passes).toBe(5);
  });

  it('returns when aborted before the informers sync', async () => {
    const { informer, abort, ctx } = setup();
    abort.abort();
    let passes = 0;
    await runPasses(ctx, [informer], 60_000, async () => {
      passes++;
    });
    expect(passes).toBe(0);
  });
});
