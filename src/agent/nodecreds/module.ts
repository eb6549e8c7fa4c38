/**
 * The nodecreds module of the node agent: watches the node copies of
 * RegistryCredentials with `spec.nodes` (secrets in Prepull's own namespace,
 * protocol.ts) and its own Node, and after every change (and on a planned
 * re-check, which catches someone editing config.json) makes the kubelet's
 * config.json hold the credentials of the copies that select the node, and
 * nothing more of Prepull's (plan.ts). Then publishes a result per
 * RegistryCredential as its report. A copy that is deleted (its
 * RegistryCredential deleted, or `spec.nodes` dropped) or no longer selects
 * the node has its entries removed in the next pass. I/O.
 *
 * Writes are atomic (temporary file, fsync, rename, fsync of the directory;
 * mode 0600), so the kubelet never reads half a file. Nothing here logs
 * credentials: log lines and reports name RegistryCredentials, hosts and
 * files.
 */
import { join } from 'node:path';
import type { LabelSelector } from '../../api/common.ts';
import { Reason } from '../../api/conditions.ts';
import {
  credentialOwnerName,
  credentialOwnerUid,
  DOCKER_CONFIG_JSON_KEY,
} from '../../controllers/registrycredential/labels.ts';
import { matchesLabelSelector } from '../../controllers/requests.ts';
import type { Informer } from '../../kube/informer.ts';
import type { KubeObject, Node, Secret } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { hostFiles, type NodeFiles } from '../node/files.ts';
import type { AgentContext, AgentModule } from '../node/module.ts';
import { moduleInformer, ownNodeInformer, runPasses } from '../node/passes.ts';
import { fitReportEntries } from '../node/report.ts';
import { type NodeCredential, planNodeCredentials } from './plan.ts';
import {
  CREATED_ANNOTATION,
  NODE_COPIES_SELECTOR,
  NODE_SELECTOR_ANNOTATION,
  NODECREDS_AGENT_MODULE,
  type NodeCredentialsReport,
} from './protocol.ts';
import { inFlightState, loadState, saveState } from './state.ts';

/** How often a pass runs with nothing changed in the API: config.json can change under us. */
export const RECHECK_MS = 60_000;
/** The kubelet's default root directory (its --root-dir), where it looks for config.json first. */
export const DEFAULT_KUBELET_ROOT_DIR = '/var/lib/kubelet';

export interface NodeCredsModuleOptions {
  /** Where the agent sees the host's filesystem ('/host', or '/' in the host's mount namespace). */
  hostRoot: string;
  /** Host directory of the agent's state (the nodecreds state file lives in it). */
  stateDir: string;
  /** The kubelet's --root-dir on the host (default /var/lib/kubelet). */
  kubeletRootDir?: string;
}

/** A node copy, read: the credential it carries and the nodes it selects; undefined when it is not one. */
export function readNodeCopy(
  secret: Secret,
): { credential: NodeCredential; nodeSelector: LabelSelector } | undefined {
  const uid = credentialOwnerUid(secret);
  const name = credentialOwnerName(secret);
  const data = secret.data?.[DOCKER_CONFIG_JSON_KEY];
  const selectorText = secret.metadata.annotations?.[NODE_SELECTOR_ANNOTATION];
  if (!uid || !name || !data || !selectorText || secret.metadata.deletionTimestamp) return undefined;
  try {
    const config = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { auths?: unknown };
    const selector = JSON.parse(selectorText) as LabelSelector;
    const auths = config.auths;
    if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) return undefined;
    return {
      credential: {
        name,
        uid,
        resourceVersion: secret.metadata.resourceVersion ?? '',
        created: secret.metadata.annotations?.[CREATED_ANNOTATION] ?? '',
        auths: auths as Record<string, unknown>,
      },
      nodeSelector: selector,
    };
  } catch {
    // The controller writes these; one that does not parse selects no node.
    return undefined;
  }
}

/** The credentials of the copies that select `node`. */
export function selectedCredentials(copies: Secret[], node: Node): NodeCredential[] {
  const out: NodeCredential[] = [];
  for (const secret of copies) {
    const copy = readNodeCopy(secret);
    if (copy && matchesLabelSelector(copy.nodeSelector, node.metadata.labels)) out.push(copy.credential);
  }
  return out;
}

/** The nodecreds module, for the agent's module list. */
export function nodeCredsModule(options: NodeCredsModuleOptions): AgentModule {
  return { name: NODECREDS_AGENT_MODULE, run: (context) => runNodeCredsModule(context, options) };
}

/** Runs the module until `signal` aborts. */
export async function runNodeCredsModule(ctx: AgentContext, options: NodeCredsModuleOptions): Promise<void> {
  const { log, nodeName, namespace } = ctx;
  const copies = moduleInformer<Secret>(ctx, 'node-credential-copies', {
    type: Resources.secrets,
    namespace,
    labelSelector: NODE_COPIES_SELECTOR,
  });
  const nodes = ownNodeInformer(ctx);
  const rootDir = options.kubeletRootDir ?? DEFAULT_KUBELET_ROOT_DIR;
  const pass = nodeCredsPass({
    files: hostFiles(options.hostRoot),
    statePath: join(options.stateDir, 'nodecreds.json'),
    kubeletRootDir: rootDir,
    configFile: join(rootDir, 'config.json'),
    legacyFile: join(rootDir, '.dockercfg'),
    log,
  });
  await runPasses(ctx, [copies, nodes] as Informer<KubeObject>[], RECHECK_MS, async () => {
    const node = nodes.get(nodeName);
    if (node) ctx.report(fitReport(await pass(selectedCredentials(copies.list(), node))));
  });
}

export interface NodeCredsPassOptions {
  files: NodeFiles;
  statePath: string;
  /** The kubelet's root directory, a host path: it has a pods/ directory when it is the one in use. */
  kubeletRootDir: string;
  /** The kubelet's config.json, a host path. */
  configFile: string;
  /** The kubelet's legacy .dockercfg beside it, which a new config.json would hide. */
  legacyFile: string;
  log: AgentContext['log'];
}

/** One pass over the node's files: makes config.json hold `credentials`; returns the report. */
export function nodeCredsPass(options: NodeCredsPassOptions) {
  const { files, statePath, kubeletRootDir, configFile, legacyFile, log } = options;
  return async (credentials: NodeCredential[]): Promise<NodeCredentialsReport> => {
    try {
      // A config.json where no kubelet looks would be Applied and useless: say so instead.
      if (credentials.length > 0 && !(await files.exists(join(kubeletRootDir, 'pods')))) {
        const message = `${kubeletRootDir} is not this node's kubelet root directory (it has no pods/); set the agent's --kubelet-root-dir (chart value agent.kubeletRootDir) to the kubelet's --root-dir`;
        return {
          configFile,
          credentials: credentials.map((c) => ({
            name: c.name,
            uid: c.uid,
            resourceVersion: c.resourceVersion,
            reason: Reason.KubeletRootNotFound,
            message,
          })),
        };
      }
      const state = await loadState(files, statePath);
      const current = (await files.read(configFile))?.toString('utf8');
      const shadowed = current === undefined && (await files.exists(legacyFile)) ? legacyFile : undefined;
      const plan = planNodeCredentials({
        configFile,
        current,
        state,
        credentials,
        ...(shadowed ? { shadowed } : {}),
      });
      if (plan.action !== 'keep') {
        // Recorded before the rename: a crash in between leaves entries still known as ours.
        await saveState(files, statePath, inFlightState(state, plan.state));
        if (plan.action === 'write') await files.writeAtomic(configFile, plan.content ?? '', 0o600);
        else await files.remove(configFile);
        log.info(
          { configFile, action: plan.action, registryCredentials: credentials.map((c) => c.name) },
          'kubelet credentials file updated',
        );
      }
      if (plan.action !== 'keep' || JSON.stringify(plan.state) !== JSON.stringify(state)) {
        await saveState(files, statePath, plan.state);
      }
      return { configFile, credentials: plan.results };
    } catch (err) {
      const message = `the nodecreds module could not update ${configFile}: ${errorText(err)}`;
      log.warn({ err: { message } }, 'node credentials pass failed; retried at the next change or re-check');
      return {
        configFile,
        credentials: credentials.map((c) => ({
          name: c.name,
          uid: c.uid,
          resourceVersion: c.resourceVersion,
          reason: Reason.WriteFailed,
          message,
        })),
      };
    }
  };
}

/** The report within the annotation's budget (report.ts). */
export function fitReport(report: NodeCredentialsReport): NodeCredentialsReport {
  return fitReportEntries(report, 'credentials');
}

/** An error as a message with no file content: a code and path, or the error's own message. */
function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} ${e.path ?? ''}`.trim() : err instanceof Error ? err.message : String(err);
}
