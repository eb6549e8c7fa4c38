/**
 * The mirrors module of the node agent: watches the RegistryMirrors and its
 * own Node, and after every change (and on a planned re-check, which catches
 * a containerd config or a file someone else changed) makes the node's
 * hosts.toml files those of the objects that select the node, then
 * publishes what it did as its report. An object being deleted or no longer
 * selecting the node has its files removed in the next pass; so do objects
 * deleted while the agent was down, from the state on the node. I/O.
 */
import { join } from 'node:path';
import { Reason } from '../../api/conditions.ts';
import {
  MIRRORS_AGENT_MODULE,
  type MirrorNodeReport,
  type RegistryMirror,
  registryMirrorSpecSchema,
} from '../../api/registrymirror.ts';
import { matchesLabelSelector } from '../../controllers/requests.ts';
import type { Informer } from '../../kube/informer.ts';
import type { KubeObject, Node } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';
import { hostFiles } from '../node/files.ts';
import type { AgentContext, AgentModule } from '../node/module.ts';
import { moduleInformer, ownNodeInformer, runPasses } from '../node/passes.ts';
import { fitReportEntries } from '../node/report.ts';
import { applyMirrors, type SelectedMirror } from './apply.ts';
import { detectRuntime } from './runtime.ts';

/** How often a pass runs with nothing changed in the API: containerd's config and files can change under us. */
export const RECHECK_MS = 60_000;

export interface MirrorsModuleOptions {
  /** Where the agent sees the host's filesystem ('/host', or '/' in the host's mount namespace). */
  hostRoot: string;
  /** Host directory of the agent's state (the mirrors state file lives in it). */
  stateDir: string;
  /** containerd's config file on the host, when it is not where the distribution keeps it. */
  containerdConfig?: string;
}

/** The objects that select the node, with parsed specs; those being deleted select nothing. */
export function selectedMirrors(mirrors: RegistryMirror[], node: Node): SelectedMirror[] {
  const selected: SelectedMirror[] = [];
  for (const rm of mirrors) {
    if (rm.metadata.deletionTimestamp) continue;
    const spec = registryMirrorSpecSchema.safeParse(rm.spec);
    // An invalid spec is the controller's to report (InvalidSpec); the node keeps nothing of it.
    if (!spec.success) continue;
    if (!matchesLabelSelector(spec.data.nodeSelector ?? {}, node.metadata.labels)) continue;
    selected.push({
      name: rm.metadata.name ?? '',
      uid: rm.metadata.uid ?? '',
      generation: rm.metadata.generation ?? 0,
      creationTimestamp: rm.metadata.creationTimestamp ?? '',
      spec: spec.data,
    });
  }
  return selected;
}

/** The mirrors module, for the agent's module list. */
export function mirrorsModule(options: MirrorsModuleOptions): AgentModule {
  return { name: MIRRORS_AGENT_MODULE, run: (context) => runMirrorsModule(context, options) };
}

/** Runs the module until `signal` aborts. */
export async function runMirrorsModule(ctx: AgentContext, options: MirrorsModuleOptions): Promise<void> {
  const { log, nodeName } = ctx;
  const mirrors = moduleInformer<RegistryMirror>(ctx, 'registrymirrors', { type: Resources.registryMirrors });
  const nodes = ownNodeInformer(ctx);
  const files = hostFiles(options.hostRoot);
  const statePath = join(options.stateDir, 'mirrors.json');
  await runPasses(ctx, [mirrors, nodes] as Informer<KubeObject>[], RECHECK_MS, async () => {
    const node = nodes.get(nodeName);
    if (node) ctx.report(fitReport(await pass(selectedMirrors(mirrors.list(), node), node)));
  });

  async function pass(selected: SelectedMirror[], node: Node): Promise<MirrorNodeReport> {
    try {
      const runtime = await detectRuntime(files, {
        ...(options.containerdConfig ? { configFile: options.containerdConfig } : {}),
        node,
      });
      return await applyMirrors({ files, statePath, runtime, mirrors: selected });
    } catch (err) {
      const message = `the mirrors module could not run on ${nodeName}: ${err instanceof Error ? err.message : String(err)}`;
      log.warn(
        { module: MIRRORS_AGENT_MODULE, err: { message } },
        'mirrors pass failed; retried at the next change or re-check',
      );
      return {
        mirrors: selected.map((m) => ({
          name: m.name,
          uid: m.uid,
          generation: m.generation,
          reason: Reason.WriteFailed,
          message,
        })),
      };
    }
  }
}

/** The report within the annotation's budget (report.ts). */
export function fitReport(report: MirrorNodeReport): MirrorNodeReport {
  return fitReportEntries(report, 'mirrors');
}
