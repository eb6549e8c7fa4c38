import { describe, expect, it } from 'vitest';
import { editAuths, readConfig } from './config-json.ts';
import { type NodeCredential, planNodeCredentials } from './plan.ts';
import { EMPTY_STATE, inFlightState, isOurs, type NodeCredsState } from './state.ts';

const FILE = '/var/lib/kubelet/config.json';
const entry = (user: string) => ({ auth: Buffer.from(`${user}:pw`).toString('base64') });
const cred = (
  name: string,
  auths: Record<string, unknown>,
  created = '2026-01-01T00:00:00Z',
): NodeCredential => ({
  name,
  uid: `uid-${name}`,
  resourceVersion: '7',
  created,
  auths,
});
/** Someone else's file, in docker's own tab-indented style, with a key Prepull knows nothing of. */
const THEIRS =
  '{\n\t"auths": {\n\t\t"quay.io": {\n\t\t\t"auth": "dGhlaXJzOnB3"\n\t\t}\n\t},\n\t"HttpHeaders": {"X-A": "b"}\n}\n';

/** Runs passes like the module does: each plan's outcome is the next pass's input. */
function pass(current: string | undefined, state: NodeCredsState, credentials: NodeCredential[]) {
  const plan = planNodeCredentials({ configFile: FILE, current, state, credentials });
  const next = plan.action === 'write' ? plan.content : plan.action === 'remove' ? undefined : current;
  return { plan, next, state: plan.state };
}

describe('planNodeCredentials', () => {
  it('creates the file where there is none, mode aside, and removes it again when nothing is left', () => {
    const first = pass(undefined, EMPTY_STATE, [cred('a', { 'registry.local:5000': entry('a') })]);
    expect(first.plan.action).toBe('write');
    expect(JSON.parse(first.next!)).toEqual({ auths: { 'registry.local:5000': entry('a') } });
    expect(first.plan.results).toEqual([
      {
        name: 'a',
        uid: 'uid-a',
        resourceVersion: '7',
        reason: 'Applied',
        message: `${FILE} has registry.local:5000`,
      },
    ]);
    expect(first.state.createdFile).toBe(true);
    const again = pass(first.next, first.state, [cred('a', { 'registry.local:5000': entry('a') })]);
    expect(again.plan.action).toBe('keep');
    const gone = pass(first.next, first.state, []);
    expect(gone.plan.action).toBe('remove');
    expect(gone.state).toEqual(EMPTY_STATE);
  });

  it("merges into someone else's file and leaves every byte of theirs as it was", () => {
    const added = pass(THEIRS, EMPTY_STATE, [cred('a', { 'registry.local:5000': entry('a') })]);
    expect(added.plan.action).toBe('write');
    expect(added.next).toContain('"quay.io": {\n\t\t\t"auth": "dGhlaXJzOnB3"\n\t\t}');
    expect(JSON.parse(added.next!)).toEqual({
      auths: { 'quay.io': { auth: 'dGhlaXJzOnB3' }, 'registry.local:5000': entry('a') },
      HttpHeaders: { 'X-A': 'b' },
    });
    // Rotation replaces only Prepull's value.
    const rotated = pass(added.next, added.state, [cred('a', { 'registry.local:5000': entry('b') })]);
    expect(JSON.parse(rotated.next!).auths['registry.local:5000']).toEqual(entry('b'));
    // Removal gives back the very bytes.
    const removed = pass(rotated.next, rotated.state, []);
    expect(removed.plan.action).toBe('write');
    expect(removed.next).toBe(THEIRS);
    expect(removed.state.entries).toEqual([]);
  });

  it('adds auths to a file that has none and takes it away again', () => {
    const text = '{"credsStore": "desktop"}';
    const added = pass(text, EMPTY_STATE, [cred('a', { 'r.local': entry('a') })]);
    expect(JSON.parse(added.next!)).toEqual({ credsStore: 'desktop', auths: { 'r.local': entry('a') } });
    expect(pass(added.next, added.state, []).next).toBe(text);
  });

  it("never overwrites a host that is not Prepull's: a Conflict naming it, other hosts still written", () => {
    const { plan } = pass(THEIRS, EMPTY_STATE, [
      cred('a', { 'https://quay.io/': entry('a'), 'r.local': entry('a') }),
    ]);
    expect(plan.results[0]).toMatchObject({ reason: 'Conflict' });
    expect(plan.results[0]?.message).toContain('already has an entry for quay.io that is not Prepull');
    expect(JSON.parse(plan.content!).auths).toEqual({
      'quay.io': { auth: 'dGhlaXJzOnB3' },
      'r.local': entry('a'),
    });
  });

  it('leaves an entry someone edited after Prepull wrote it: it is theirs now', () => {
    const added = pass(undefined, EMPTY_STATE, [cred('a', { 'r.local': entry('a') })]);
    const edited = added.next!.replace(entry('a').auth, 'ZWRpdGVkOnB3');
    const after = pass(edited, added.state, []);
    expect(after.plan.action).toBe('keep');
    expect(after.state.entries).toEqual([]);
    expect(pass(edited, added.state, [cred('a', { 'r.local': entry('a') })]).plan.results[0]?.reason).toBe(
      'Conflict',
    );
  });

  it('gives a host two objects want to the older one; the other gets HostClaimed', () => {
    const { plan } = pass(undefined, EMPTY_STATE, [
      cred('young', { 'r.local': entry('y') }, '2026-02-01T00:00:00Z'),
      cred('old', { 'r.local': entry('o') }, '2026-01-01T00:00:00Z'),
    ]);
    expect(plan.results.map((r) => [r.name, r.reason])).toEqual([
      ['old', 'Applied'],
      ['young', 'HostClaimed'],
    ]);
    expect(JSON.parse(plan.content!).auths['r.local']).toEqual(entry('o'));
  });

  it('leaves a file that is not a JSON object alone, saying so', () => {
    const { plan } = pass('not json', EMPTY_STATE, [cred('a', { 'r.local': entry('a') })]);
    expect(plan.action).toBe('keep');
    expect(plan.results[0]).toMatchObject({ reason: 'ConfigInvalid' });
    expect(plan.results[0]?.message).toContain('is not valid JSON');
  });

  it('does not create config.json over a .dockercfg the kubelet reads today', () => {
    const plan = planNodeCredentials({
      configFile: FILE,
      current: undefined,
      state: EMPTY_STATE,
      credentials: [cred('a', { 'r.local': entry('a') })],
      shadowed: '/var/lib/kubelet/.dockercfg',
    });
    expect(plan.action).toBe('keep');
    expect(plan.results[0]?.reason).toBe('Conflict');
    expect(plan.results[0]?.message).toContain('would hide /var/lib/kubelet/.dockercfg');
  });

  it('knows its entries by the in-flight state whichever file a crash leaves', () => {
    const first = pass(undefined, EMPTY_STATE, [cred('a', { 'r.local': entry('a') })]);
    const rotated = pass(first.next, first.state, [cred('a', { 'r.local': entry('b') })]);
    const inFlight = inFlightState(first.state, rotated.state);
    const [owned] = inFlight.entries;
    expect(isOurs(owned!, JSON.stringify(entry('a')))).toBe(true);
    expect(isOurs(owned!, JSON.stringify(entry('b')))).toBe(true);
    // Crashed before the rename: the next pass still removes the old entry as Prepull's.
    expect(pass(first.next, inFlight, []).plan.action).toBe('remove');
  });
});

describe('editAuths', () => {
  it('removes entries wherever they sit, with their separators', () => {
    const text = '{"auths": {"a": {"auth": "1"}, "b": {"auth": "2"}, "c": {"auth": "3"}}}';
    const edit = (remove: string[]) => editAuths(text, { set: new Map(), remove: new Set(remove) });
    expect(edit(['a'])).toBe('{"auths": {"b": {"auth": "2"}, "c": {"auth": "3"}}}');
    expect(edit(['b'])).toBe('{"auths": {"a": {"auth": "1"}, "c": {"auth": "3"}}}');
    expect(edit(['c'])).toBe('{"auths": {"a": {"auth": "1"}, "b": {"auth": "2"}}}');
    expect(edit(['a', 'b'])).toBe('{"auths": {"c": {"auth": "3"}}}');
    expect(edit(['a', 'b', 'c'])).toBe('{"auths": {}}');
  });

  it('reads strings with escapes and nested values without losing its place', () => {
    const text = '{"x": ["}", {"y": "\\"{"}], "auths": {"a\\u0062": {"auth": "1"}}}';
    const read = readConfig(text);
    expect(read.ok && read.view.auths?.members.map((m) => m.key)).toEqual(['ab']);
  });
});
