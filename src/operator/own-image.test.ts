import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/client.ts';
import type { Pod } from '../kube/objects.ts';
import { FakeClock } from '../runtime/clock.ts';
import { pinnedOwnImage, resolveOwnImage } from './own-image.ts';

const TAG = 'ghcr.io/prepull/prepull:v0.1.0';
const DIGEST = `sha256:${'c'.repeat(64)}`;

function pod(imageID: string | undefined, image = TAG): Pod {
  return {
    metadata: { name: 'prepull-controller-1', namespace: 'prepull-system' },
    spec: {
      containers: [
        { name: 'sidecar', image: 'other:1' },
        { name: 'controller', image },
      ],
    },
    status: {
      containerStatuses: [
        {
          name: 'sidecar',
          image: 'other:1',
          imageID: `docker.io/library/other@sha256:${'d'.repeat(64)}`,
          ready: true,
          restartCount: 0,
        },
        ...(imageID === undefined
          ? []
          : [{ name: 'controller', image, imageID, ready: true, restartCount: 0 }]),
      ],
    },
  } as Pod;
}

describe('pinnedOwnImage', () => {
  it('pins the configured reference to the digest its own container runs, keeping the tag', () => {
    expect(pinnedOwnImage(TAG, pod(`ghcr.io/prepull/prepull@${DIGEST}`))).toEqual({
      pinned: true,
      image: `${TAG}@${DIGEST}`,
    });
    expect(pinnedOwnImage(TAG, pod(`docker-pullable://ghcr.io/prepull/prepull@${DIGEST}`))).toMatchObject({
      image: `${TAG}@${DIGEST}`,
    });
  });

  it('keeps a reference that has a digest, and says why it cannot pin one', () => {
    expect(pinnedOwnImage(`${TAG}@${DIGEST}`, undefined)).toEqual({
      pinned: true,
      image: `${TAG}@${DIGEST}`,
    });
    expect(pinnedOwnImage(TAG, pod(undefined))).toMatchObject({
      pinned: false,
      image: TAG,
      cause: 'no-digest',
    });
    // An image ID alone is the config's digest, which no registry serves: not a pin.
    expect(pinnedOwnImage(TAG, pod(DIGEST))).toMatchObject({ pinned: false, cause: 'no-digest' });
    expect(pinnedOwnImage('registry.example/mirror/prepull:v0.1.0', pod(DIGEST))).toMatchObject({
      pinned: false,
      cause: 'no-container',
    });
  });

  it("takes the pod's only container for the default, whatever it names", () => {
    const mirrored = pod(`registry.corp/prepull@${DIGEST}`, 'registry.corp/prepull:v0.1.0');
    mirrored.spec.containers = mirrored.spec.containers.filter((c) => c.name === 'controller');
    expect(pinnedOwnImage(TAG, mirrored, false)).toEqual({
      pinned: true,
      image: `registry.corp/prepull:v0.1.0@${DIGEST}`,
    });
    expect(pinnedOwnImage(TAG, mirrored, true)).toMatchObject({ pinned: false, cause: 'no-container' });
    // A kustomization that pinned the digest: kept as it is.
    const pinnedByKustomize = pod(undefined, `ghcr.io/prepull/prepull@${DIGEST}`);
    pinnedByKustomize.spec.containers = pinnedByKustomize.spec.containers.filter(
      (c) => c.name === 'controller',
    );
    expect(pinnedOwnImage(TAG, pinnedByKustomize, false)).toEqual({
      pinned: true,
      image: `ghcr.io/prepull/prepull@${DIGEST}`,
    });
  });
});

describe('resolveOwnImage', () => {
  const log = pino({ level: 'silent' });

  it('waits for the kubelet to report the digest, reading the pod by name', async () => {
    const clock = new FakeClock();
    const answers = [pod(undefined), pod(`ghcr.io/prepull/prepull@${DIGEST}`)];
    const asked: unknown[] = [];
    const client = {
      list: async (_type: unknown, options: unknown) => {
        asked.push(options);
        return { items: [answers.shift()!] };
      },
    } as unknown as KubeClient;
    const resolved = resolveOwnImage({
      client,
      clock,
      log,
      pod: { namespace: 'prepull-system', name: 'prepull-controller-1' },
      configured: TAG,
      explicit: true,
      timeoutMs: 30_000,
    });
    await new Promise((r) => setImmediate(r));
    clock.advance(1_000);
    expect(await resolved).toBe(`${TAG}@${DIGEST}`);
    expect(asked).toEqual([
      { namespace: 'prepull-system', fieldSelector: 'metadata.name=prepull-controller-1' },
      { namespace: 'prepull-system', fieldSelector: 'metadata.name=prepull-controller-1' },
    ]);
  });

  it('gives the configured reference outside a pod, asking nothing', async () => {
    const client = { list: () => Promise.reject(new Error('not asked')) } as unknown as KubeClient;
    const clock = new FakeClock();
    expect(
      await resolveOwnImage({
        client,
        clock,
        log,
        pod: undefined,
        configured: TAG,
        explicit: false,
        timeoutMs: 1,
      }),
    ).toBe(TAG);
  });
});
