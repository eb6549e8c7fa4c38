/**
 * The operator as users run it: the Deployment that deploy/ installs (then
 * the Helm chart), from the release image the harness imported into the real
 * node's containerd, two replicas with leader election, under its own
 * ServiceAccount with in-cluster configuration, reaching the API server
 * through the `kubernetes` Service. Proven here, once per install method:
 * the README's "Try it" objects go Ready; a PrePulledImage over the real node
 * and kwok nodes goes Ready; the leader is killed mid-rollout and the standby
 * finishes the rollout; /metrics answers through a Service to a pod on the
 * real node; the logs stay quiet at steady state; and the README's uninstall
 * leaves nothing of Prepull's behind.
 *
 * No out-of-process operator runs during this file (cluster files run one at
 * a time, and this one starts none); the audit log shows every request of the
 * operator's ServiceAccount came from a pod. The operator is uninstalled
 * after, whatever happened.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { daemonSetName } from '../../src/controllers/prepulledimage/render.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { loadKubeConfig } from '../../src/kube/config.ts';
import { releasedImage } from '../../src/version.ts';
import { eventually } from '../support/eventually.ts';
import { kubectl, serverSideApply } from '../support/kubectl.ts';
import { createFakeNodes, deleteNodes, KWOK_TOLERATION } from '../support/nodes.ts';
import {
  isTrue,
  leaseHolder,
  operatorPods,
  operatorSourceAddresses,
  podLog,
  pods,
  ppiStatus,
  type RolloutMoment,
  watchPullerPods,
} from './cluster-reads.ts';
import {
  helmInstallation,
  type Installation,
  kustomizeInstallation,
  METRICS_SERVICE,
  NAMESPACE,
  prepullLeftovers,
  removeServiceMonitorCrd,
} from './install.ts';
import { commandStartingWith, readTryIt, withFlags } from './readme.ts';

const cluster = inject('cluster');
const image = inject('image');
const NS = 'incluster';
const POOL_LABEL = 'prepull.dev/incluster-pool';
const POOL_SIZE = 40;
/** How long the logs are watched at steady state: longer than a round of kwok's node heartbeats (30 s). */
const QUIET_WINDOW_MS = 35_000;
const README_IMAGE = 'registry.example.com/team-a/app:1.0';
const client = new KubeClient(loadKubeConfig(cluster.kubeconfig));
const fileStarted = Date.now();
const figures: string[] = [];

function record(figure: string): void {
  figures.push(figure);
  process.stderr.write(`[incluster] ${figure}\n`);
}

function must(what: string, run: { status: number; stdout: string; stderr: string }): string {
  expect(run.status, `${what}: ${run.stderr}`).toBe(0);
  return run.stdout;
}

function ppi(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: NS },
    spec,
  };
}

/** Puller pods of a PrePulledImage (by its UID: a recreated object's pods are not its predecessor's). */
function pullerPods(name: string) {
  return pods(cluster, NS, `prepull.dev/owner-uid=${ppiStatus(cluster, NS, name).uid}`);
}

async function expectPpiReady(namespace: string, name: string, desired: number): Promise<void> {
  await eventually(() => {
    const status = ppiStatus(cluster, namespace, name);
    expect(status.ready).toBe(`${desired}/${desired}`);
    expect(isTrue(status.conditions, 'Ready')).toBe(true);
  }, 180_000);
}

/** Waits until the Deployment's two replicas are up and one of them leads. */
async function expectOperatorRunning(): Promise<{ leader: string; standby: string }> {
  must(
    'rollout status',
    kubectl(cluster, [
      'rollout',
      'status',
      'deployment/prepull-controller',
      '-n',
      NAMESPACE,
      '--timeout=240s',
    ]),
  );
  let roles = { leader: '', standby: '' };
  await eventually(() => {
    const running = operatorPods(cluster).filter((p) => !p.deleting && p.ready);
    expect(running).toHaveLength(2);
    const holder = leaseHolder(cluster);
    const leader = running.find((p) => p.name === holder);
    expect(leader, `lease holder ${holder}`).toBeDefined();
    roles = { leader: leader!.name, standby: running.find((p) => p !== leader)!.name };
  }, 60_000);
  return roles;
}

// Needs the real kubelet node: skipped only on a cluster started with PREPULL_TEST_REAL_NODE=0
// (a helper's second cluster); the whole suite runs it in the node lane, which always has one.
describe.runIf(cluster.node && cluster.registry)('the operator in the cluster, from its image', () => {
  const node = cluster.node!;
  const registry = cluster.registry!;
  const installations = [kustomizeInstallation(cluster), helmInstallation(cluster)];
  let poolNodes: string[] = [];

  beforeAll(() => {
    // A new user's cluster holds nothing of Prepull's: take away what earlier
    // files left (the operator installed below finishes any finalizer).
    kubectl(cluster, ['delete', 'ppi', '--all', '--all-namespaces', '--wait=false']);
    kubectl(cluster, ['delete', 'regcred', '--all', '--wait=false']);
    poolNodes = createFakeNodes(cluster, 'incluster', 0, POOL_SIZE, { [POOL_LABEL]: 'true' });
    must('namespace', kubectl(cluster, ['create', 'namespace', NS]));
    // The README's RegistryCredential selects this label: its copy lands here too.
    must('label', kubectl(cluster, ['label', 'namespace', NS, 'pulls-from=corp']));
  });

  afterAll(() => {
    kubectl(cluster, ['uncordon', node.name]);
    // Whatever failed above, no operator of this file outlives it.
    kubectl(cluster, ['delete', 'ppi', '--all', '--all-namespaces', '--wait=true', '--timeout=60s']);
    kubectl(cluster, ['delete', 'regcred', '--all', '--wait=true', '--timeout=60s']);
    for (const installation of installations) {
      try {
        installation.uninstall();
      } catch {
        // Not installed by this method, or already gone.
      }
    }
    kubectl(cluster, ['delete', 'namespace', NS, 'team-a', '--ignore-not-found', '--wait=false']);
    removeServiceMonitorCrd(cluster);
    if (poolNodes.length > 0) deleteNodes(cluster, poolNodes);
    process.stderr.write(`[incluster] figures:\n  ${figures.join('\n  ')}\n`);
  });

  describe.each(installations.map((i) => [i.method, i] as const))(
    'installed with %s',
    (method, installation: Installation) => {
      let started = 0;

      it('runs two replicas of the release image on the real node, under its ServiceAccount, in-cluster', async () => {
        started = Date.now();
        installation.install();
        const { leader } = await expectOperatorRunning();
        for (const pod of operatorPods(cluster)) {
          expect(pod.nodeName).toBe(node.name);
          expect(pod.serviceAccountName).toBe('prepull-controller');
          expect(pod.image).toContain(releasedImage);
          // The very image the harness built and imported: its index digest.
          expect(pod.imageID).toContain(image.indexDigest);
          // A restart says why: the log of the container that ended.
          const previous =
            pod.restarts > 0
              ? kubectl(cluster, ['logs', '--previous', '-n', 'prepull-system', pod.name])
              : undefined;
          expect(pod.restarts, previous && `${previous.stdout}${previous.stderr}`).toBe(0);
          const container = (
            pod.spec.containers as {
              livenessProbe?: unknown;
              readinessProbe?: unknown;
              resources?: unknown;
            }[]
          )[0]!;
          expect(container.livenessProbe).toBeDefined();
          expect(container.readinessProbe).toBeDefined();
          expect(container.resources).toMatchObject({
            requests: { cpu: '50m', memory: '128Mi' },
            limits: { memory: '256Mi' },
          });
          const connected = podLog(cluster, NAMESPACE, pod.name)
            .map((line) => JSON.parse(line) as { msg: string; source?: string; kubeconfig?: string })
            .find((line) => line.msg === 'connected to the API server');
          expect(connected).toMatchObject({ source: 'in-cluster', kubeconfig: 'in-cluster' });
        }
        record(
          `${method}: install to two ready replicas, one leading (${leader}): ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      });

      it("makes the README's Try it objects Ready: the RegistryCredential syncs, the PrePulledImage pulls on the real node", async () => {
        const tryIt = readTryIt();
        const secret = withFlags(
          commandStartingWith(tryIt.commands, 'kubectl create secret docker-registry'),
          {
            '--docker-server': registry.host,
            '--docker-username': registry.username,
            '--docker-password': registry.password,
          },
        );
        must('the README secret', kubectl(cluster, secret.slice(1)));
        const objects = JSON.parse(
          JSON.stringify(tryIt.objects).replaceAll(README_IMAGE, registry.images.hold.ref),
        );
        for (const object of objects) serverSideApply(cluster, object);
        // The README's own wait, as written.
        const wait = commandStartingWith(tryIt.commands, 'kubectl wait');
        must('the README wait', kubectl(cluster, wait.slice(1)));
        const table = must(
          'kubectl get ppi,regcred',
          kubectl(cluster, commandStartingWith(tryIt.commands, 'kubectl get').slice(1)),
        );
        process.stderr.write(`[incluster] ${method}: kubectl get ppi,regcred -A\n${table}`);
        // team-a and this file's namespace carry the README's label: two copies.
        expect(table).toMatch(/team-a\s+prepulledimage\.prepull\.dev\/app\s+1\/1\s+AllNodesReady/);
        expect(table).toMatch(/registrycredential\.prepull\.dev\/corp-registry\s+2\/2\s+AllNamespacesSynced/);
        // The copy is on team-a's default ServiceAccount.
        const sa = must(
          'sa',
          kubectl(cluster, [
            'get',
            'sa',
            'default',
            '-n',
            'team-a',
            '-o',
            'jsonpath={.imagePullSecrets[*].name}',
          ]),
        );
        expect(sa.split(' ')).toContain('corp-pull');
      });

      it('makes a PrePulledImage over the real node and kwok nodes Ready', async () => {
        serverSideApply(
          cluster,
          ppi('fleet', {
            images: [{ image: registry.images.hold.ref }],
            imagePullSecrets: [{ name: 'corp-pull' }],
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    {
                      matchExpressions: [{ key: 'prepull.dev/test-node', operator: 'In', values: ['real'] }],
                    },
                    { matchExpressions: [{ key: POOL_LABEL, operator: 'Exists' }] },
                  ],
                },
              },
            },
            tolerations: [KWOK_TOLERATION],
          }),
        );
        await expectPpiReady(NS, 'fleet', POOL_SIZE + 1);
        const onRealNode = pullerPods('fleet').find((p) => p.nodeName === node.name);
        // A real pull on the real node: the kubelet reports the registry digest.
        expect(onRealNode?.imageID).toContain(registry.images.hold.digest);
        // The operator, deployed by tag, gives the puller pods its own image by digest (src/operator/own-image.ts).
        const holdCopy = must(
          'the hold copy',
          kubectl(cluster, [
            'get',
            'daemonset',
            'ppi-fleet',
            '-n',
            NS,
            '-o',
            'jsonpath={.spec.template.spec.initContainers[0].image}',
          ]),
        );
        expect(holdCopy).toBe(`${releasedImage}@${image.indexDigest}`);
      });

      // The chart renders deploy/'s objects, object for object (test/chart), so
      // the operator's own behaviour, leader failover and quiet logs, is the
      // same whichever way it was installed: shown once, with kustomize. What
      // the install method changes (how it installs, serves, and uninstalls) runs for both.
      const first = method === installations[0]!.method;
      if (first)
        it('goes on when the leader is killed mid-rollout: the other replica finishes it', async () => {
          const { leader, standby } = await expectOperatorRunning();
          const leaderPod = operatorPods(cluster).find((p) => p.name === leader)!;
          const name = `failover-${method}`;
          // No third candidate: a replacement of the killed pod stays Pending while the
          // node is cordoned (puller pods tolerate that), so the standby is the only one left.
          must('cordon', kubectl(cluster, ['cordon', node.name]));
          // Whatever fails below, the later tests need the node schedulable again.
          onTestFinished(() => {
            kubectl(cluster, ['uncordon', node.name]);
          });
          // Mid-rollout: some pods got their pull slot and are Ready, more still wait for one.
          // On kwok nodes the leader admits a pod about every 100 ms, as fast as the DaemonSet
          // controller makes them, so the moment passes between two kubectl reads: a watch
          // finds it and the kill follows the event that shows it.
          const rollout = watchPullerPods(client, NS, `${daemonSetName(name)}-`);
          await rollout.start();
          let midRollout: RolloutMoment;
          let killedAt: number;
          try {
            serverSideApply(
              cluster,
              ppi(name, {
                images: [{ image: registry.images.hold.ref }],
                nodeSelector: { [POOL_LABEL]: 'true' },
                tolerations: [KWOK_TOLERATION],
                maxConcurrentPulls: 1,
              }),
            );
            midRollout = await rollout.first(({ ready, gated }) => ready > 0 && gated > ready, 60_000);
            killedAt = Date.now();
            // SIGKILL: no release of the Lease, as when a node or the process dies.
            execFileSync(node.ctr, [
              '--address',
              node.containerdSocket,
              '--namespace',
              'k8s.io',
              'tasks',
              'kill',
              '--signal',
              'SIGKILL',
              leaderPod.containerId!,
            ]);
          } finally {
            await rollout.stop();
          }
          // Most of the rollout is left to the standby.
          expect(midRollout.ready).toBeLessThan(POOL_SIZE / 2);
          must(
            'delete the leader pod',
            kubectl(cluster, ['delete', 'pod', leader, '-n', NAMESPACE, '--grace-period=0', '--force']),
          );
          const gatedAfterKill = pullerPods(name).filter((p) => p.gated).length;
          expect(gatedAfterKill).toBeGreaterThan(0);

          await eventually(() => expect(leaseHolder(cluster)).toBe(standby), 60_000, 100);
          const tookOver = Date.now();
          // Only pods that got no slot from the leader are gated now; the standby admits them.
          const gatedAtTakeover = pullerPods(name).filter((p) => p.gated).length;
          await expectPpiReady(NS, name, POOL_SIZE);
          const finished = Date.now();
          expect(pullerPods(name).filter((p) => p.gated)).toEqual([]);
          // The standby did it: it still holds the Lease, and no other operator pod runs.
          expect(leaseHolder(cluster)).toBe(standby);
          expect(
            operatorPods(cluster)
              .filter((p) => p.phase === 'Running')
              .map((p) => p.name),
          ).toEqual([standby]);
          record(
            `${method}: leader ${leader} killed when ${midRollout.ready}/${POOL_SIZE} pods were ready and ` +
              `${midRollout.gated} gated (${gatedAfterKill} gated after the kill, ${gatedAtTakeover} at the takeover); ` +
              `${standby} took the Lease ${((tookOver - killedAt) / 1000).toFixed(1)} s later and finished the rollout ` +
              `${((finished - tookOver) / 1000).toFixed(1)} s after that`,
          );

          must('uncordon', kubectl(cluster, ['uncordon', node.name]));
          await expectOperatorRunning();
        });

      it('serves /metrics through a Service, to a pod on the real node', async () => {
        const clusterIp = must(
          'service',
          kubectl(cluster, [
            'get',
            'service',
            METRICS_SERVICE,
            '-n',
            NAMESPACE,
            '-o',
            'jsonpath={.spec.clusterIP}',
          ]),
        );
        expect(clusterIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        const scraper = `scrape-${method}`;
        const script =
          'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.ok ? 0 : 1; })';
        serverSideApply(cluster, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: scraper, namespace: NS },
          spec: {
            restartPolicy: 'Never',
            nodeSelector: { 'prepull.dev/test-node': 'real' },
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'scrape',
                // The release image's own node, so nothing but the cluster's parts is involved.
                image: releasedImage,
                imagePullPolicy: 'IfNotPresent',
                command: ['node', '-e', script, `http://${clusterIp}:8081/metrics`],
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        });
        await eventually(() => {
          const phase = must(
            'scraper',
            kubectl(cluster, ['get', 'pod', scraper, '-n', NS, '-o', 'jsonpath={.status.phase}']),
          );
          expect(['Succeeded', 'Failed']).toContain(phase);
        }, 120_000);
        const body = podLog(cluster, NS, scraper).join('\n');
        const phase = must(
          'scraper',
          kubectl(cluster, ['get', 'pod', scraper, '-n', NS, '-o', 'jsonpath={.status.phase}']),
        );
        expect(phase, body.slice(0, 500)).toBe('Succeeded');
        expect(body).toContain('# TYPE prepull_leader gauge');
        expect(body).toMatch(/^prepull_objects\{kind="PrePulledImage",state="Ready"\} [1-9]/m);
        expect(body).toMatch(/^prepull_api_requests_total\{/m);
        const rss = /^prepull_process_resident_memory_bytes (\d+)/m.exec(body)?.[1];
        expect(rss, 'prepull_process_resident_memory_bytes').toBeDefined();
        record(
          `${method}: a replica's RSS, scraped through the Service: ${(Number(rss) / 2 ** 20).toFixed(0)} MiB`,
        );
        must('delete scraper', kubectl(cluster, ['delete', 'pod', scraper, '-n', NS, '--wait=false']));
      });

      if (first)
        it('keeps its logs quiet at steady state', async () => {
          const current = operatorPods(cluster).filter((p) => p.phase === 'Running');
          expect(current).toHaveLength(2);
          const before = new Map(current.map((p) => [p.name, podLog(cluster, NAMESPACE, p.name).length]));
          await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
          const lines = current.flatMap((p) => podLog(cluster, NAMESPACE, p.name).slice(before.get(p.name)));
          record(
            `${method}: ${lines.length} log lines at info from both replicas in ${QUIET_WINDOW_MS / 1000} s at steady state`,
          );
          expect(lines).toEqual([]);
        });

      it("uninstalls as the README says, leaving nothing of Prepull's behind", async () => {
        const rendered = installation.rendered();
        if (method === 'helm') {
          // What removing the operator and then the CRDs does, as the README's Uninstall says:
          // RegistryCredentials first (their finalizer needs the operator), then the operator,
          // which leaves the PrePulledImages and their DaemonSets as they are.
          must(
            'delete regcred',
            kubectl(cluster, ['delete', 'regcred', '--all', '--wait=true', '--timeout=60s']),
          );
          installation.removeOperator();
          expect(must('ppi', kubectl(cluster, ['get', 'ppi', '-n', NS, '-o', 'name']))).toContain('fleet');
          expect(must('ds', kubectl(cluster, ['get', 'ds', '-n', NS, '-o', 'name']))).toContain(
            'daemonset.apps/',
          );
          // Deleting the CRDs takes every PrePulledImage, and the garbage collector their DaemonSets and pods.
          installation.uninstall();
          await eventually(() => {
            expect(
              must(
                'ds',
                kubectl(cluster, [
                  'get',
                  'ds',
                  '-A',
                  '-l',
                  'app.kubernetes.io/name=prepull-puller',
                  '-o',
                  'name',
                ]),
              ),
            ).toBe('');
            expect(
              must(
                'pods',
                kubectl(cluster, [
                  'get',
                  'pods',
                  '-A',
                  '-l',
                  'app.kubernetes.io/name=prepull-puller',
                  '-o',
                  'name',
                ]),
              ),
            ).toBe('');
          }, 120_000);
          removeServiceMonitorCrd(cluster);
        } else {
          must(
            'delete ppi',
            kubectl(cluster, ['delete', 'ppi', '--all', '--all-namespaces', '--wait=true', '--timeout=120s']),
          );
          must(
            'delete regcred',
            kubectl(cluster, ['delete', 'regcred', '--all', '--wait=true', '--timeout=60s']),
          );
          installation.uninstall();
        }
        await eventually(() => expect(prepullLeftovers(cluster, rendered)).toEqual([]), 120_000, 2_000);
        // team-a is the user's: it stays, without the copy.
        expect(
          must(
            'secrets',
            kubectl(cluster, [
              'get',
              'secret',
              'corp-pull',
              '-n',
              'team-a',
              '--ignore-not-found',
              '-o',
              'name',
            ]),
          ),
        ).toBe('');
        record(
          `${method}: the whole run, install to clean uninstall: ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      });
    },
  );

  it("made every request of the operator's ServiceAccount from a pod: no operator outside the cluster ran", () => {
    const sources = operatorSourceAddresses(cluster.auditLog, fileStarted);
    record(`operator requests by source address: ${JSON.stringify(Object.fromEntries(sources))}`);
    expect(sources.size).toBeGreaterThan(0);
    for (const address of sources.keys()) expect(address).not.toMatch(/^(127\.|::1$)/);
  });
});
