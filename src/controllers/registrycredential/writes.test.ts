import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import { ApiError } from '../../kube/errors.ts';
import type { Secret, ServiceAccount } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { ConsistencyStore } from '../../runtime/consistency.ts';
import type { NamespaceWork } from './plan.ts';
import { renderCopy } from './render.ts';
import { createSyncWriter } from './writes.ts';

const log = pino({ level: 'silent' });
const SECRET_TEXT = 'the-password-itself';
const rc: RegistryCredential = {
  metadata: { name: 'corp', uid: 'uid-1' },
  spec: {
    source: { secretRef: { namespace: 'vault', name: 'pull' } },
    target: { secretName: 'regcred', namespaces: ['a'] },
  },
};
const copy = (namespace: string) => renderCopy(rc, namespace, Buffer.from(SECRET_TEXT).toString('base64'));

/** Records every call; a call fails when `failures` holds an error for its `verb namespace`. */
class FakeClient {
  calls: Array<{ verb: string; namespace?: string; body?: unknown; options?: unknown }> = [];
  failures = new Map<string, Error>();

  #call(verb: string, namespace: string | undefined, body?: unknown, options?: unknown) {
    this.calls.push({ verb, namespace, body, options });
    const failure = this.failures.get(`${verb} ${namespace}`);
    if (failure) throw failure;
  }
  async create(_t: unknown, obj: Secret) {
    this.#call('create', obj.metadata.namespace, obj);
    return obj;
  }
  async apply(_t: unknown, obj: Secret, options: unknown) {
    this.#call('apply', obj.metadata.namespace, obj, options);
    return obj;
  }
  async patch(_t: unknown, _name: string, namespace: string, patch: unknown) {
    this.#call('patch', namespace, patch);
    return {};
  }
  async delete(_t: unknown, _name: string, namespace: string, options: unknown) {
    this.#call('delete', namespace, undefined, options);
    return true;
  }
}

function work(namespace: string, over: Partial<NamespaceWork>): NamespaceWork {
  return { namespace, target: true, conflict: false, serviceAccounts: [], deletions: [], ...over };
}

function setup() {
  const client = new FakeClient();
  const pending = new ConsistencyStore();
  return {
    client,
    pending,
    writer: createSyncWriter(client as unknown as KubeClient, pending, 'prepull/test'),
  };
}

const sa: ServiceAccount = { metadata: { name: 'default', namespace: 'a', resourceVersion: '4' } };
const ops = [{ op: 'test' as const, path: '/metadata/resourceVersion', value: '4' }];

describe('createSyncWriter', () => {
  it('creates missing copies, applies updates pinned to the UID, and remembers both as pending', async () => {
    const { client, pending, writer } = setup();
    const existing = {
      ...copy('b'),
      metadata: { ...copy('b').metadata, uid: 'secret-uid', resourceVersion: '9' },
    };
    const failures = await writer.carryOut(
      [
        work('a', { copy: { action: 'create', desired: copy('a') }, serviceAccounts: [{ sa, ops }] }),
        work('b', { copy: { action: 'update', desired: copy('b'), existing } }),
        work('c', {}),
      ],
      log,
    );
    expect(failures).toEqual([]);
    expect(client.calls.map((c) => `${c.verb} ${c.namespace}`).sort()).toEqual([
      'apply b',
      'create a',
      'patch a',
    ]);
    const apply = client.calls.find((c) => c.verb === 'apply');
    expect(apply?.body).toMatchObject({ metadata: { uid: 'secret-uid' } });
    expect(apply?.options).toEqual({ fieldManager: 'prepull/test', force: true });
    // The ServiceAccount is patched after the copy exists.
    expect(client.calls.filter((c) => c.namespace === 'a').map((c) => c.verb)).toEqual(['create', 'patch']);
    expect(pending.isPending(Resources.secrets, 'a/regcred', undefined)).toBe(true);
    expect(pending.isPending(Resources.secrets, 'b/regcred', { metadata: { resourceVersion: '9' } })).toBe(
      true,
    );
    expect(
      pending.isPending(Resources.serviceAccounts, 'a/default', { metadata: { resourceVersion: '4' } }),
    ).toBe(true);
    // A secret and a ServiceAccount of the same key are different objects.
    expect(pending.isPending(Resources.secrets, 'a/default', { metadata: { resourceVersion: '4' } })).toBe(
      false,
    );
  });

  it('deletes stale copies with a UID precondition after their ServiceAccount entries, and recreates a copy of another type', async () => {
    const { client, writer } = setup();
    const stale = { ...copy('c'), metadata: { ...copy('c').metadata, uid: 'stale-uid' } };
    const opaque = { ...copy('d'), type: 'Opaque', metadata: { ...copy('d').metadata, uid: 'old-uid' } };
    await writer.carryOut(
      [
        work('c', {
          target: false,
          deletions: [stale],
          serviceAccounts: [{ sa: { ...sa, metadata: { ...sa.metadata, namespace: 'c' } }, ops }],
        }),
        work('d', { copy: { action: 'recreate', desired: copy('d'), existing: opaque } }),
      ],
      log,
    );
    expect(client.calls.filter((c) => c.namespace === 'c').map((c) => c.verb)).toEqual(['patch', 'delete']);
    expect(client.calls.find((c) => c.namespace === 'c' && c.verb === 'delete')?.options).toEqual({
      uid: 'stale-uid',
    });
    expect(client.calls.filter((c) => c.namespace === 'd').map((c) => c.verb)).toEqual(['delete', 'create']);
  });

  it("reports conflicts, and failures by status code only, never the server's text", async () => {
    const { client, writer } = setup();
    client.failures.set(
      'create b',
      new ApiError(403, 'Forbidden', `secrets is forbidden: ${SECRET_TEXT}`, 'create'),
    );
    client.failures.set('create c', new ApiError(409, 'AlreadyExists', `exists ${SECRET_TEXT}`, 'create'));
    client.failures.set('patch d', new ApiError(422, 'Invalid', `test failed ${SECRET_TEXT}`, 'patch'));
    client.failures.set(
      'create e',
      new ApiError(422, 'Invalid', `Invalid value: "${SECRET_TEXT}"`, 'create'),
    );
    const failures = await writer.carryOut(
      [
        work('a', { conflict: true }),
        work('b', { copy: { action: 'create', desired: copy('b') } }),
        work('c', { copy: { action: 'create', desired: copy('c') } }),
        work('d', {
          serviceAccounts: [{ sa: { ...sa, metadata: { ...sa.metadata, namespace: 'd' } }, ops }],
        }),
        work('e', { copy: { action: 'create', desired: copy('e') } }),
      ],
      log,
    );
    const byNamespace = Object.fromEntries(failures.map((f) => [f.namespace, f]));
    expect(byNamespace.a).toMatchObject({ reason: 'Conflict', retrying: false });
    expect(byNamespace.b).toMatchObject({
      reason: 'Forbidden',
      message: 'creating the secret: 403 Forbidden',
      retrying: true,
    });
    expect(byNamespace.c).toMatchObject({
      reason: 'SyncFailed',
      message: 'creating the secret: it appeared meanwhile',
    });
    expect(byNamespace.d).toMatchObject({ reason: 'SyncFailed', retrying: true });
    expect(byNamespace.d?.message).toContain('ServiceAccount default changed meanwhile');
    expect(byNamespace.e).toMatchObject({
      reason: 'SyncFailed',
      message: 'creating the secret: 422 Invalid',
    });
    expect(JSON.stringify(failures)).not.toContain(SECRET_TEXT);
  });
});
