import { describe, expect, it } from 'vitest';
import type { PrePulledImage, PrePulledImageSpec } from '../../api/prepulledimage.ts';
import type { Node } from '../../kube/objects.ts';
import { namesImage, pinnedDigests, withPinnedImages } from './pinning.ts';
import type { PullerPod } from './pods.ts';
import { renderPullDaemonSet } from './render.ts';
import { failedCheck, keepingLastDigest, resolvedImage } from './resolution.ts';
import { computePrePulledImageStatus } from './status.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const at = new Date('2026-01-01T00:00:00Z');
const TAG = 'registry.test/team/app:v1';

function ppi(spec: Partial<PrePulledImageSpec> = {}): PrePulledImage {
  return {
    metadata: { name: 'web', namespace: 'team-a', uid: 'u1', generation: 1 },
    spec: {
      images: [
        { image: TAG },
        { image: `registry.test/team/base@${D1}` },
        { image: `registry.test/team/tool:v2@${D1}` },
        { image: 'registry.test/team/model:7b', tarball: { hostPath: '/srv/model.tar' } },
      ],
      refresh: { interval: '1m' },
      ...spec,
    },
  };
}
const resolutions = [0, 1, 2, 3].map(() => resolvedImage(D2, [], at));
const render = (p: PrePulledImage) =>
  renderPullDaemonSet(p, {
    agent: { image: 'agent:v1', pullPolicy: 'IfNotPresent', holdPath: '/hold' },
    extraPullSecrets: [],
  });

describe('pinnedDigests', () => {
  it('pins only tags, under spec.refresh, to the digest a check resolved', () => {
    expect(pinnedDigests(ppi(), resolutions)).toEqual([D2, undefined, undefined, undefined]);
    expect(pinnedDigests(ppi(), [undefined, ...resolutions.slice(1)])).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('pins nothing without spec.refresh or without checks', () => {
    const p = ppi();
    delete p.spec.refresh;
    expect(pinnedDigests(p, resolutions).every((d) => d === undefined)).toBe(true);
    expect(pinnedDigests(ppi(), undefined).every((d) => d === undefined)).toBe(true);
  });

  it('a failed check keeps the last resolved digest, so nothing rolls while the registry is down', () => {
    const failed = keepingLastDigest(failedCheck('RegistryUnavailable', 'down', at), resolutions[0]);
    expect(failed).toMatchObject({ resolvedDigest: D2, registryCheck: { reason: 'RegistryUnavailable' } });
    expect(pinnedDigests(ppi(), [failed])).toEqual([D2, undefined, undefined, undefined]);
    expect(keepingLastDigest(failedCheck('NotFound', 'gone', at), undefined)).not.toHaveProperty(
      'resolvedDigest',
    );
  });
});

describe('withPinnedImages', () => {
  it('names the digest in the hold container and pulls the tag itself beside it, with Always', () => {
    const p = ppi();
    const pinned = withPinnedImages(render(p), pinnedDigests(p, resolutions));
    const containers = pinned.spec.template.spec.containers;
    expect(containers.map((c) => [c.name, c.image, c.imagePullPolicy])).toEqual([
      ['image-0', `${TAG}@${D2}`, 'IfNotPresent'],
      ['image-1', `registry.test/team/base@${D1}`, 'IfNotPresent'],
      ['image-2', `registry.test/team/tool:v2@${D1}`, 'IfNotPresent'],
      ['image-3', 'registry.test/team/model:7b', 'Never'],
      ['tag-0', TAG, 'Always'],
    ]);
    // The tag container only sleeps, like the hold container.
    expect(containers[4]?.command).toEqual(containers[0]?.command);
  });

  it('leaves a DaemonSet without pins as rendered, and a moved tag changes only the pinned image', () => {
    const p = ppi();
    const ds = render(p);
    expect(withPinnedImages(ds, [undefined, undefined, undefined, undefined])).toBe(ds);
    const one = withPinnedImages(ds, [D1]);
    const two = withPinnedImages(ds, [D2]);
    expect(two.spec.template.spec.containers[0]?.image).toBe(`${TAG}@${D2}`);
    expect({ ...two.spec.template.spec.containers[0], image: '' }).toEqual({
      ...one.spec.template.spec.containers[0],
      image: '',
    });
    expect(render(p)).toEqual(ds);
  });

  it('namesImage takes the pinned form as the spec image, and no other repository', () => {
    expect(namesImage(`${TAG}@${D2}`, TAG)).toBe(true);
    expect(namesImage(TAG, TAG)).toBe(true);
    expect(namesImage(`${TAG}0@${D2}`, TAG)).toBe(false);
    expect(namesImage(undefined, TAG)).toBe(false);
  });
});

describe('status of a pinned pod', () => {
  const node: Node = {
    metadata: { name: 'n1' },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const one = ppi({ images: [{ image: TAG }] });
  function pod(tag: 'running' | 'pulling' | { reason: string; message: string }): PullerPod {
    const running = { ready: true, restartCount: 0, state: { running: {} } };
    return {
      metadata: { name: 'ppi-web-a', namespace: 'team-a', creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: {
        nodeName: 'n1',
        containers: [
          { name: 'image-0', image: `${TAG}@${D2}` },
          { name: 'tag-0', image: TAG },
        ],
      },
      status: {
        containerStatuses: [
          { name: 'image-0', image: TAG, imageID: `registry.test/team/app@${D2}`, ...running },
          tag === 'running'
            ? { name: 'tag-0', image: TAG, imageID: `registry.test/team/app@${D2}`, ...running }
            : {
                name: 'tag-0',
                image: TAG,
                imageID: '',
                ready: false,
                restartCount: 0,
                state: { waiting: tag === 'pulling' ? { reason: 'ContainerCreating' } : tag },
              },
        ],
      },
    };
  }
  const nodeState = (p: PullerPod) =>
    computePrePulledImageStatus({ ppi: one, pods: [p], nodes: new Map([['n1', node]]), now: at }).nodes?.[0]
      ?.images?.[0];

  it('is Ready with the pinned digest once the tag container holds the image too', () => {
    expect(nodeState(pod('running'))).toEqual({ image: TAG, state: 'Ready', digest: D2 });
  });

  it('is Pulling while the tag is pulled, and Failed with the kubelet reason when that pull fails', () => {
    expect(nodeState(pod('pulling'))).toMatchObject({ state: 'Pulling' });
    expect(
      nodeState(pod({ reason: 'ErrImagePull', message: 'failed to resolve reference: 401 Unauthorized' })),
    ).toMatchObject({ state: 'Failed', reason: 'Unauthorized', message: expect.stringContaining('tag: ') });
  });
});

describe('a moved tag, as the DaemonSet rolls it', () => {
  it('a node whose new pod still pulls the new digest stays Ready on the old pod, and so does the object', () => {
    const node: Node = {
      metadata: { name: 'n1' },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    const spec = ppi({ images: [{ image: TAG }] });
    spec.status = {
      observedGeneration: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AllNodesReady',
          message: '1/1 nodes hold every image',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const held = (digest: string) => ({
      name: 'image-0',
      image: TAG,
      imageID: `registry.test/team/app@${digest}`,
      ready: true,
      restartCount: 0,
      state: { running: {} },
    });
    const podAt = (name: string, digest: string, created: string, pulled: boolean): PullerPod => ({
      metadata: { name, namespace: 'team-a', creationTimestamp: created },
      spec: {
        nodeName: 'n1',
        containers: [
          { name: 'image-0', image: `${TAG}@${digest}` },
          { name: 'tag-0', image: TAG },
        ],
      },
      status: { containerStatuses: pulled ? [held(digest), { ...held(digest), name: 'tag-0' }] : [] },
    });
    const status = computePrePulledImageStatus({
      ppi: spec,
      pods: [podAt('old', D1, '2026-01-01T00:00:00Z', true), podAt('new', D2, '2026-01-01T00:05:00Z', false)],
      nodes: new Map([['n1', node]]),
      daemonSet: {
        metadata: { name: 'ppi-web', generation: 2 },
        spec: { selector: {}, template: { metadata: {}, spec: { containers: [] } } },
        status: {
          observedGeneration: 1,
          desiredNumberScheduled: 1,
          currentNumberScheduled: 1,
          numberReady: 1,
        },
      },
      now: at,
    });
    expect(status.nodes?.[0]?.images?.[0]).toEqual({ image: TAG, state: 'Ready', digest: D1 });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });
});
