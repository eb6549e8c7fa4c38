/**
 * What `spec.nodes` asks of the RegistryCredential controller: the node copy
 * of its credentials in Prepull's own namespace (the protocol is
 * src/agent/nodecreds/protocol.ts), which the node agents read and merge
 * into the kubelet's config.json on the nodes it selects, and whether the
 * copy there needs a write. Pure: same input, deep-equal output.
 */
import {
  CREATED_ANNOTATION,
  NODE_CREDENTIAL_LABEL,
  NODE_SELECTOR_ANNOTATION,
  nodeCopyName,
} from '../../agent/nodecreds/protocol.ts';
import type { RegistryCredential } from '../../api/registrycredential.ts';
import type { Secret } from '../../kube/objects.ts';
import { CONTENT_HASH_ANNOTATION, CREDENTIAL_LABEL, credentialLabelValue } from './labels.ts';
import { isOwnedBy, renderCopy } from './render.ts';

/**
 * The node copy for `rc` in `namespace` (Prepull's), or undefined when it has
 * no `spec.nodes`. Like every copy it is labelled as Prepull's and owned by
 * the RegistryCredential, so the garbage collector removes it with it (and
 * the agents then remove the entries); it also carries the node selector and
 * the object's creation time, which is all the agents need besides it.
 */
export function renderNodeCopy(
  rc: RegistryCredential,
  namespace: string,
  dockerConfigJson: string,
): Secret | undefined {
  const nodes = rc.spec.nodes;
  if (!nodes) return undefined;
  const copy = renderCopy(rc, namespace, dockerConfigJson);
  // Without the namespace copies' hash (the data itself is compared) and label, so their
  // informer never sees a node copy as one of its own.
  const { [CONTENT_HASH_ANNOTATION]: _hash, ...rest } = copy.metadata.annotations ?? {};
  return {
    ...copy,
    metadata: {
      ...copy.metadata,
      name: nodeCopyName(rc.metadata.name ?? ''),
      labels: {
        ...Object.fromEntries(
          Object.entries(copy.metadata.labels ?? {}).filter(([k]) => k !== CREDENTIAL_LABEL),
        ),
        [NODE_CREDENTIAL_LABEL]: credentialLabelValue(rc.metadata.name ?? ''),
      },
      annotations: {
        ...rest,
        [NODE_SELECTOR_ANNOTATION]: JSON.stringify(nodes.nodeSelector),
        [CREATED_ANNOTATION]: rc.metadata.creationTimestamp ?? '',
      },
    },
  };
}

/** What to do with the secret at the node copy's place. */
export type NodeCopyAction = 'apply' | 'keep' | 'delete' | 'conflict' | 'none';

/** Compares the secret at the node copy's place (existing) with the one wanted (undefined: none). */
export function planNodeCopy(
  existing: Secret | undefined,
  desired: Secret | undefined,
  uid: string,
): NodeCopyAction {
  if (existing && !isOwnedBy(existing, uid)) return desired ? 'conflict' : 'none';
  if (!desired) return existing ? 'delete' : 'none';
  if (!existing || existing.type !== desired.type) return 'apply';
  const same = (a: Record<string, string> = {}, b: Record<string, string> = {}) =>
    Object.entries(b).every(([k, v]) => a[k] === v);
  const current =
    same(existing.data, desired.data) &&
    Object.keys(existing.data ?? {}).length === Object.keys(desired.data ?? {}).length &&
    same(existing.metadata.labels, desired.metadata.labels) &&
    same(existing.metadata.annotations, desired.metadata.annotations);
  return current ? 'keep' : 'apply';
}
