import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../../kube/client.ts';
import { FakeClock } from '../../runtime/clock.ts';
import { ReportPublisher } from './reporter.ts';

interface Patch {
  name: string;
  namespace: string | undefined;
  body: { metadata: { annotations: Record<string, string> } };
}

/** A client whose pod patches are recorded, and fail while `failing` is set. */
function fakeClient() {
  const patches: Patch[] = [];
  const state = { failing: false };
  const client = {
    patch: async (_type: unknown, name: string, namespace: string | undefined, body: Patch['body']) => {
      if (state.failing) throw new Error('connection refused');
      patches.push({ name, namespace, body });
      return {};
    },
  } as unknown as KubeClient;
  return { client, patches, state };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A publisher for the pod prepull-system/agent-x over a fake client and clock. */
function publisherUnderTest(backoff?: { baseMs: number; maxMs: number }) {
  const clock = new FakeClock();
  const fake = fakeClient();
  const publisher = new ReportPublisher({
    client: fake.client,
    clock,
    log: pino({ level: 'silent' }),
    namespace: 'prepull-system',
    podName: 'agent-x',
    ...(backoff && { backoff }),
  });
  return { clock, publisher, ...fake };
}

describe('ReportPublisher', () => {
  it('writes a report once, on the agent pod, and not again while it is unchanged', async () => {
    const { clock, publisher, patches } = publisherUnderTest();
    publisher.publish('import', { images: [] });
    clock.advance(0);
    await settle();
    publisher.publish('import', { images: [] });
    clock.advance(1000);
    await settle();
    expect(patches).toEqual([
      {
        name: 'agent-x',
        namespace: 'prepull-system',
        body: { metadata: { annotations: { 'prepull.dev/report.import': '{"images":[]}' } } },
      },
    ]);
  });

  it('after a failed write, tries again with back-off and sends only the newest value', async () => {
    const { clock, publisher, patches, state } = publisherUnderTest({ baseMs: 500, maxMs: 500 });
    state.failing = true;
    publisher.publish('import', { n: 1 });
    clock.advance(0);
    await settle();
    publisher.publish('import', { n: 2 });
    publisher.publish('mirror', { hosts: [] });
    state.failing = false;
    clock.advance(499);
    await settle();
    expect(patches).toEqual([]);
    clock.advance(1);
    await settle();
    expect(patches.map((p) => p.body.metadata.annotations)).toEqual([
      { 'prepull.dev/report.import': '{"n":2}', 'prepull.dev/report.mirror': '{"hosts":[]}' },
    ]);
  });

  it('writes nothing once stopped', async () => {
    const { clock, publisher, patches } = publisherUnderTest();
    publisher.publish('import', {});
    await publisher.stop();
    clock.advance(1000);
    await settle();
    expect(patches).toEqual([]);
  });
});
