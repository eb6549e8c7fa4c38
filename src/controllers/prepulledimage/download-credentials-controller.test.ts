import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { PrePulledImage } from '../../api/prepulledimage.ts';
import {
  DOWNLOAD_CREDENTIALS_SELECTOR,
  downloadCredentialsCopyName,
  PROBLEM_ANNOTATION,
  renderCredentialsCopy,
} from '../../image/download-credentials.ts';
import type { KubeClient, ListOptions } from '../../kube/client.ts';
import { apiSource, Informer } from '../../kube/informer.ts';
import type { KubeObject, Secret } from '../../kube/objects.ts';
import { Resources, type ResourceType } from '../../kube/resources.ts';
import { SecretWatches } from '../../kube/secret-watches.ts';
import { FakeClock } from '../../runtime/clock.ts';
import {
  addDownloadCredentialsIndex,
  createDownloadCredentialsController,
} from './download-credentials-controller.ts';

const PREPULL = 'prepull-system';
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Lists what it holds by type, namespace and name; watches stay open; records writes. */
class FakeApi {
  objects = new Map<string, KubeObject[]>();
  applied: Secret[] = [];
  deleted: string[] = [];

  async list(type: ResourceType, options: ListOptions) {
    const name = options.fieldSelector?.replace('metadata.name=', '');
    const items = (this.objects.get(type.plural) ?? []).filter(
      (o) =>
        (!options.namespace || o.metadata.namespace === options.namespace) &&
        (!name || o.metadata.name === name) &&
        (!options.labelSelector ||
          Object.entries(o.metadata.labels ?? {}).some(([k, v]) => `${k}=${v}` === options.labelSelector)),
    );
    return { items: structuredClone(items), resourceVersion: '1' };
  }

  async *watch(_type: unknown, _options: unknown, signal: AbortSignal) {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    yield* [];
  }

  async apply(_type: ResourceType, object: Secret) {
    this.applied.push(object);
    return object;
  }

  async delete(_type: ResourceType, name: string, namespace: string) {
    this.deleted.push(`${namespace}/${name}`);
    return true;
  }
}

function ppi(namespace: string, secret: string): PrePulledImage {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name: 'app', namespace, uid: `uid-${namespace}`, resourceVersion: '1' },
    spec: {
      images: [
        {
          image: 'prepull.local/a/app:v1',
          tarball: { url: 'https://f/a.tar', credentialsSecretRef: { name: secret } },
        },
        { image: 'prepull.local/a/b:v1', tarball: { hostPath: '/var/lib/prepull/archives/a/b.tar' } },
      ],
    },
  } as PrePulledImage;
}

const tick = async () => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('the download credentials controller', () => {
  it('copies a named source, says why for a missing one, and deletes a copy nothing names', async () => {
    const api = new FakeApi();
    const clock = new FakeClock();
    const log = pino({ level: 'silent' });
    const client = api as unknown as KubeClient;
    const orphan = renderCredentialsCopy(PREPULL, 'team-z', 'old', { ok: true, authorization: 'Bearer x' });
    orphan.metadata.uid = 'orphan-uid';
    api.objects.set('prepulledimages', [ppi('team-a', 'dl'), ppi('team-b', 'dl')]);
    api.objects.set('secrets', [
      {
        metadata: { name: 'dl', namespace: 'team-a', resourceVersion: '1' },
        data: { username: b64('ci'), password: b64('hunter2') },
      } as Secret,
      orphan,
    ]);
    const informer = <T extends KubeObject>(name: string, selection: Parameters<typeof apiSource>[1]) =>
      new Informer<T>({ name, source: apiSource<T>(client, selection), clock, log });
    const prePulledImages = informer<PrePulledImage>('ppis', { type: Resources.prePulledImages });
    const copies = informer<Secret>('copies', {
      type: Resources.secrets,
      namespace: PREPULL,
      labelSelector: DOWNLOAD_CREDENTIALS_SELECTOR,
    });
    addDownloadCredentialsIndex(prePulledImages);
    prePulledImages.start();
    copies.start();
    await Promise.all([prePulledImages.waitForSync(), copies.waitForSync()]);
    const controller = createDownloadCredentialsController({
      client,
      clock,
      log,
      namespace: PREPULL,
      prePulledImages,
      copies,
      sources: new SecretWatches({
        client,
        newInformer: (name, source) => new Informer<Secret>({ name, source, clock, log }),
      }),
      concurrency: 1,
    });
    controller.start();
    await tick();

    const byName = new Map(api.applied.map((s) => [s.metadata.name, s]));
    const good = byName.get(downloadCredentialsCopyName('team-a', 'dl'));
    expect(good?.metadata.namespace).toBe(PREPULL);
    expect(good?.data).toEqual({ authorization: b64(`Basic ${b64('ci:hunter2')}`) });
    // team-b has no Secret dl: its copy says so, and holds nothing of team-a's.
    const missing = byName.get(downloadCredentialsCopyName('team-b', 'dl'));
    expect(missing?.data).toEqual({});
    expect(missing?.metadata.annotations?.[PROBLEM_ANNOTATION]).toContain(
      'in namespace team-b does not exist',
    );
    expect(api.deleted).toEqual([`${PREPULL}/${orphan.metadata.name}`]);

    await controller.stop();
    await Promise.all([prePulledImages.stop(), copies.stop()]);
  });
});
