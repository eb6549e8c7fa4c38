import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Node, Secret } from '../../kube/objects.ts';
import { hostFiles } from '../node/files.ts';
import { nodeCredsPass, selectedCredentials } from './module.ts';
import type { NodeCredential } from './plan.ts';

const node: Node = { metadata: { name: 'n1', labels: { pool: 'gpu' } } };
const config = (auth: string) =>
  Buffer.from(JSON.stringify({ auths: { 'r.local:5000': { auth } } })).toString('base64');

function copy(name: string, selector: unknown, extra: Partial<Secret['metadata']> = {}): Secret {
  return {
    metadata: {
      name: `node-credentials.${name}`,
      namespace: 'prepull-system',
      resourceVersion: '41',
      annotations: {
        'prepull.dev/node-selector': JSON.stringify(selector),
        'prepull.dev/registrycredential-created': '2026-01-01T00:00:00Z',
      },
      ownerReferences: [
        { apiVersion: 'prepull.dev/v1alpha1', kind: 'RegistryCredential', name, uid: `uid-${name}` },
      ],
      ...extra,
    },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': config('dTpw') },
  };
}

describe('selectedCredentials', () => {
  it('reads the copies that select the node; others, ones being deleted and unowned ones select nothing', () => {
    const selected = selectedCredentials(
      [
        copy('gpu', { matchLabels: { pool: 'gpu' } }),
        copy('all', {}),
        copy('cpu', { matchLabels: { pool: 'cpu' } }),
        copy('going', {}, { deletionTimestamp: '2026-01-02T00:00:00Z' }),
        copy('orphan', {}, { ownerReferences: [] }),
      ],
      node,
    );
    expect(selected.map((c) => [c.name, c.uid, c.resourceVersion])).toEqual([
      ['gpu', 'uid-gpu', '41'],
      ['all', 'uid-all', '41'],
    ]);
    expect(selected[0]?.auths).toEqual({ 'r.local:5000': { auth: 'dTpw' } });
  });
});

describe('nodeCredsPass', () => {
  const setUp = () => {
    const root = mkdtempSync(join(tmpdir(), 'nodecreds-'));
    // A node has both: the kubelet's root directory, and the agent's state directory (its hostPath volume).
    mkdirSync(join(root, 'var/lib/kubelet/pods'), { recursive: true });
    mkdirSync(join(root, 'var/lib/prepull/agent'), { recursive: true });
    const pass = nodeCredsPass({
      files: hostFiles(root),
      statePath: '/var/lib/prepull/agent/nodecreds.json',
      kubeletRootDir: '/var/lib/kubelet',
      configFile: '/var/lib/kubelet/config.json',
      legacyFile: '/var/lib/kubelet/.dockercfg',
      log: pino({ level: 'silent' }),
    });
    return { root, pass, file: join(root, 'var/lib/kubelet/config.json') };
  };
  const cred: NodeCredential = {
    name: 'a',
    uid: 'uid-a',
    resourceVersion: '41',
    created: '2026-01-01T00:00:00Z',
    auths: { 'r.local:5000': { auth: 'dTpw' } },
  };

  it('writes config.json with mode 0600, leaves no temporary file, and removes it again', async () => {
    const { root, pass, file } = setUp();
    const report = await pass([cred]);
    expect(report.credentials.map((c) => c.reason)).toEqual(['Applied']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ auths: { 'r.local:5000': { auth: 'dTpw' } } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'var/lib/prepull/agent/nodecreds.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(root, 'var/lib/kubelet')).sort()).toEqual(['config.json', 'pods']);
    await pass([]);
    expect(readdirSync(join(root, 'var/lib/kubelet'))).toEqual(['pods']);
  });

  it('restores a file that was there byte for byte', async () => {
    const { pass, file } = setUp();
    const theirs = '{ "auths": { "quay.io": { "auth": "eDp5" } } }\n';
    writeFileSync(file, theirs, { mode: 0o600 });
    await pass([cred]);
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).auths)).toEqual(['quay.io', 'r.local:5000']);
    await pass([]);
    expect(readFileSync(file, 'utf8')).toBe(theirs);
  });

  it('writes nothing where no kubelet looks, and says which flag to set', async () => {
    const { pass, root } = setUp();
    rmSync(join(root, 'var/lib/kubelet/pods'), { recursive: true });
    const report = await pass([cred]);
    expect(report.credentials[0]).toMatchObject({ reason: 'KubeletRootNotFound' });
    expect(report.credentials[0]?.message).toContain('--kubelet-root-dir');
    expect(readdirSync(join(root, 'var/lib/kubelet'))).toEqual([]);
  });

  it('reports a failed write as WriteFailed, naming the file and no content', async () => {
    const { pass, file, root } = setUp();
    // A state file this agent did not write: nothing is assumed Prepull's, nothing is written.
    const state = join(root, 'var/lib/prepull/agent/nodecreds.json');
    writeFileSync(file, '{}');
    writeFileSync(state, 'not json');
    const report = await pass([cred]);
    expect(report.credentials[0]).toMatchObject({ reason: 'WriteFailed' });
    expect(report.credentials[0]?.message).toContain('/var/lib/kubelet/config.json');
    expect(report.credentials[0]?.message).not.toContain('dTpw');
  });
});
