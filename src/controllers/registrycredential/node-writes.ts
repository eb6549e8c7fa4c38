/**
 * The RegistryCredential controller's part of `spec.nodes`: keeps the node
 * copy in Prepull's namespace as node-copy.ts renders it (a server-side apply
 * when it differs, a delete when spec.nodes goes), and reads what each
 * selected node's agent reports about it. A pass where the copy is current
 * makes no request. I/O through the injected client; the caches are read.
 */
import {
  NODECREDS_AGENT_MODULE,
  nodeCopyName,
  nodeCredentialsReportSchema,
} from '../../agent/nodecreds/protocol.ts';
import { Reason } from '../../api/conditions.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { KubeClient } from '../../kube/client.ts';
import { Resources } from '../../kube/resources.ts';
import type { ConsistencyStore } from '../../runtime/consistency.ts';
import { agentReport } from '../agent-reports.ts';
import { matchesLabelSelector } from '../requests.ts';
import type { RegistryCredentialInformers } from './informers.ts';
import { planNodeCopy, renderNodeCopy } from './node-copy.ts';
import { type NodeCredentialOutcome, nodeCredentialOutcome } from './node-status.ts';

export interface NodeCopyInput {
  client: KubeClient;
  informers: RegistryCredentialInformers;
  /** Prepull's namespace. */
  namespace: string;
  rc: RegistryCredential;
  /** The source's credentials as every copy carries them (base64 dockerconfigjson). */
  dockerConfigJson: string;
  store: ConsistencyStore;
  fieldManager: string;
}

/**
 * Brings the node copy in line with `rc`; returns each selected node's
 * outcome, or undefined when `rc` has no spec.nodes (the copy, if any, is
 * deleted and the agents remove its entries).
 */
export async function syncNodeCopy(input: NodeCopyInput): Promise<NodeCredentialOutcome[] | undefined> {
  const { client, informers, namespace, rc, store } = input;
  const uid = rc.metadata.uid ?? '';
  const name = nodeCopyName(rc.metadata.name ?? '');
  const key = `${namespace}/${name}`;
  const existing = informers.nodeCopies.get(key);
  const desired = renderNodeCopy(rc, namespace, input.dockerConfigJson);
  // Right after our write the cache still shows the old copy: act on what we wrote.
  const writtenVersion = store.written<string>(Resources.secrets, key, existing);
  let resourceVersion = writtenVersion ?? existing?.metadata.resourceVersion;
  const action = writtenVersion === undefined ? planNodeCopy(existing, desired, uid) : 'keep';
  if (action === 'apply' && desired) {
    const body = existing
      ? { ...desired, metadata: { ...desired.metadata, uid: existing.metadata.uid } }
      : desired;
    const written = await client.apply(Resources.secrets, body, {
      fieldManager: input.fieldManager,
      force: true,
    });
    resourceVersion = written.metadata.resourceVersion;
    store.wrote(Resources.secrets, key, existing?.metadata.resourceVersion, { value: resourceVersion });
  } else if (action === 'delete' && existing) {
    await client.delete(Resources.secrets, name, namespace, {
      ...(existing.metadata.uid ? { uid: existing.metadata.uid } : {}),
    });
    store.wrote(Resources.secrets, key, existing.metadata.resourceVersion);
  }
  if (!rc.spec.nodes) return undefined;

  const selected = informers.nodes
    .list()
    .filter((node) => matchesLabelSelector(rc.spec.nodes?.nodeSelector ?? {}, node.metadata.labels))
    .map((node) => node.metadata.name ?? '');
  if (action === 'conflict') {
    const message = `secret ${key} exists and is not this RegistryCredential's; Prepull never overwrites it`;
    return selected.map((node) => ({ node, state: 'failed', reason: Reason.Conflict, message }));
  }
  return selected.map((node) => {
    const read = agentReport(informers.agentPods, node, NODECREDS_AGENT_MODULE, nodeCredentialsReportSchema);
    // An unreadable report counts as none: the node shows as pending, never as applied.
    return nodeCredentialOutcome(
      rc,
      node,
      resourceVersion,
      read.state === 'present' ? read.report : undefined,
    );
  });
}
