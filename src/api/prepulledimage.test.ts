import { describe, expect, it } from 'vitest';
import { durationMs } from './common.ts';
import {
  MAX_IMAGES,
  MAX_STATUS_NODES,
  type PrePulledImageStatus,
  prePulledImageSpecSchema,
  prePulledImageStatusSchema,
} from './prepulledimage.ts';

const digest = `sha256:${'0'.repeat(64)}`;

describe('PrePulledImage spec schema', () => {
  it('accepts a full spec', () => {
    const spec = {
      images: [
        { image: 'nginx:1.27', name: 'web' },
        { image: `ghcr.io/org/app@${digest}` },
        { image: 'localhost/app:dev', tarball: { hostPath: '/var/lib/images/app.tar' } },
        {
          image: 'registry.local:5000/x:1',
          tarball: { url: 'https://files.local/x.tar', sha256: '0'.repeat(64) },
        },
        {
          image: 'ml/model:3',
          tarball: { persistentVolumeClaim: { claimName: 'images', path: 'ml/model.tar' } },
        },
      ],
      pullPolicy: 'IfNotPresent',
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ operator: 'Exists' }],
      imagePullSecrets: [{ name: 'regcred' }],
      registryCredentials: [{ name: 'ghcr' }],
      maxConcurrentPulls: '10%',
      refresh: { interval: '1h' },
      priorityClassName: 'low',
      resources: { requests: { cpu: '1m', memory: '8Mi' } },
    };
    expect(prePulledImageSpecSchema.parse(spec)).toEqual(spec);
  });

  it.each([
    [{ images: [] }, 'at least one image'],
    [{ images: [{ image: 'Nginx' }] }, 'image reference'],
    [{ images: [{ image: 'nginx' }], extra: 1 }, 'Unrecognized key'],
    [{ images: [{ image: 'nginx', tarball: { hostPath: 'rel/path' } }] }, 'absolute path'],
    [{ images: [{ image: 'nginx' }], refresh: { interval: '1 hour' } }, 'duration'],
    [{ images: [{ image: 'nginx' }], refresh: { interval: '1000h' } }, 'at most 720h'],
    [
      { images: [{ image: 'nginx' }, { image: 'docker.io/library/nginx:latest' }] },
      'docker.io/library/nginx:latest and nginx are the same image (docker.io/library/nginx:latest); list it once',
    ],
    [{ images: [{ image: 'a:1', tarball: { url: 'http://h/a.tar' } }] }, 'sha256 is required'],
    [
      { images: [{ image: 'a:1', tarball: { hostPath: '/var/../etc/shadow' } }] },
      'must not contain a .. segment',
    ],
    [
      {
        images: [{ image: 'a:1', tarball: { persistentVolumeClaim: { claimName: 'c', path: 'a/../../x' } } }],
      },
      'no .. segment',
    ],
    [{ images: [{ image: 'nginx' }], resources: { requests: { 'nvidia.com/gpu': 1 } } }, 'unrecognized_key'],
    [{}, 'take them from workloads with imagesFrom'],
    [{ imagesFrom: { kinds: ['ReplicaSet'] } }, 'kinds'],
    [{ imagesFrom: { selector: { matchExpressions: [{ key: 'a', operator: 'Matches' }] } } }, 'operator'],
  ])('rejects %j', (spec, message) => {
    const result = prePulledImageSpecSchema.safeParse(spec);
    expect(result.success).toBe(false);
    expect(result.error?.message).toContain(message);
  });
});

describe('spec.imagesFrom', () => {
  it('takes the image list from workloads alone; images defaults to none', () => {
    const spec = {
      imagesFrom: { namespaceSelector: { matchLabels: { team: 'ml' } }, kinds: ['Deployment'] },
    };
    expect(prePulledImageSpecSchema.parse(spec)).toEqual({ ...spec, images: [] });
  });
});

describe('durationMs', () => {
  it.each([
    ['1m', 60_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['720h', 2_592_000_000],
  ])('reads %s', (text, ms) => expect(durationMs(text)).toBe(ms));
  it('refuses what is not a duration', () => expect(durationMs('1 hour')).toBeUndefined());
});

describe('PrePulledImage status bounds', () => {
  it('the largest status the schema allows for 1000 nodes × 10 images stays far under etcd limits', () => {
    // Worst case the schema permits with 10 images: every listed node fails every
    // image with a maximal message; the other nodes are only counted.
    const images = Array.from({ length: 10 }, (_, i) => `registry.example.com/team/image-${i}:v1.2.3`);
    const status: PrePulledImageStatus = {
      observedGeneration: 7,
      ready: '0/1000',
      desiredNodes: 1000,
      readyNodes: 0,
      pullingNodes: 0,
      failedNodes: 1000,
      images: images.map((image) => ({ image, digests: [digest], readyNodes: 0 })),
      nodes: Array.from({ length: MAX_STATUS_NODES }, (_, n) => ({
        name: `ip-10-0-${n}-1.eu-west-1.compute.internal`,
        ready: false,
        images: images.map((image) => ({
          image,
          state: 'Failed' as const,
          reason: 'ImagePullBackOff',
          message: 'x'.repeat(512),
        })),
      })),
      nodesOmitted: 1000 - MAX_STATUS_NODES,
    };
    expect(prePulledImageStatusSchema.parse(status)).toBeTruthy();
    const bytes = Buffer.byteLength(JSON.stringify(status));
    // etcd's default request limit is 1.5 MiB; stay under a quarter of it.
    expect(bytes).toBeLessThan((1.5 * 1024 * 1024) / 4);
    expect(MAX_IMAGES).toBeGreaterThanOrEqual(10);
  });
});
