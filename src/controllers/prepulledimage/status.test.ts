import { describe, expect, it } from 'vitest';
import { type ImportEntryReport, importFingerprint } from '../../agent/node/imports/report.ts';
import type { Condition } from '../../api/common.ts';
import { Reason } from '../../api/conditions.ts';
import {
  MAX_STATUS_NODES,
  type PrePulledImage,
  prePulledImageStatusSchema,
} from '../../api/prepulledimage.ts';
import type { ContainerStatus, DaemonSet, Node, Pod } from '../../kube/objects.ts';
import { findCondition } from '../../runtime/conditions.ts';
import type { ImportsOnNode } from './agent-imports.ts';
import { PULL_SLOT_GATE } from './labels.ts';
import {
  classifyPullFailure,
  computePrePulledImageStatus,
  digestOf,
  holdsEveryImage,
  mayHaveBecomeReady,
  onlyCountsMoved,
  podNodeName,
  STATUS_WRITE_INTERVAL_MS,
  type StatusInput,
  stalledStatus,
  statusWriteIntervalOf,
} from './status.ts';

const now = new Date('2026-01-01T00:00:00Z');
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const NGINX = 'docker.io/library/nginx:1.27';
const APP = 'ghcr.io/org/app:latest';

function ppi(images = ['nginx:1.27', 'ghcr.io/org/app'], conditions?: Condition[]): PrePulledImage {
  return {
    metadata: { name: 'web', namespace: 'team-a', uid: 'u1', generation: 4 },
    spec: { images: images.map((image) => ({ image })) },
    ...(conditions && { status: { conditions } }),
  };
}

function node(name: string, diskPressure?: string): Node {
  return {
    metadata: { name },
    status: {
      conditions: [
        { type: 'Ready', status: 'True' },
        ...(diskPressure !== undefined
          ? [{ type: 'DiskPressure', status: 'True', message: diskPressure }]
          : []),
      ],
    },
  };
}

function nodeMap(...nodes: Node[]): Map<string, Node> {
  return new Map(nodes.map((n) => [n.metadata.name ?? '', n]));
}

type ImageFate = 'ready' | 'creating' | 'none' | { reason: string; message?: string };

interface PodOptions {
  bound?: boolean;
  gated?: boolean;
  created?: string;
  deleting?: boolean;
  images?: string[];
  name?: string;
  initWaiting?: { reason: string; message?: string };
}

function pod(nodeName: string, fates: ImageFate[], options: PodOptions = {}): Pod {
  const images = options.images ?? [NGINX, APP];
  const statuses: ContainerStatus[] = [];
  images.forEach((image, i) => {
    const fate = fates[i] ?? 'none';
    if (fate === 'none') return;
    const base = { name: `image-${i}`, image, ready: fate === 'ready', restartCount: 0 };
    if (fate === 'ready') {
      statuses.push({
        ...base,
        imageID: `${image.split(':')[0]}@${digest(String(i))}`,
        state: { running: {} },
      });
    } else if (fate === 'creating') {
      statuses.push({ ...base, imageID: '', state: { waiting: { reason: 'ContainerCreating' } } });
    } else {
      statuses.push({ ...base, imageID: '', state: { waiting: fate } });
    }
  });
  const bound = options.bound ?? true;
  return {
    metadata: {
      name: options.name ?? `ppi-web-${nodeName}`,
      creationTimestamp: options.created ?? '2026-01-01T00:00:00Z',
      ...(options.deleting && { deletionTimestamp: '2026-01-01T00:00:01Z' }),
    },
    spec: {
      ...(bound && { nodeName }),
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchFields: [{ key: 'metadata.name', operator: 'In', values: [nodeName] }] },
            ],
          },
        },
      },
      containers: images.map((image, i) => ({ name: `image-${i}`, image })),
      ...(options.gated && { schedulingGates: [{ name: PULL_SLOT_GATE }] }),
    },
    status: {
      containerStatuses: statuses,
      ...(options.initWaiting && {
        initContainerStatuses: [
          {
            name: 'install-hold',
            image: 'agent',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: options.initWaiting },
          },
        ],
      }),
    },
  };
}

function daemonSet(desired: number, observed = true): DaemonSet {
  return {
    metadata: { name: 'ppi-web', generation: 2 },
    spec: { selector: {}, template: { metadata: {}, spec: { containers: [] } } },
    status: {
      observedGeneration: observed ? 2 : 1,
      desiredNumberScheduled: desired,
      currentNumberScheduled: desired,
      numberReady: 0,
    },
  };
}

function compute(input: Partial<StatusInput> & Pick<StatusInput, 'pods' | 'nodes'>) {
  const ds = 'daemonSet' in input ? input.daemonSet : daemonSet(input.nodes.size);
  return computePrePulledImageStatus({ ppi: ppi(), now, ...input, daemonSet: ds });
}

describe('classifyPullFailure', () => {
  it.each([
    ['ErrImagePull', 'no match for platform in manifest: not found', Reason.PlatformMismatch],
    [
      'ErrImagePull',
      'no matching manifest for linux/arm64 in the manifest list entries',
      Reason.PlatformMismatch,
    ],
    ['ErrImagePull', 'unexpected status from HEAD request: 401 Unauthorized', Reason.Unauthorized],
    [
      'ErrImagePull',
      'failed to authorize: failed to fetch anonymous token: unauthorized',
      Reason.Unauthorized,
    ],
    [
      'ErrImagePull',
      'pull access denied, repository does not exist or may require authorization',
      Reason.Unauthorized,
    ],
    ['ErrImagePull', 'no basic auth credentials', Reason.Unauthorized],
    ['ErrImagePull', 'unexpected status: 403 Forbidden', Reason.Unauthorized],
    ['ErrImagePull', 'insufficient_scope: authorization failed', Reason.Unauthorized],
    ['ErrImagePull', 'docker.io/library/nope:1: not found', Reason.NotFound],
    ['ErrImagePull', 'manifest unknown', Reason.NotFound],
    ['ErrImagePull', 'unexpected status code 404', Reason.NotFound],
    ['InvalidImageName', 'Failed to apply default image tag', Reason.InvalidImageName],
    [
      'ErrImageNeverPull',
      'Container image "x" is not present with pull policy of Never',
      Reason.ErrImageNeverPull,
    ],
    ['ImagePullBackOff', 'Back-off pulling image "x"', Reason.ImagePullBackOff],
    ['ErrImagePull', 'connection refused', Reason.ErrImagePull],
    ['CreateContainerConfigError', 'something', Reason.ErrImagePull],
    [undefined, undefined, Reason.ErrImagePull],
  ])('%s %j → %s', (reason, message, expected) => {
    expect(classifyPullFailure(reason, message)).toBe(expected);
  });

  it('does not read a status code into a digest', () => {
    const message = `Back-off pulling image "nginx@sha256:${'a401'.repeat(16)}"`;
    expect(classifyPullFailure('ImagePullBackOff', message)).toBe(Reason.ImagePullBackOff);
  });
});

describe('digestOf', () => {
  it.each([
    [`docker-pullable://nginx@${digest('a')}`, digest('a')],
    [`docker.io/library/nginx@${digest('b')}`, digest('b')],
    [digest('c'), digest('c')],
    ['docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27'],
  ])('%s → %s', (id, expected) => {
    expect(digestOf(id)).toBe(expected);
  });
});

describe('podNodeName', () => {
  it('uses the binding, then the DaemonSet affinity', () => {
    expect(podNodeName(pod('n1', []))).toBe('n1');
    expect(podNodeName(pod('n2', [], { bound: false }))).toBe('n2');
    expect(podNodeName({ metadata: {}, spec: { containers: [] } })).toBeUndefined();
  });
});

describe('computePrePulledImageStatus: per image', () => {
  const stateOf = (p: Pod, nodes = nodeMap(node('n1'))) => compute({ pods: [p], nodes }).nodes?.[0]?.images;

  it('is Ready with the digest from the image ID', () => {
    expect(stateOf(pod('n1', ['ready', 'ready']))).toEqual([
      { image: NGINX, state: 'Ready', digest: digest('0') },
      { image: APP, state: 'Ready', digest: digest('1') },
    ]);
  });

  it('is Pending while gated, unbound, or on an older template', () => {
    expect(stateOf(pod('n1', [], { gated: true, bound: false }))?.[0]).toEqual({
      image: NGINX,
      state: 'Pending',
      reason: 'Pending',
      message: 'waiting for a pull slot (maxConcurrentPulls)',
    });
    expect(stateOf(pod('n1', [], { bound: false }))?.[0]).toMatchObject({
      state: 'Pending',
      reason: 'Pending',
    });
    expect(stateOf(pod('n1', ['ready'], { images: [NGINX] }))).toEqual([
      { image: NGINX, state: 'Ready', digest: digest('0') },
      {
        image: APP,
        state: 'Pending',
        reason: 'Pending',
        message: 'waiting for the DaemonSet to roll out the new spec',
      },
    ]);
  });

  it('is Pulling while the container is being created or has no status yet', () => {
    expect(stateOf(pod('n1', ['creating', 'none']))).toEqual([
      { image: NGINX, state: 'Pulling', reason: 'Pulling' },
      { image: APP, state: 'Pulling', reason: 'Pulling' },
    ]);
  });

  it('is Failed with a classified reason and a bounded message', () => {
    const long = `401 Unauthorized ${'x'.repeat(1000)}`;
    const states = stateOf(
      pod('n1', [{ reason: 'ErrImagePull', message: long }, { reason: 'InvalidImageName' }]),
    );
    expect(states?.[0]).toMatchObject({ state: 'Failed', reason: 'Unauthorized' });
    expect(states?.[0]?.message).toHaveLength(512);
    expect(states?.[1]).toEqual({
      image: APP,
      state: 'Failed',
      reason: 'InvalidImageName',
      message: 'InvalidImageName',
    });
  });

  it('blames an agent image that cannot be pulled for every missing image', () => {
    const p = pod('n1', ['ready'], { initWaiting: { reason: 'ErrImagePull', message: 'manifest unknown' } });
    expect(stateOf(p)?.[1]).toEqual({
      image: APP,
      state: 'Failed',
      reason: 'NotFound',
      message: 'agent image: manifest unknown',
    });
  });

  it('is Failed with DiskPressure when the node has it, unless the image is there', () => {
    const states = stateOf(pod('n1', ['ready', 'creating']), nodeMap(node('n1', 'disk is full')));
    expect(states).toEqual([
      { image: NGINX, state: 'Ready', digest: digest('0') },
      { image: APP, state: 'Failed', reason: 'DiskPressure', message: 'disk is full' },
    ]);
  });
});

describe('computePrePulledImageStatus: pods and nodes', () => {
  it('ignores pods on unknown nodes and pods being deleted', () => {
    const status = compute({
      pods: [pod('gone', ['ready', 'ready']), pod('n1', ['ready', 'ready'], { deleting: true })],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(0),
    });
    expect(status.desiredNodes).toBe(0);
    expect(status.nodes).toEqual([]);
  });

  it('takes the newest pod of a node, whatever the list order, and reports its failures', () => {
    const old = pod('n1', ['ready', 'ready'], { name: 'a', created: '2026-01-01T00:00:00Z' });
    const failing = pod('n1', ['ready', { reason: 'ErrImagePull', message: 'manifest unknown' }], {
      name: 'b',
      created: '2026-01-01T00:05:00Z',
    });
    for (const pods of [
      [old, failing],
      [failing, old],
    ]) {
      const report = compute({ pods, nodes: nodeMap(node('n1')) }).nodes?.[0];
      expect(report?.ready).toBe(false);
      expect(report?.images?.[1]).toMatchObject({ state: 'Failed', reason: 'NotFound' });
    }
  });

  it('while a replacement pod is on its way (rollout, refresh round), the pod it replaces still holds the images', () => {
    const old = pod('n1', ['ready', 'ready'], { name: 'a', created: '2026-01-01T00:00:00Z' });
    for (const fresh of [
      pod('n1', ['creating', 'creating'], { name: 'b', created: '2026-01-01T00:05:00Z' }),
      pod('n1', [], { name: 'b', created: '2026-01-01T00:05:00Z', gated: true, bound: false }),
    ]) {
      for (const pods of [
        [old, fresh],
        [fresh, old],
      ]) {
        const report = compute({ pods, nodes: nodeMap(node('n1')) }).nodes?.[0];
        expect(report?.ready).toBe(true);
        expect(report?.images?.map((i) => i.digest)).toEqual([digest('0'), digest('1')]);
      }
    }
    // Once being deleted, the old pod holds nothing.
    const replaced = compute({
      pods: [
        pod('n1', ['ready', 'ready'], { name: 'a', deleting: true }),
        pod('n1', ['creating', 'creating'], { name: 'b', created: '2026-01-01T00:05:00Z' }),
      ],
      nodes: nodeMap(node('n1')),
    });
    expect(replaced.nodes?.[0]?.ready).toBe(false);
  });

  it('counts nodes the DaemonSet has not yet given a pod as pending', () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(3),
    });
    expect(status).toMatchObject({
      desiredNodes: 3,
      readyNodes: 1,
      pullingNodes: 0,
      failedNodes: 0,
      ready: '1/3',
    });
    expect(findCondition(status.conditions, 'Progressing')?.message).toBe(
      '1/3 nodes ready, 0 pulling, 2 pending',
    );
  });

  it('lists failed, pulling, pending then ready nodes, each by name', () => {
    const nodes = nodeMap(...['r2', 'r1', 'f', 'p', 'w'].map((n) => node(n)));
    const status = compute({
      pods: [
        pod('r2', ['ready', 'ready']),
        pod('w', [], { gated: true, bound: false }),
        pod('r1', ['ready', 'ready']),
        pod('p', ['ready', 'creating']),
        pod('f', ['ready', { reason: 'ImagePullBackOff' }]),
      ],
      nodes,
    });
    expect(status.nodes?.map((n) => [n.name, n.ready])).toEqual([
      ['f', false],
      ['p', false],
      ['w', false],
      ['r1', true],
      ['r2', true],
    ]);
    expect(status).toMatchObject({ desiredNodes: 5, readyNodes: 2, pullingNodes: 1, failedNodes: 1 });
    expect(status).not.toHaveProperty('nodesOmitted');
  });

  it('reports distinct sorted digests and ready counts per image', () => {
    const other = pod('n2', ['ready', 'ready']);
    const statuses = other.status?.containerStatuses ?? [];
    if (statuses[0]) statuses[0].imageID = `docker.io/library/nginx@${digest('9')}`;
    const status = computePrePulledImageStatus({
      ppi: {
        ...ppi(),
        spec: { images: [{ image: 'nginx:1.27', name: 'web' }, { image: 'ghcr.io/org/app' }] },
      },
      pods: [pod('n1', ['ready', 'creating']), other, pod('n3', ['ready', 'ready'])],
      nodes: nodeMap(node('n1'), node('n2'), node('n3')),
      daemonSet: daemonSet(3),
      now,
    });
    expect(status.images).toEqual([
      { image: NGINX, name: 'web', digests: [digest('0'), digest('9')], readyNodes: 3 },
      { image: APP, digests: [digest('1')], readyNodes: 2 },
    ]);
  });
});

describe('computePrePulledImageStatus: conditions', () => {
  const conditionsOf = (status: { conditions?: Condition[] }) =>
    status.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration]);

  it('says no node matches when the DaemonSet wants none', () => {
    const status = compute({ pods: [], nodes: nodeMap(node('n1')), daemonSet: daemonSet(0) });
    expect(conditionsOf(status)).toEqual([
      ['Ready', 'True', 'NoMatchingNodes', 4],
      ['Progressing', 'False', 'NoMatchingNodes', 4],
      ['Degraded', 'False', 'NoMatchingNodes', 4],
      ['Stalled', 'False', 'NoMatchingNodes', 4],
    ]);
    expect(status.observedGeneration).toBe(4);
    expect(status.ready).toBe('0/0');
  });

  it('does not claim no matching nodes before the DaemonSet exists or is observed', () => {
    for (const ds of [undefined, daemonSet(0, false)]) {
      const status = compute({ pods: [], nodes: nodeMap(node('n1')), daemonSet: ds });
      expect(findCondition(status.conditions, 'Ready')).toMatchObject({
        status: 'False',
        reason: 'Progressing',
      });
    }
    const missing = compute({ pods: [], nodes: nodeMap(), daemonSet: undefined });
    expect(findCondition(missing.conditions, 'Progressing')?.message).toBe(
      'waiting for the puller DaemonSet to be created',
    );
  });

  it('is Ready when every node holds every image and the DaemonSet is observed', () => {
    const pods = [
      pod('n1', ['ready', 'ready']),
      pod('n2', ['ready', 'ready']),
      pod('n3', ['ready', 'ready']),
    ];
    const nodes = nodeMap(node('n1'), node('n2'), node('n3'));
    const status = compute({ pods, nodes });
    expect(conditionsOf(status)).toEqual([
      ['Ready', 'True', 'AllNodesReady', 4],
      ['Progressing', 'False', 'AllNodesReady', 4],
      ['Degraded', 'False', 'AllNodesReady', 4],
      ['Stalled', 'False', 'AllNodesReady', 4],
    ]);
    expect(findCondition(status.conditions, 'Ready')?.message).toBe('3/3 nodes hold every image');

    const stale = compute({ pods, nodes, daemonSet: daemonSet(3, false) });
    expect(findCondition(stale.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Progressing',
    });
  });

  it('stays Ready while the DaemonSet controller catches up with a template change of the same spec (a refresh round)', () => {
    const pods = ['n1', 'n2'].map((n) => pod(n, ['ready', 'ready']));
    const nodes = nodeMap(node('n1'), node('n2'));
    const readyBefore = (observedGeneration: number): PrePulledImage => ({
      ...ppi(),
      status: {
        observedGeneration,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'AllNodesReady',
            message: '',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
    });
    const same = computePrePulledImageStatus({
      ppi: readyBefore(4),
      pods,
      nodes,
      daemonSet: daemonSet(2, false),
      now,
    });
    expect(findCondition(same.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllNodesReady',
    });
    // After a spec edit (generation 4, status of generation 3) the counts wait for the DaemonSet controller.
    const edited = computePrePulledImageStatus({
      ppi: readyBefore(3),
      pods,
      nodes,
      daemonSet: daemonSet(2, false),
      now,
    });
    expect(findCondition(edited.conditions, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Progressing',
    });
  });

  it('is Progressing while nodes pull', () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready']), pod('n2', ['creating', 'ready'])],
      nodes: nodeMap(node('n1'), node('n2')),
    });
    expect(conditionsOf(status)).toEqual([
      ['Ready', 'False', 'Progressing', 4],
      ['Progressing', 'True', 'Progressing', 4],
      ['Degraded', 'False', 'Progressing', 4],
      ['Stalled', 'False', 'Progressing', 4],
    ]);
    expect(findCondition(status.conditions, 'Progressing')?.message).toBe('1/2 nodes ready, 1 pulling');
  });

  it('is Degraded when a node fails, naming the first failure', () => {
    const nodes = nodeMap(...['a', 'b', 'c', 'd', 'e'].map((n) => node(`node-${n}`)));
    const unauthorized = { reason: 'ErrImagePull', message: `401 Unauthorized ${'y'.repeat(2000)}` };
    const pods = [
      pod('node-b', [{ reason: 'ErrImagePull', message: 'manifest unknown' }, 'ready']),
      pod('node-a', [unauthorized, 'ready']),
      pod('node-c', ['ready', 'ready']),
      pod('node-d', ['ready', 'ready']),
      pod('node-e', ['ready', 'ready']),
    ];
    const status = compute({ pods, nodes });
    expect(conditionsOf(status)).toEqual([
      ['Ready', 'False', 'NodesFailing', 4],
      ['Progressing', 'False', 'NodesFailing', 4],
      ['Degraded', 'True', 'NodesFailing', 4],
      // Unauthorized needs a human (a password): kstatus reads the object as Failed.
      ['Stalled', 'True', 'NodesFailing', 4],
    ]);
    const message = findCondition(status.conditions, 'Degraded')?.message ?? '';
    expect(message).toMatch(
      /^2 of 5 nodes failed: node-a docker\.io\/library\/nginx:1\.27 Unauthorized: 401 Unauthorized y+…$/,
    );
    expect(message.length).toBeLessThanOrEqual(1024);

    const moving = compute({
      pods: [...pods, pod('node-f', ['creating', 'ready'])],
      nodes: nodeMap(...nodes.values(), node('node-f')),
    });
    expect(findCondition(moving.conditions, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'Progressing',
    });
  });

  it('is Degraded but not Stalled while every failing node fails in a way that may pass by itself', () => {
    const nodes = nodeMap(node('n1'), node('n2'));
    const reset = { reason: 'ErrImagePull', message: 'read tcp 10.0.0.1:443: connection reset by peer' };
    const status = compute({ pods: [pod('n1', [reset, 'ready']), pod('n2', ['ready', 'ready'])], nodes });
    expect(status.nodes?.[0]?.images?.[0]).toMatchObject({ state: 'Failed', reason: 'ErrImagePull' });
    expect(conditionsOf(status)).toEqual([
      ['Ready', 'False', 'NodesFailing', 4],
      ['Progressing', 'False', 'NodesFailing', 4],
      ['Degraded', 'True', 'NodesFailing', 4],
      ['Stalled', 'False', 'NodesFailing', 4],
    ]);
  });

  it('keeps transition times and other conditions from the previous status', () => {
    const previous: Condition[] = [
      {
        type: 'Reconciling',
        status: 'False',
        lastTransitionTime: '2025-01-01T00:00:00Z',
        reason: 'Reconciled',
        message: '',
      },
      {
        type: 'Ready',
        status: 'False',
        lastTransitionTime: '2025-06-01T00:00:00Z',
        reason: 'Progressing',
        message: '',
      },
    ];
    const status = computePrePulledImageStatus({
      ppi: ppi(undefined, previous),
      pods: [pod('n1', ['creating', 'ready'])],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(1),
      now,
    });
    expect(status.conditions?.map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ['Reconciling', '2025-01-01T00:00:00Z'],
      ['Ready', '2025-06-01T00:00:00Z'],
      ['Progressing', '2026-01-01T00:00:00Z'],
      ['Degraded', '2026-01-01T00:00:00Z'],
      ['Stalled', '2026-01-01T00:00:00Z'],
    ]);
  });
});

describe('tarball images, as the node agent reports them', () => {
  const tarball = { hostPath: '/var/lib/prepull/archives/team-a/nginx.tar' };
  const withTarball = (): PrePulledImage => ({
    ...ppi(),
    spec: { images: [{ image: 'nginx:1.27', tarball }, { image: 'ghcr.io/org/app' }] },
  });
  const spec = importFingerprint({ image: 'nginx:1.27', tarball });
  const reported =
    (entry: Partial<ImportEntryReport> | undefined, agent = true): ImportsOnNode =>
    () => ({
      agent,
      entries: entry ? [{ uid: 'u1', index: 0, spec, state: 'Importing', ...entry }] : [],
    });
  const neverPulled = { reason: 'ErrImageNeverPull', message: 'Container image "nginx" is not present' };
  const first = (imports: ImportsOnNode, fates: ImageFate[]) =>
    computePrePulledImageStatus({
      ppi: withTarball(),
      pods: [pod('n1', fates)],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(1),
      imports,
      now,
    }).nodes?.[0]?.images?.[0];

  it('is importing, not failed, while the hold container waits with ErrImageNeverPull', () => {
    expect(first(reported(undefined), [neverPulled, 'ready'])).toMatchObject({
      state: 'Pulling',
      reason: 'Importing',
    });
    expect(first(reported({ state: 'Importing' }), [neverPulled, 'ready'])).toMatchObject({
      state: 'Pulling',
    });
    expect(first(reported({ state: 'Imported' }), [neverPulled, 'ready'])).toMatchObject({
      state: 'Pulling',
      message: expect.stringContaining('waiting for the kubelet'),
    });
  });

  it('is CredentialsNotVerified when the kubelet refuses the imported image for credentials the pod lacks', () => {
    // The kubelet's words (1.35+) for content pulled onto the node before with a secret.
    const refused = {
      reason: 'ErrImageNeverPull',
      message:
        'Container image "nginx:1.27" is present with pull policy of Never but does not have the proper auth (image secret) that was used to pull the image',
    };
    const state = first(reported({ state: 'Imported' }), [refused, 'ready']);
    expect(state).toMatchObject({ state: 'Failed', reason: 'CredentialsNotVerified' });
    expect(state?.message).toContain('does not have the proper auth');
    expect(state?.message).toContain('imagePullSecrets');
    // Before the agent says it imported, the same wait is part of importing.
    expect(first(reported({ state: 'Importing' }), [refused, 'ready'])).toMatchObject({
      reason: 'Importing',
    });
  });

  it("is Ready once the hold container runs, and Failed with the agent's reason and message", () => {
    expect(first(reported({ state: 'Imported' }), ['ready', 'ready'])).toMatchObject({ state: 'Ready' });
    expect(
      first(reported({ state: 'Failed', reason: 'ChecksumMismatch', message: 'sha256 differs' }), [
        neverPulled,
        'ready',
      ]),
    ).toEqual({ image: NGINX, state: 'Failed', reason: 'ChecksumMismatch', message: 'sha256 differs' });
  });

  it("is ImportConflict even though the hold container runs (on someone else's content)", () => {
    expect(
      first(reported({ state: 'Failed', reason: 'ImportConflict', message: 'not ours' }), ['ready', 'ready']),
    ).toMatchObject({ state: 'Failed', reason: 'ImportConflict' });
  });

  it("waits, from a volume claim, for the puller pod's sender, and says which container that is", () => {
    const claim = { persistentVolumeClaim: { claimName: 'images', path: 'nginx.tar' } };
    const state = computePrePulledImageStatus({
      ppi: {
        ...ppi(),
        spec: { images: [{ image: 'ghcr.io/org/app' }, { image: 'nginx:1.27', tarball: claim }] },
      },
      pods: [pod('n1', ['ready', neverPulled], { images: [APP, NGINX] })],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(1),
      imports: () => ({ agent: true, entries: [] }),
      now,
    }).nodes?.[0]?.images?.find((i) => i.image === NGINX);
    expect(state).toMatchObject({ state: 'Pulling', reason: 'Importing' });
    expect(state?.message).toBe(
      "waiting for the puller pod's archive-1 container to send the archive from claim images to the node agent",
    );
  });

  it('reads the same pod object afresh when only the agent report changed', () => {
    // Status passes reuse a pod's image states while the pod object is the same; not for imports.
    const same = pod('n1', [neverPulled, 'ready']);
    const pass = (imports: ImportsOnNode) =>
      computePrePulledImageStatus({
        ppi: withTarball(),
        pods: [same],
        nodes: nodeMap(node('n1')),
        daemonSet: daemonSet(1),
        imports,
        now,
      }).nodes?.[0]?.images?.[0];
    expect(pass(reported({ state: 'Importing' }))).toMatchObject({ state: 'Pulling', reason: 'Importing' });
    expect(pass(reported({ state: 'Failed', reason: 'ChecksumMismatch', message: 'differs' }))).toMatchObject(
      {
        state: 'Failed',
        reason: 'ChecksumMismatch',
      },
    );
  });

  it('ignores a report about an older spec of the image', () => {
    const stale: ImportsOnNode = () => ({
      agent: true,
      entries: [{ uid: 'u1', index: 0, spec: 'older', state: 'Failed', reason: 'ImportFailed' }],
    });
    expect(first(stale, [neverPulled, 'ready'])).toMatchObject({ state: 'Pulling', reason: 'Importing' });
  });

  it('says so when no agent runs on the node', () => {
    expect(first(reported(undefined, false), [neverPulled, 'ready'])).toMatchObject({
      state: 'Pending',
      reason: 'AgentMissing',
    });
  });
});

describe('pods the cluster refuses', () => {
  it('is PodsRefused with the API server message while nodes have no pod', () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1'), node('n2'), node('n3')),
      daemonSet: daemonSet(3),
      podRefusal: 'pods "ppi-web-abcde" is forbidden: exceeded quota: compute, requested: pods=1',
    });
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'PodsRefused'],
      ['Progressing', 'True', 'PodsRefused'],
      ['Degraded', 'True', 'PodsRefused'],
      // The DaemonSet controller retries: not stalled.
      ['Stalled', 'False', 'PodsRefused'],
    ]);
    expect(status.conditions?.[2]?.message).toBe(
      '2 of 3 nodes have no puller pod; the DaemonSet controller\'s last try: pods "ppi-web-abcde" is forbidden: exceeded quota: compute, requested: pods=1',
    );
  });

  it('is ignored once every node has its pod', () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1')),
      podRefusal: 'exceeded quota',
    });
    expect(status.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
  });
});

describe('desired nodes after nodes are deleted', () => {
  it('counts only nodes that exist, while the deleted nodes still have pods and the DaemonSet still counts them', () => {
    const pods = ['n1', 'n2', 'n3', 'gone-1', 'gone-2'].map((n) => pod(n, ['ready', 'ready']));
    // The DaemonSet controller still wants 5 (its count lags the node deletion until PodGC).
    const status = compute({
      pods,
      nodes: nodeMap(node('n1'), node('n2'), node('n3')),
      daemonSet: daemonSet(5),
    });
    expect(status).toMatchObject({ ready: '3/3', desiredNodes: 3, readyNodes: 3 });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('still counts an existing node without a pod yet as pending', () => {
    const pods = ['n1', 'gone-1'].map((n) => pod(n, ['ready', 'ready']));
    const status = compute({ pods, nodes: nodeMap(node('n1'), node('n2')), daemonSet: daemonSet(3) });
    expect(status).toMatchObject({ ready: '1/2', desiredNodes: 2 });
  });
});

describe('stalledStatus', () => {
  it('stalls with InvalidSpec and keeps the rest of the status', () => {
    const before = computePrePulledImageStatus({
      ppi: ppi(),
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1')),
      daemonSet: daemonSet(1),
      now,
    });
    const p = { ...ppi(), metadata: { ...ppi().metadata, generation: 5 }, status: before };
    const failure = { reason: 'InvalidSpec', message: 'images[0].image: bad', retry: false };
    const status = stalledStatus(p, failure, new Date('2026-01-02T00:00:00Z'));
    expect(status).toMatchObject({ observedGeneration: 5, readyNodes: 1, desiredNodes: 1, ready: '1/1' });
    expect(
      status.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration, c.message]),
    ).toEqual([
      ['Ready', 'False', 'InvalidSpec', 5, 'images[0].image: bad'],
      ['Progressing', 'False', 'InvalidSpec', 5, 'images[0].image: bad'],
      ['Degraded', 'True', 'InvalidSpec', 5, 'images[0].image: bad'],
      ['Stalled', 'True', 'InvalidSpec', 5, 'images[0].image: bad'],
    ]);
    expect(findCondition(status.conditions, 'Ready')?.lastTransitionTime).toBe('2026-01-02T00:00:00Z');
    expect(findCondition(status.conditions, 'Progressing')?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });

  it('keeps Progressing True for a failed step that is retried, with the server message', () => {
    const failure = {
      reason: 'Forbidden',
      message: 'applying the puller DaemonSet: 403 Forbidden: exceeded quota: pods',
      retry: true,
    };
    const status = stalledStatus(ppi(), failure, now);
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'False', 'Forbidden'],
      ['Progressing', 'True', 'Forbidden'],
      ['Degraded', 'True', 'Forbidden'],
      ['Stalled', 'False', 'Forbidden'],
    ]);
    expect(findCondition(status.conditions, 'Degraded')?.message).toContain('exceeded quota');
  });
});

describe('computePrePulledImageStatus: bounds', () => {
  it('stays small for 1000 nodes × 10 images with half of them failing', () => {
    const images = Array.from({ length: 10 }, (_, i) => `registry.example.com/team/image-${i}:v1.2.3`);
    const normalized = images;
    const nodes = nodeMap(
      ...Array.from({ length: 1000 }, (_, i) => node(`node-${String(i).padStart(4, '0')}`)),
    );
    const pods = [...nodes.keys()].map((name, i) =>
      pod(
        name,
        images.map((_, j) =>
          i % 2 === 0 && j % 2 === 0
            ? {
                reason: 'ErrImagePull',
                message: `failed to pull ${images[j]}: 401 Unauthorized ${'z'.repeat(600)}`,
              }
            : 'ready',
        ),
        { images: normalized },
      ),
    );
    const status = computePrePulledImageStatus({
      ppi: ppi(images),
      pods,
      nodes,
      daemonSet: daemonSet(1000),
      now,
    });
    expect(status).toMatchObject({
      desiredNodes: 1000,
      readyNodes: 500,
      failedNodes: 500,
      ready: '500/1000',
    });
    expect(JSON.stringify(status).length).toBeLessThan(200_000);
    expect(status.nodes?.length).toBeLessThanOrEqual(MAX_STATUS_NODES);
    expect(status.nodes?.every((n) => !n.ready)).toBe(true);
    expect((status.nodes?.length ?? 0) + (status.nodesOmitted ?? 0)).toBe(1000);
    expect(prePulledImageStatusSchema.safeParse(status).success).toBe(true);
  });
});

describe('registry checks in status', () => {
  const resolved = {
    resolvedDigest: digest('d'),
    platforms: ['linux/amd64'],
    resolvedAt: '2026-01-01T00:00:00Z',
  };
  const notFound = {
    resolvedAt: '2026-01-01T00:00:00Z',
    registryCheck: {
      reason: Reason.NotFound,
      message: 'r.io answered HTTP 404: MANIFEST_UNKNOWN: manifest unknown',
    },
  };

  it("shows each image's resolved digest and platforms next to the digests the nodes hold", () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1')),
      resolutions: [resolved],
    });
    expect(status.images?.[0]).toMatchObject({ image: NGINX, digests: [digest('0')], ...resolved });
    expect(status.images?.[1]).not.toHaveProperty('resolvedDigest');
    expect(prePulledImageStatusSchema.safeParse(status).success).toBe(true);
  });

  it('a failed check makes the object Degraded with its reason, while nodes holding the images stay Ready', () => {
    const status = compute({
      pods: [pod('n1', ['ready', 'ready'])],
      nodes: nodeMap(node('n1')),
      resolutions: [undefined, notFound],
    });
    expect(findCondition(status.conditions, 'Ready')).toMatchObject({
      status: 'True',
      reason: Reason.AllNodesReady,
    });
    expect(findCondition(status.conditions, 'Degraded')).toMatchObject({
      status: 'True',
      reason: Reason.NotFound,
      message: `registry check of ${APP} failed: ${notFound.registryCheck.message}`,
    });
    expect(status.images?.[1]?.registryCheck).toEqual(notFound.registryCheck);
  });

  it('failing nodes come first: their reason stays the Degraded one', () => {
    const status = compute({
      pods: [
        pod('n1', [{ reason: 'ErrImagePull', message: 'unauthorized: authentication required' }, 'ready']),
      ],
      nodes: nodeMap(node('n1')),
      resolutions: [undefined, notFound],
    });
    expect(findCondition(status.conditions, 'Degraded')).toMatchObject({
      status: 'True',
      reason: Reason.NodesFailing,
    });
  });
});

describe('mayHaveBecomeReady', () => {
  const notReady: Condition[] = [
    { type: 'Ready', status: 'False', reason: 'Pulling', message: '', lastTransitionTime: now.toISOString() },
  ];
  it('is true once as many pods hold every image as the DaemonSet wants, and only while status is not Ready', () => {
    expect(mayHaveBecomeReady(ppi(undefined, notReady), 2, daemonSet(2))).toBe(true);
    expect(mayHaveBecomeReady(ppi(undefined, notReady), 2, daemonSet(3))).toBe(false);
    const ready = [{ ...notReady[0]!, status: 'True' as const, reason: 'Ready' }];
    expect(mayHaveBecomeReady(ppi(undefined, ready), 2, daemonSet(2))).toBe(false);
  });
  it('is false while the DaemonSet wants nothing yet', () => {
    expect(mayHaveBecomeReady(ppi(undefined, notReady), 0, daemonSet(0))).toBe(false);
    expect(mayHaveBecomeReady(ppi(undefined, notReady), 2, undefined)).toBe(false);
  });
});

describe('status passes over the same pod objects', () => {
  it('read a pod again for another image: a spec edit finds the old pod lacking the new image', () => {
    const same = pod('n1', ['ready', 'ready']);
    const pass = (images: string[]) =>
      computePrePulledImageStatus({
        ppi: ppi(images),
        pods: [same],
        nodes: nodeMap(node('n1')),
        daemonSet: daemonSet(1),
        now,
      }).nodes?.[0]?.images?.[0];
    expect(pass(['nginx:1.27', 'ghcr.io/org/app'])).toMatchObject({ state: 'Ready' });
    expect(pass(['nginx:1.28', 'ghcr.io/org/app'])).toMatchObject({
      state: 'Pending',
      message: 'waiting for the DaemonSet to roll out the new spec',
    });
    expect(pass(['nginx:1.27', 'ghcr.io/org/app'])).toMatchObject({ state: 'Ready' });
  });
});

describe('onlyCountsMoved', () => {
  const before = {
    ...daemonSet(3),
    metadata: { ...daemonSet(3).metadata, resourceVersion: '10', managedFields: [{ manager: 'a' }] },
  };
  it('is true for a status write that moves counts, with a new resourceVersion and managedFields', () => {
    const after = {
      ...before,
      metadata: { ...before.metadata, resourceVersion: '11', managedFields: [{ manager: 'b' }] },
      status: { ...before.status!, numberReady: 2, currentNumberScheduled: 2, desiredNumberScheduled: 4 },
    };
    expect(onlyCountsMoved(before, after)).toBe(true);
  });
  it('is false when the DaemonSet controller has seen a new generation', () => {
    expect(onlyCountsMoved(daemonSet(3, false), daemonSet(3, true))).toBe(false);
  });
  it('is false when the spec, the generation or lasting metadata changed', () => {
    const spec = { ...before, spec: { ...before.spec, revisionHistoryLimit: 1 } };
    expect(onlyCountsMoved(before, spec)).toBe(false);
    expect(onlyCountsMoved(before, { ...before, metadata: { ...before.metadata, generation: 3 } })).toBe(
      false,
    );
    const annotated = {
      ...before,
      metadata: { ...before.metadata, annotations: { 'prepull.dev/spec-hash': 'x' } },
    };
    expect(onlyCountsMoved(before, annotated)).toBe(false);
    expect(
      onlyCountsMoved(before, { ...before, metadata: { ...before.metadata, ownerReferences: [] } }),
    ).toBe(false);
  });
});

describe('holdsEveryImage', () => {
  it('counts a pod only once every container reports its image', () => {
    expect(holdsEveryImage(pod('a', ['ready', 'ready']))).toBe(true);
    expect(holdsEveryImage(pod('b', ['ready', 'creating']))).toBe(false);
    // A status for one container of two: the other has not been reported yet.
    expect(holdsEveryImage(pod('c', ['ready', 'none']))).toBe(false);
    expect(holdsEveryImage({ ...pod('d', ['ready', 'ready']), status: {} })).toBe(false);
  });
});

describe('statusWriteIntervalOf', () => {
  it('is 2 s, and over more than 2000 nodes 1 ms per node its status last counted', () => {
    expect(statusWriteIntervalOf(ppi())).toBe(STATUS_WRITE_INTERVAL_MS);
    const over = (desiredNodes: number) => ({ ...ppi(), status: { desiredNodes } });
    expect(statusWriteIntervalOf(over(1000))).toBe(2_000);
    expect(statusWriteIntervalOf(over(5000))).toBe(5_000);
  });
});
