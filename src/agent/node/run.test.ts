import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.ts';
import type { AgentContext, AgentModule } from './module.ts';
import { agentIdentityFromEnv, startAgent } from './run.ts';

const identity = { nodeName: 'node-1', namespace: 'prepull-system', podName: 'prepull-agent-abcde' };

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the node agent', () => {
  it('needs NODE_NAME, POD_NAMESPACE and POD_NAME, and names what is missing', () => {
    expect(() => agentIdentityFromEnv({ NODE_NAME: 'n' })).toThrow(/POD_NAMESPACE, POD_NAME/);
    expect(agentIdentityFromEnv({ NODE_NAME: 'n', POD_NAMESPACE: 'ns', POD_NAME: 'p' })).toEqual({
      nodeName: 'n',
      namespace: 'ns',
      podName: 'p',
    });
  });

  it('refuses two modules of one name, and a name that cannot name an annotation', () => {
    const idle: AgentModule = { name: 'same', run: async () => {} };
    const base = { kc: kubeConfig(), log: pino({ level: 'silent' }), clock: new FakeClock(), identity };
    expect(() => startAgent({ ...base, modules: [idle, idle] })).toThrow(/two agent modules/);
    expect(() => startAgent({ ...base, modules: [{ ...idle, name: 'Bad_Name' }] })).toThrow(/DNS label/);
  });

  it("gives each module the node's context, starts a failed one again after a back-off, and stops them", async () => {
    const clock = new FakeClock();
    const contexts: AgentContext[] = [];
    let runs = 0;
    const flaky: AgentModule = {
      name: 'flaky',
      run: async (context) => {
        contexts.push(context);
        runs++;
        if (runs === 1) throw new Error('first run fails');
        await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve()));
      },
    };
    const agent = startAgent({
      kc: kubeConfig(),
      log: pino({ level: 'silent' }),
      clock,
      identity,
      modules: [flaky],
      restartBackoff: { baseMs: 1000, maxMs: 1000 },
    });
    await settle();
    expect(runs).toBe(1);
    clock.advance(999);
    await settle();
    expect(runs).toBe(1);
    clock.advance(1);
    await settle();
    expect(runs).toBe(2);
    expect(contexts[1]).toMatchObject({
      nodeName: 'node-1',
      namespace: 'prepull-system',
      podName: identity.podName,
    });
    await agent.stop();
    expect(contexts[1]?.signal.aborted).toBe(true);
  });
});
