import { describe, expect, it } from 'vitest';
import {
  AUTHORIZATION_KEY,
  credentialFromCopy,
  credentialFromSource,
  credentialsSecretOf,
  DOWNLOAD_CREDENTIALS_LABEL,
  downloadCredentialsCopyName,
  PROBLEM_ANNOTATION,
  renderCredentialsCopy,
  sourceKeyOfCopy,
} from './download-credentials.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credentialFromSource', () => {
  it('gives HTTP Basic for username and password, Bearer for a token', () => {
    expect(credentialFromSource({ data: { username: b64('u'), password: b64('p@ss') } }, 'a', 's')).toEqual({
      ok: true,
      authorization: `Basic ${b64('u:p@ss')}`,
    });
    expect(credentialFromSource({ data: { token: b64('abc.def\n') } }, 'a', 's')).toEqual({
      ok: true,
      authorization: 'Bearer abc.def',
    });
  });

  it('says why a Secret gives nothing, naming it and never a value', () => {
    const missing = credentialFromSource(undefined, 'team-a', 'dl');
    expect(missing).toEqual({
      ok: false,
      problem: 'the Secret dl (tarball.credentialsSecretRef) in namespace team-a does not exist',
    });
    const bad: Record<string, string>[] = [
      { other: b64('hunter2') },
      { username: b64('u:x'), password: b64('hunter2') },
      { username: b64('u'), password: b64('hunter2'), token: b64('hunter2') },
      { token: b64('two words-hunter2') },
      { username: b64('u'), password: b64('hunter2\r\nX: y') },
    ];
    for (const data of bad) {
      const got = credentialFromSource({ data }, 'team-a', 'dl');
      expect(got.ok).toBe(false);
      expect(JSON.stringify(got)).not.toContain('hunter2');
    }
  });
});

describe('copies', () => {
  it('are named by a hash of the source, one per namespace and name', () => {
    const name = downloadCredentialsCopyName('team-a', 'dl');
    expect(name).toMatch(/^prepull-download-[a-f0-9]{32}$/);
    expect(downloadCredentialsCopyName('team-b', 'dl')).not.toBe(name);
    expect(downloadCredentialsCopyName('team-a/dl', '')).not.toBe(name);
  });

  it('hold only the Authorization value, and read back as it', () => {
    const copy = renderCredentialsCopy('prepull-system', 'team-a', 'dl', {
      ok: true,
      authorization: 'Bearer t',
    });
    expect(copy.metadata).toMatchObject({
      name: downloadCredentialsCopyName('team-a', 'dl'),
      namespace: 'prepull-system',
      labels: { [DOWNLOAD_CREDENTIALS_LABEL]: 'copy', 'app.kubernetes.io/managed-by': 'prepull' },
    });
    expect(Object.keys(copy.data ?? {})).toEqual([AUTHORIZATION_KEY]);
    expect(sourceKeyOfCopy(copy)).toBe('team-a/dl');
    expect(credentialFromCopy(copy, 'team-a', 'dl')).toEqual({ ok: true, authorization: 'Bearer t' });
  });

  it('carry the problem instead of data, and answer for their own source only', () => {
    const problem = renderCredentialsCopy('prepull-system', 'team-a', 'dl', { ok: false, problem: 'gone' });
    expect(problem.data).toEqual({});
    expect(problem.metadata.annotations?.[PROBLEM_ANNOTATION]).toBe('gone');
    expect(credentialFromCopy(problem, 'team-a', 'dl')).toEqual({ ok: false, problem: 'gone' });
    const good = renderCredentialsCopy('prepull-system', 'team-a', 'dl', {
      ok: true,
      authorization: 'Bearer t',
    });
    expect(credentialFromCopy(good, 'team-b', 'dl').ok).toBe(false);
    expect(credentialFromCopy(undefined, 'team-a', 'dl')).toMatchObject({ ok: false });
  });

  it('are for url sources only', () => {
    expect(
      credentialsSecretOf({ tarball: { url: 'https://x/a.tar', credentialsSecretRef: { name: 'dl' } } }),
    ).toBe('dl');
    expect(credentialsSecretOf({ tarball: { hostPath: '/a.tar' } })).toBeUndefined();
    expect(credentialsSecretOf({})).toBeUndefined();
  });
});
