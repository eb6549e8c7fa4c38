/**
 * One pass of the nodecreds module, decided without I/O: given the kubelet's
 * config.json as it is, the module's state and the credentials that select
 * the node, the file to write (or remove), the state after it, and a result
 * per RegistryCredential. Pure.
 *
 * Merge policy: Prepull adds, replaces and removes only its own entries of
 * `auths`; every other byte of the file stays (config-json.ts). A key that is
 * already there and not Prepull's is a Conflict for the credential that
 * wants it, never overwritten. Two credentials for one registry host on a
 * node: the older one has it, the other gets HostClaimed. When Prepull
 * created the file and nothing is left in it, the file goes again, so a node
 * ends exactly as it was.
 */
import { Reason } from '../../api/conditions.ts';
import { compareStrings } from '../../runtime/order.ts';
import { authEntries, editAuths, isEmptyConfig, readConfig, removeAuthsKey } from './config-json.ts';
import type { NodeCredentialResult } from './protocol.ts';
import { isOurs, type NodeCredsState, type OwnedEntry, sha256Of } from './state.ts';

/** A RegistryCredential that selects this node, as its node copy gives it. */
export interface NodeCredential {
  name: string;
  uid: string;
  /** The node copy's resourceVersion: what the report says the result is for. */
  resourceVersion: string;
  /** The RegistryCredential's creationTimestamp: the older one has a host both want. */
  created: string;
  /** Its dockerconfigjson `auths`: registry key → entry object. */
  auths: Record<string, unknown>;
}

export interface NodeCredsPlanInput {
  /** The kubelet's config.json path on the host, for messages. */
  configFile: string;
  /** Its content; undefined when there is none. */
  current: string | undefined;
  state: NodeCredsState;
  credentials: NodeCredential[];
  /**
   * A credentials file the kubelet reads today and would stop reading once
   * config.json exists (it reads only the first file it finds), if any.
   */
  shadowed?: string;
}

export interface NodeCredsPlan {
  /** What to do with the file. */
  action: 'keep' | 'write' | 'remove';
  /** The new content, for `write`. */
  content?: string;
  /** The state once the action is done. */
  state: NodeCredsState;
  results: NodeCredentialResult[];
}

/** The registry a key names, as the kubelet matches it: no scheme, no trailing slash, lower case. */
export function registryOfKey(key: string): string {
  return key
    .replace(/^https?:\/\//i, '')
    .replace(/\/+$/, '')
    .toLowerCase();
}

/** Decides the pass. */
export function planNodeCredentials(input: NodeCredsPlanInput): NodeCredsPlan {
  const { configFile, current, state } = input;
  const credentials = [...input.credentials].sort(
    (a, b) => compareStrings(a.created, b.created) || compareStrings(a.name, b.name),
  );
  const result = (c: NodeCredential, reason: string, message: string): NodeCredentialResult => ({
    name: c.name,
    uid: c.uid,
    resourceVersion: c.resourceVersion,
    reason,
    message,
  });

  const read = current === undefined ? undefined : readConfig(current);
  if (read && !read.ok) {
    return {
      action: 'keep',
      state,
      results: credentials.map((c) =>
        result(
          c,
          Reason.ConfigInvalid,
          `${configFile} ${read.problem}; Prepull merges only into a JSON object and leaves this file alone`,
        ),
      ),
    };
  }
  const present = current !== undefined && read?.ok ? authEntries(current, read.view) : new Map();

  // Prepull's entries still in the file as it wrote them; the others are someone's now.
  const owned = new Map<string, OwnedEntry>();
  for (const entry of state.entries) {
    const values = present.get(entry.key);
    if (values?.length === 1 && isOurs(entry, values[0]!)) owned.set(entry.key, entry);
  }
  const foreign = new Map<string, string>();
  for (const key of present.keys()) if (!owned.has(key)) foreign.set(registryOfKey(key), key);

  if (current === undefined && input.shadowed && credentials.length > 0) {
    const message = `creating ${configFile} would hide ${input.shadowed} from the kubelet, which reads only the first credentials file it finds; merge ${input.shadowed} into ${configFile} (or remove it) to let Prepull write there`;
    return { action: 'keep', state, results: credentials.map((c) => result(c, Reason.Conflict, message)) };
  }

  const wanted = new Map<string, { value: string; credential: NodeCredential }>();
  const claimedBy = new Map<string, NodeCredential>();
  const results: NodeCredentialResult[] = [];
  for (const c of credentials) {
    const problems: Array<{ reason: string; message: string }> = [];
    const hosts = Object.keys(c.auths).sort(compareStrings);
    for (const key of hosts) {
      const registry = registryOfKey(key);
      const holder = claimedBy.get(registry);
      if (holder) {
        problems.push({
          reason: Reason.HostClaimed,
          message: `RegistryCredential ${holder.name} is older and sets ${registry} on this node; one registry takes one RegistryCredential`,
        });
        continue;
      }
      const theirs = foreign.get(registry);
      if (theirs !== undefined) {
        problems.push({
          reason: Reason.Conflict,
          message: `${configFile} already has an entry for ${theirs} that is not Prepull's; Prepull never overwrites it. Remove it to let this RegistryCredential set ${registry}`,
        });
        continue;
      }
      claimedBy.set(registry, c);
      wanted.set(key, { value: JSON.stringify(c.auths[key]), credential: c });
    }
    const first = problems[0];
    results.push(
      first
        ? result(c, first.reason, problems.map((p) => p.message).join('; '))
        : result(
            c,
            Reason.Applied,
            hosts.length > 0
              ? `${configFile} has ${hosts.map(registryOfKey).join(', ')}`
              : `the secret has no registries; nothing to write in ${configFile}`,
          ),
    );
  }

  const set = new Map<string, string>();
  for (const [key, { value }] of wanted) {
    const values = present.get(key);
    if (!(values?.length === 1 && values[0] === value)) set.set(key, value);
  }
  const remove = new Set([...owned.keys()].filter((key) => !wanted.has(key)));
  const next: NodeCredsState = {
    version: 1,
    createdFile: current === undefined ? set.size > 0 : state.createdFile,
    addedAuths:
      current !== undefined && read?.ok && !read.view.auths
        ? set.size > 0
        : state.addedAuths && current !== undefined,
    entries: [...wanted].map(([key, { value, credential }]) => ({
      key,
      sha256: sha256Of(value),
      credential: { name: credential.name, uid: credential.uid },
    })),
  };
  if (set.size === 0 && remove.size === 0) {
    return { action: 'keep', state: current === undefined ? { ...next, createdFile: false } : next, results };
  }

  let content = editAuths(current, { set, remove });
  if (next.addedAuths && next.entries.length === 0) {
    content = removeAuthsKey(content);
    next.addedAuths = false;
  }
  if (next.createdFile && next.entries.length === 0 && isEmptyConfig(content)) {
    return { action: 'remove', state: { ...next, createdFile: false, addedAuths: false }, results };
  }
  return { action: 'write', content, state: next, results };
}
