/**
 * The node credentials protocol, owned here and nowhere else: how the
 * RegistryCredential controller hands a credential to the node agents (a
 * labelled copy of the secret in Prepull's own namespace, carrying the node
 * selector), and what the agent's `nodecreds` module reports back per node
 * (the pod annotation `prepull.dev/report.nodecreds`). The controller writes
 * the copies (src/controllers/registrycredential/node-copy.ts); the agent
 * reads them (module.ts). Pure.
 */
import { z } from 'zod';
import { GROUP } from '../../api/group.ts';
import { MANAGED_BY_LABEL, MANAGER_NAME } from '../../controllers/labels.ts';
import { credentialLabelValue } from '../../controllers/registrycredential/labels.ts';

/** The agent module that writes the kubelet's config.json; names its report annotation. */
export const NODECREDS_AGENT_MODULE = 'nodecreds';

/** Label on a node copy: the RegistryCredential it is for (its {@link credentialLabelValue}). */
export const NODE_CREDENTIAL_LABEL = `${GROUP}/node-credential`;
/** Selects every node copy: the agent's and the controller's informer (in Prepull's namespace only). */
export const NODE_COPIES_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGER_NAME},${NODE_CREDENTIAL_LABEL}`;
/** Annotation on a node copy: the RegistryCredential's `spec.nodes.nodeSelector`, as JSON. */
export const NODE_SELECTOR_ANNOTATION = `${GROUP}/node-selector`;
/** Annotation on a node copy: when its RegistryCredential was created (claim order between two for one host). */
export const CREATED_ANNOTATION = `${GROUP}/registrycredential-created`;

/** The node copy's name in Prepull's namespace: one per RegistryCredential, never a user's name. */
export function nodeCopyName(registryCredential: string): string {
  return `node-credentials.${credentialLabelValue(registryCredential)}`;
}

/**
 * What one node's agent reports about the node copies that select its node:
 * per RegistryCredential (by uid), the copy's resourceVersion it acted on,
 * and Applied or the reason it could not be. Messages name hosts and files,
 * never credentials.
 */
export const nodeCredentialsReportSchema = z.object({
  /** The kubelet's config.json the agent writes. */
  configFile: z.string().max(4096).optional(),
  credentials: z
    .array(
      z.object({
        name: z.string().max(253),
        uid: z.string().max(64),
        /** The node copy's resourceVersion this result is for. */
        resourceVersion: z.string().max(64),
        reason: z.string().max(64),
        message: z.string().max(1024),
      }),
    )
    .max(1024),
});
export type NodeCredentialsReport = z.infer<typeof nodeCredentialsReportSchema>;
export type NodeCredentialResult = NodeCredentialsReport['credentials'][number];
