import { describe, expect, it } from 'vitest';
import { isPullerPodOf } from '../../agent/node/imports/plan.ts';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import type { DaemonSet, Node, NodeSelectorTerm } from '../../kube/objects.ts';
import {
  archDaemonSetName,
  archDaemonSetNameOf,
  combinedDaemonSet,
  PLATFORM_GROUP_LABEL,
  planForNodes,
  planPlatforms,
  splitByPlatform,
} from './platforms.ts';
import type { PullerPod } from './pods.ts';
import { renderPullDaemonSet } from './render.ts';
import { failedCheck, keepingLastDigest, resolvedImage } from './resolution.ts';
import { computePrePulledImageStatus, nodeProgress } from './status.ts';

const at = new Date('2026-01-01T00:00:00Z');
const D = `sha256:${'d'.repeat(64)}`;
const ALL = 'registry.test/team/all:v1';
const ARM = 'registry.test/team/arm-only:v1';
const NONE = 'registry.test/team/s390x-only:v1';
const linux = (...archs: string[]) => archs.map((a) => ({ os: 'linux', architecture: a }));

const ppi: PrePulledImage = {
  metadata: { name: 'web', namespace: 'team-a', uid: 'u1', generation: 1 },
  spec: {
    images: [
      { image: ALL },
      { image: ARM },
      { image: NONE },
      { image: 'registry.test/team/model:7b', tarball: { hostPath: '/srv/model.tar' } },
    ],
  },
};
const resolutions = [
  resolvedImage(D, linux('amd64', 'arm64'), at),
  resolvedImage(D, linux('arm64'), at),
  resolvedImage(D, linux('s390x'), at),
  undefined,
];
const node = (name: string, arch?: string): Node => ({
  metadata: { name, labels: { 'kubernetes.io/os': 'linux', ...(arch && { 'kubernetes.io/arch': arch }) } },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});
const render = () =>
  renderPullDaemonSet(ppi, {
    agent: { image: 'agent:v1', pullPolicy: 'IfNotPresent', holdPath: '/hold' },
    extraPullSecrets: [],
  });
const termsOf = (ds: DaemonSet) =>
  (
    ds.spec.template.spec.affinity as {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: NodeSelectorTerm[] };
      };
    }
  ).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;

describe('planPlatforms', () => {
  it('leaves out of the own DaemonSet each architecture that lacks an image, grouped by what it does offer', () => {
    const plan = planPlatforms(ppi, resolutions, ['amd64', 'arm64']);
    expect(plan.excluded).toEqual(['amd64', 'arm64']);
    // amd64 lacks both arm64-only and s390x-only; arm64 lacks s390x-only. The tarball goes everywhere.
    expect(plan.groups).toEqual([
      { archs: ['amd64'], images: [0, 3] },
      { archs: ['arm64'], images: [0, 1, 3] },
    ]);
    expect(plan.mismatch(1, 'amd64')).toBe('the image offers linux/arm64; the node is linux/amd64');
    expect(plan.mismatch(0, 'amd64')).toBeUndefined();
    expect(plan.mismatch(1, undefined)).toBeUndefined();
  });

  it('changes nothing when every architecture offers every image, or nothing is known of the platforms', () => {
    const only = { ...ppi, spec: { images: [{ image: ALL }] } };
    expect(planPlatforms(only, resolutions, ['amd64', 'arm64']).excluded).toEqual([]);
    expect(planPlatforms(ppi, undefined, ['amd64']).excluded).toEqual([]);
    expect(planPlatforms(ppi, [failedCheck('RegistryUnavailable', 'down', at)], ['amd64']).excluded).toEqual(
      [],
    );
  });

  it('keeps the platforms of the last good check while the registry is down', () => {
    const down = keepingLastDigest(failedCheck('RegistryUnavailable', 'down', at), resolutions[1]);
    const only = { ...ppi, spec: { images: [{ image: ARM }] } };
    expect(planPlatforms(only, [down], ['amd64']).excluded).toEqual(['amd64']);
  });

  it('an architecture no image is offered for gets no DaemonSet at all', () => {
    const only = { ...ppi, spec: { images: [{ image: ARM }] } };
    const plan = planPlatforms(only, [resolutions[1]], ['amd64', 'arm64']);
    expect(plan).toMatchObject({ excluded: ['amd64'], groups: [] });
  });

  it("plans for the architectures of the object's nodes only", () => {
    const selected = { ...ppi, spec: { ...ppi.spec, nodeSelector: { pool: 'a' } } };
    const a = node('a', 'arm64');
    a.metadata.labels = { ...a.metadata.labels, pool: 'a' };
    const plan = planForNodes(selected, resolutions, [a, node('b', 'amd64'), node('c')]);
    expect(plan.excluded).toEqual(['arm64']);
    expect(plan.groups).toEqual([{ archs: ['arm64'], images: [0, 1, 3] }]);
  });
});

describe('splitByPlatform', () => {
  it('one DaemonSet, as rendered, when nothing is left out', () => {
    const ds = render();
    expect(splitByPlatform(ppi, ds, planPlatforms(ppi, undefined, ['amd64']))).toEqual([ds]);
  });

  it('the own DaemonSet keeps every image off the excluded architectures; each group gets only its images', () => {
    const [own, amd, arm, ...rest] = splitByPlatform(
      ppi,
      render(),
      planPlatforms(ppi, resolutions, ['amd64', 'arm64']),
    );
    expect(rest).toEqual([]);
    expect(own?.metadata.name).toBe('ppi-web');
    expect(own?.spec.template.spec.containers.map((c) => c.name)).toEqual([
      'image-0',
      'image-1',
      'image-2',
      'image-3',
    ]);
    expect(termsOf(own!)[0]?.matchExpressions).toContainEqual({
      key: 'kubernetes.io/arch',
      operator: 'NotIn',
      values: ['amd64', 'arm64'],
    });
    expect(amd?.metadata.name).toBe(archDaemonSetName(ppi, ['amd64']));
    expect(amd?.spec.template.spec.containers.map((c) => c.name)).toEqual(['image-0', 'image-3']);
    expect(amd?.spec.template.spec.initContainers?.map((c) => c.name)).toEqual(['install-hold']);
    expect(termsOf(amd!)[0]?.matchExpressions).toContainEqual({
      key: 'kubernetes.io/arch',
      operator: 'In',
      values: ['amd64'],
    });
    expect(amd?.spec.selector.matchLabels).toEqual({
      'prepull.dev/owner-uid': 'u1',
      [PLATFORM_GROUP_LABEL]: 'amd64',
    });
    expect(amd?.spec.template.metadata.labels?.[PLATFORM_GROUP_LABEL]).toBe('amd64');
    expect(arm?.spec.template.spec.containers.map((c) => c.name)).toEqual(['image-0', 'image-1', 'image-3']);
  });

  it("names architecture DaemonSets so that no object's own DaemonSet (ppi-…) or other object can take the name", () => {
    const name = archDaemonSetName(ppi, ['arm64']);
    expect(name.startsWith('ppa-web-')).toBe(true);
    expect(name).not.toBe(archDaemonSetName({ ...ppi, metadata: { ...ppi.metadata, uid: 'u2' } }, ['arm64']));
    expect(
      archDaemonSetName({ ...ppi, metadata: { ...ppi.metadata, name: 'x'.repeat(253) } }, ['arm64']).length,
    ).toBe(57);
  });
});

describe('status with platforms known', () => {
  const plan = planPlatforms(ppi, resolutions, ['amd64', 'arm64']);
  const armPod: PullerPod = {
    metadata: { name: 'ppa-web-x-1', namespace: 'team-a', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      nodeName: 'arm',
      containers: [0, 1, 3].map((i) => ({ name: `image-${i}`, image: ppi.spec.images[i]!.image })),
    },
    status: {
      containerStatuses: [0, 1, 3].map((i) => ({
        name: `image-${i}`,
        image: ppi.spec.images[i]!.image,
        imageID: `registry.test/x@${D}`,
        ready: true,
        restartCount: 0,
        state: { running: {} },
      })),
    },
  };

  it('names each image an architecture lacks PlatformMismatch, even on a node without any pod, and the others as they are', () => {
    const status = computePrePulledImageStatus({
      ppi,
      pods: [armPod],
      nodes: new Map([
        ['arm', node('arm', 'arm64')],
        ['amd', node('amd', 'amd64')],
      ]),
      platforms: plan,
      now: at,
    });
    const arm = status.nodes?.find((n) => n.name === 'arm');
    expect(arm?.images?.map((s) => [s.state, s.reason])).toEqual([
      ['Ready', undefined],
      ['Ready', undefined],
      ['Failed', 'PlatformMismatch'],
      ['Ready', undefined],
    ]);
    expect(arm?.images?.[2]?.message).toBe('the image offers linux/s390x; the node is linux/arm64');
    // amd64's pod has not been made yet, and it offers images: it waits, like any node without its pod.
    expect(status.nodes?.find((n) => n.name === 'amd')).toBeUndefined();
    expect(status.failedNodes).toBe(1);
  });

  it('a node whose architecture no image offers is listed, failed, though it has no pod', () => {
    const only = { ...ppi, spec: { images: [{ image: ARM }] } };
    const status = computePrePulledImageStatus({
      ppi: only,
      pods: [],
      nodes: new Map([['amd', node('amd', 'amd64')]]),
      platforms: planPlatforms(only, [resolutions[1]], ['amd64']),
      now: at,
    });
    expect(status.nodes).toEqual([
      {
        name: 'amd',
        ready: false,
        images: [
          {
            image: ARM,
            state: 'Failed',
            reason: 'PlatformMismatch',
            message: 'the image offers linux/arm64; the node is linux/amd64',
          },
        ],
      },
    ]);
    expect(status.ready).toBe('0/1');
  });
});

describe('combinedDaemonSet', () => {
  const ds = (desired: number, generation: number, observed: number): DaemonSet => ({
    metadata: { name: 'x', generation },
    spec: { selector: {}, template: { metadata: {}, spec: { containers: [] } } },
    status: {
      observedGeneration: observed,
      desiredNumberScheduled: desired,
      currentNumberScheduled: desired,
      numberReady: 0,
    },
  });
  it('sums the nodes, and is observed only when every DaemonSet is', () => {
    expect(combinedDaemonSet([ds(3, 2, 2)])).toEqual(ds(3, 2, 2));
    const both = combinedDaemonSet([ds(3, 2, 2), ds(4, 5, 5)]);
    expect(both?.status?.desiredNumberScheduled).toBe(7);
    expect(both?.status?.observedGeneration).toBe(both?.metadata.generation);
    const behind = combinedDaemonSet([ds(3, 2, 2), ds(4, 5, 4)]);
    expect(behind?.status?.observedGeneration).toBeLessThan(behind?.metadata.generation ?? 0);
  });
});

describe('the node gate with platforms known', () => {
  const only = { ...ppi, spec: { images: [{ image: ARM }] } };
  it('a node no image fits is failed at once (released, not held until the timeout); another waits for its pod', () => {
    const plan = planPlatforms(only, [resolutions[1]], ['amd64']);
    expect(nodeProgress(only, [], node('amd', 'amd64'), undefined, plan)).toEqual({
      state: 'failed',
      reason: 'PlatformMismatch',
      message: `${ARM}: the image offers linux/arm64; the node is linux/amd64`,
    });
    expect(
      nodeProgress(
        only,
        [],
        node('arm', 'arm64'),
        undefined,
        planPlatforms(only, [resolutions[1]], ['arm64']),
      ),
    ).toEqual({
      state: 'waiting',
    });
    expect(nodeProgress(only, [], node('amd', 'amd64'))).toEqual({ state: 'waiting' });
  });
});

describe('pods of an architecture DaemonSet, for the node agent', () => {
  it("count as the object's puller pods, and a label naming other architectures does not", () => {
    const name = archDaemonSetName(ppi, ['amd64', 'arm64']);
    const pod = (label: string, owner: string) => ({
      metadata: {
        namespace: 'team-a',
        labels: { 'prepull.dev/owner-uid': 'u1', [PLATFORM_GROUP_LABEL]: label },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: owner, uid: 'd', controller: true },
        ],
      },
    });
    expect(archDaemonSetNameOf(ppi, pod('amd64_arm64', name))).toBe(name);
    expect(isPullerPodOf(ppi, pod('amd64_arm64', name))).toBe(true);
    expect(isPullerPodOf(ppi, pod('s390x', name))).toBe(false);
    expect(isPullerPodOf(ppi, pod('amd64_arm64', 'someone-else'))).toBe(false);
  });
});
