#!/usr/bin/env node
/**
 * The prepull command.
 *   prepull run      run the operator (on an embedded local cluster when no kubeconfig is found)
 *   prepull agent    run the node agent (one pod per node, in Prepull's namespace)
 *   prepull refresh  ask for a refresh of PrePulledImages now
 *   prepull crds     print the CustomResourceDefinitions
 *   prepull version  print the version
 */
import { parseArgs } from 'node:util';
import { runSendArchive } from '../agent/node/imports/send-archive.ts';
import { renderCrdsYaml } from '../api/crd.ts';
import { parseLogFormat } from '../operator/log-format.ts';
import { runOperator } from '../operator/run.ts';
import { releasedImage, version } from '../version.ts';
import { runAgentCommand } from './agent.ts';
import { runLoad } from './load.ts';
import { runRefresh } from './refresh.ts';

const usage = `usage: prepull <command> [flags]

commands:
  run       run the operator against $KUBECONFIG, ~/.kube/config or the in-cluster
            service account; with none of them, build and start an embedded local
            cluster first
            --kubeconfig PATH       cluster to use
            --health-address ADDR   /healthz, /readyz, /metrics (default 127.0.0.1:8081)
            --log-level LEVEL       pino level (default info)
            --log-format FORMAT     json, pretty, or auto (default: pretty on a terminal, JSON otherwise)
            --leader-elect          run as one of several replicas (Lease leader election)
            --leader-election-namespace NS  where the Lease lives (default $POD_NAMESPACE or prepull-system)
            --identity NAME         this replica's name (default $POD_NAME or host-pid)
            --agent-image IMAGE     image holding the hold binary for puller pods
            --agent-pull-policy P   IfNotPresent (default), Always or Never
            --hold-path PATH        path of the hold binary in the agent image (default /hold)
            --agent-url URL         the node agents' Service, where puller pods send volume claims'
                                    archives (default http://prepull-agent.$POD_NAMESPACE.svc:8471)
            --default-priority-class NAME  priority class of puller pods when the spec names none
            --allowed-priority-class NAME  a class a PrePulledImage may name (besides those of value
                                    0 or less); repeatable (default prepull-low)
            --registry-checks       check each image at its registry (tag → digest, platforms) for status
            --registry-ca-file PATH  PEM CA bundle trusted for registries, besides Node's roots
            --insecure-registry HOST  a registry (host or host:port) reached without TLS verification,
                                    or over plain HTTP when it has no TLS; repeatable
            --no-admission-policies  keep no MutatingAdmissionPolicies: pods created before their
                                    ServiceAccount is patched then miss a RegistryCredential's secret
  agent     run the node agent (the prepull-agent DaemonSet); prepull agent --help for its flags
  send-archive  send a volume claim's archive to the node agent (run by puller pods)
  load      import an image archive into containerd on every node (kubectl prepull load);
            prepull load --help for its flags
  refresh   ask for a refresh of PrePulledImages now (kubectl prepull refresh NAME | --all);
            prepull refresh --help for its flags
  crds      print the CustomResourceDefinitions (prepull crds | kubectl apply -f -)
  version   print the version
`;

function parsePullPolicy(value: string): 'IfNotPresent' | 'Always' | 'Never' {
  if (value === 'IfNotPresent' || value === 'Always' || value === 'Never') return value;
  throw new Error(`--agent-pull-policy must be IfNotPresent, Always or Never, not ${JSON.stringify(value)}`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          'health-address': { type: 'string', default: '127.0.0.1:8081' },
          'log-level': { type: 'string', default: 'info' },
          'log-format': { type: 'string', default: 'auto' },
          'leader-elect': { type: 'boolean', default: false },
          'leader-election-namespace': { type: 'string' },
          identity: { type: 'string' },
          'agent-image': { type: 'string' },
          'agent-pull-policy': { type: 'string', default: 'IfNotPresent' },
          'hold-path': { type: 'string', default: '/hold' },
          'agent-url': { type: 'string' },
          'default-priority-class': { type: 'string' },
          'allowed-priority-class': { type: 'string', multiple: true, default: [] },
          'registry-checks': { type: 'boolean', default: false },
          'registry-ca-file': { type: 'string' },
          'insecure-registry': { type: 'string', multiple: true, default: [] },
          'admission-policies': { type: 'boolean', default: true },
        },
        allowNegative: true,
        strict: true,
      });
      if (
        !values['registry-checks'] &&
        (values['registry-ca-file'] || values['insecure-registry'].length > 0)
      ) {
        throw new Error('--registry-ca-file and --insecure-registry are for --registry-checks; add it');
      }
      return runOperator({
        kubeconfig: values.kubeconfig,
        healthAddress: values['health-address'],
        logLevel: values['log-level'],
        logFormat: parseLogFormat(values['log-format']),
        env: process.env,
        leaderElect: values['leader-elect'],
        leaderElectionNamespace: values['leader-election-namespace'],
        identity: values.identity,
        agentImage: values['agent-image'],
        agentPullPolicy: parsePullPolicy(values['agent-pull-policy']),
        holdPath: values['hold-path'],
        agentUrl: values['agent-url'],
        defaultPriorityClass: values['default-priority-class'],
        allowedPriorityClasses: values['allowed-priority-class'],
        registryChecks: values['registry-checks']
          ? { caFile: values['registry-ca-file'], insecureRegistries: values['insecure-registry'] }
          : undefined,
        admissionPolicies: values['admission-policies'],
      });
    }
    case 'agent':
      return runAgentCommand(rest, process.env);
    case 'send-archive':
      return runSendArchive(rest);
    case 'load': {
      return runLoad(rest, {
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        env: process.env,
        defaultAgentImage: releasedImage,
      });
    }
    case 'refresh':
      return runRefresh(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env });
    case 'crds':
      process.stdout.write(renderCrdsYaml());
      return 0;
    case 'version':
      process.stdout.write(`prepull ${version}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`prepull: unknown command ${JSON.stringify(command)}\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`prepull: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
