import { describe, expect, it } from 'vitest';
import type { PrePulledImage, PrePulledImageSpec } from '../../api/prepulledimage.ts';
import type { Container, NodeSelectorTerm } from '../../kube/objects.ts';
import { OWNER_ANNOTATION, OWNER_UID_LABEL, PULL_SLOT_GATE, REFRESH_ROUND_ANNOTATION } from './labels.ts';
import { daemonSetName, type RenderOptions, renderPullDaemonSet } from './render.ts';

const uid = '0b9c3f4e-1111-4222-8333-944455556666';

function ppi(spec: Partial<PrePulledImageSpec> = {}, name = 'web'): PrePulledImage {
  return {
    apiVersion: 'prepull.dev/v1alpha1',
    kind: 'PrePulledImage',
    metadata: { name, namespace: 'team-a', uid, generation: 3 },
    spec: { images: [{ image: 'nginx:1.27' }, { image: 'ghcr.io/org/app' }], ...spec },
  };
}

const options: RenderOptions = {
  agent: { image: 'ghcr.io/prepull/agent:v0.1.0', pullPolicy: 'IfNotPresent', holdPath: '/hold' },
  extraPullSecrets: [],
};

function allContainers(spec: { containers: Container[]; initContainers?: Container[] }): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function hasUndefined(value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.some(hasUndefined);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasUndefined);
  return false;
}

describe('daemonSetName', () => {
  it('prefixes short names', () => {
    expect(daemonSetName('web')).toBe('ppi-web');
    expect(daemonSetName('a'.repeat(53))).toBe(`ppi-${'a'.repeat(53)}`);
  });

  it('shortens long names to 57 characters with a stable hash suffix', () => {
    const long = 'a'.repeat(54);
    const name = daemonSetName(long);
    expect(name).toHaveLength(57);
    expect(name).toMatch(/^ppi-a+-[0-9a-f]{8}$/);
    expect(daemonSetName(long)).toBe(name);
    expect(daemonSetName(`${'a'.repeat(53)}b`)).not.toBe(name);
  });

  it('never leaves a separator before the suffix', () => {
    const name = daemonSetName(`${'a'.repeat(43)}.${'b'.repeat(100)}`);
    expect(name).toMatch(/^ppi-a{43}-[0-9a-f]{8}$/);
  });
});

describe('renderPullDaemonSet', () => {
  it('names, labels and owns the DaemonSet', () => {
    const ds = renderPullDaemonSet(ppi(), options);
    expect(ds.metadata).toMatchObject({
      name: 'ppi-web',
      namespace: 'team-a',
      labels: {
        'app.kubernetes.io/name': 'prepull-puller',
        'app.kubernetes.io/managed-by': 'prepull',
        [OWNER_UID_LABEL]: uid,
      },
      annotations: { [OWNER_ANNOTATION]: 'team-a/web' },
      ownerReferences: [
        {
          apiVersion: 'prepull.dev/v1alpha1',
          kind: 'PrePulledImage',
          name: 'web',
          uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(ds.spec.selector).toEqual({ matchLabels: { [OWNER_UID_LABEL]: uid } });
    expect(ds.spec.template.metadata.labels).toEqual(ds.metadata.labels);
    expect(ds.spec.template.metadata.annotations).toEqual({
      [OWNER_ANNOTATION]: 'team-a/web',
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
      'cluster-autoscaler.kubernetes.io/enable-ds-eviction': 'true',
    });
    expect(ds.spec.revisionHistoryLimit).toBe(2);
  });

  it('installs hold and runs it in one container per image', () => {
    const pod = renderPullDaemonSet(ppi(), options).spec.template.spec;
    expect(pod.initContainers).toEqual([
      expect.objectContaining({
        name: 'install-hold',
        image: 'ghcr.io/prepull/agent:v0.1.0',
        imagePullPolicy: 'IfNotPresent',
        command: ['/hold', 'install', '/prepull'],
        volumeMounts: [{ name: 'prepull', mountPath: '/prepull' }],
        resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } },
      }),
    ]);
    expect(pod.containers.map((c) => [c.name, c.image, c.command])).toEqual([
      ['image-0', 'docker.io/library/nginx:1.27', ['/prepull/hold']],
      ['image-1', 'ghcr.io/org/app:latest', ['/prepull/hold']],
    ]);
    for (const c of pod.containers) {
      expect(c.volumeMounts).toEqual([{ name: 'prepull', mountPath: '/prepull', readOnly: true }]);
    }
    expect(pod.volumes).toEqual([{ name: 'prepull', emptyDir: { sizeLimit: '4Mi' } }]);
    expect(pod).toMatchObject({
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 5,
    });
  });

  it('meets PodSecurity restricted on the pod and every container', () => {
    const pod = renderPullDaemonSet(ppi(), options).spec.template.spec;
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const containers = allContainers(pod);
    expect(containers).toHaveLength(3);
    for (const c of containers) {
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
  });

  it.each([
    [{ images: [{ image: 'nginx' }] }, 'Always'],
    [{ images: [{ image: 'nginx:latest' }] }, 'Always'],
    [{ images: [{ image: 'nginx:1.27' }] }, 'IfNotPresent'],
    [{ images: [{ image: `nginx@sha256:${'a'.repeat(64)}` }] }, 'IfNotPresent'],
    [{ images: [{ image: 'nginx' }], pullPolicy: 'IfNotPresent' as const }, 'IfNotPresent'],
    [{ images: [{ image: 'nginx:1.27' }], pullPolicy: 'Always' as const }, 'Always'],
    [{ images: [{ image: 'nginx', tarball: { hostPath: '/images/nginx.tar' } }] }, 'Never'],
    [
      {
        images: [{ image: 'nginx', tarball: { hostPath: '/images/nginx.tar' } }],
        pullPolicy: 'Always' as const,
      },
      'Never',
    ],
  ])('pull policy for %j is %s', (spec, expected) => {
    const pod = renderPullDaemonSet(ppi(spec), options).spec.template.spec;
    expect(pod.containers[0]?.imagePullPolicy).toBe(expected);
  });

  it('uses spec.resources for image containers but keeps the init container small', () => {
    const resources = { requests: { cpu: '5m', memory: '8Mi' } };
    const pod = renderPullDaemonSet(ppi({ resources }), options).spec.template.spec;
    for (const c of pod.containers) expect(c.resources).toEqual(resources);
    expect(pod.initContainers?.[0]?.resources).toEqual({
      requests: { cpu: '1m', memory: '4Mi' },
      limits: { memory: '16Mi' },
    });
  });

  it('merges and deduplicates pull secrets, spec first', () => {
    const pod = renderPullDaemonSet(
      ppi({ imagePullSecrets: [{ name: 'b' }, { name: 'a' }, { name: 'b' }] }),
      {
        ...options,
        extraPullSecrets: ['c', 'a'],
      },
    ).spec.template.spec;
    expect(pod.imagePullSecrets).toEqual([{ name: 'b' }, { name: 'a' }, { name: 'c' }]);
  });

  it('omits pull secrets, node selector and priority class when there are none; tolerates only the startup taint', () => {
    const pod = renderPullDaemonSet(ppi({ nodeSelector: {}, tolerations: [] }), options).spec.template.spec;
    expect(pod.tolerations).toEqual([
      { key: 'prepull.dev/images-not-ready', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    for (const key of ['imagePullSecrets', 'nodeSelector', 'priorityClassName', 'schedulingGates']) {
      expect(pod).not.toHaveProperty(key);
    }
  });

  it('copies node selector and tolerations', () => {
    const spec = {
      nodeSelector: { pool: 'gpu' },
      tolerations: [{ key: 'gpu', operator: 'Exists' as const }],
    };
    const pod = renderPullDaemonSet(ppi(spec), options).spec.template.spec;
    expect(pod.nodeSelector).toEqual({ pool: 'gpu' });
    expect(pod.tolerations).toEqual([
      { key: 'gpu', operator: 'Exists' },
      { key: 'prepull.dev/images-not-ready', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });

  it('prefers the spec priority class over the default', () => {
    const withDefault = { ...options, defaultPriorityClassName: 'prepull-low' };
    expect(renderPullDaemonSet(ppi(), withDefault).spec.template.spec.priorityClassName).toBe('prepull-low');
    expect(
      renderPullDaemonSet(ppi({ priorityClassName: 'mine' }), withDefault).spec.template.spec
        .priorityClassName,
    ).toBe('mine');
  });

  describe('affinity', () => {
    const linux = { key: 'kubernetes.io/os', operator: 'In' as const, values: ['linux'] };
    const termsOf = (p: PrePulledImage): NodeSelectorTerm[] | undefined =>
      renderPullDaemonSet(p, options).spec.template.spec.affinity?.nodeAffinity
        ?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;

    it('requires Linux when the spec has no terms', () => {
      expect(termsOf(ppi())).toEqual([{ matchExpressions: [linux] }]);
    });

    it('adds Linux to every required term and copies preferred terms', () => {
      const zone = { key: 'zone', operator: 'In' as const, values: ['a'] };
      const byName = { key: 'metadata.name', operator: 'In' as const, values: ['n1'] };
      const preferred = [{ weight: 10, preference: { matchExpressions: [zone] } }];
      const input = ppi({
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [zone] },
                { matchFields: [byName] },
                { matchExpressions: [linux] },
              ],
            },
            preferredDuringSchedulingIgnoredDuringExecution: preferred,
          },
        },
      });
      const frozen = structuredClone(input);
      const ds = renderPullDaemonSet(input, options);
      expect(
        ds.spec.template.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
      ).toEqual({
        nodeSelectorTerms: [
          { matchExpressions: [zone, linux] },
          { matchFields: [byName], matchExpressions: [linux] },
          { matchExpressions: [linux] },
        ],
      });
      expect(
        ds.spec.template.spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
      ).toEqual(preferred);
      expect(input).toEqual(frozen);
    });
  });

  describe('throttling', () => {
    it('gates pods and limits the rollout when maxConcurrentPulls is set', () => {
      const ds = renderPullDaemonSet(ppi({ maxConcurrentPulls: '10%' }), options);
      expect(ds.spec.template.spec.schedulingGates).toEqual([{ name: PULL_SLOT_GATE }]);
      expect(ds.spec.updateStrategy).toEqual({
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '10%', maxUnavailable: 0 },
      });
      expect(
        renderPullDaemonSet(ppi({ maxConcurrentPulls: 3 }), options).spec.updateStrategy?.rollingUpdate,
      ).toEqual({ maxSurge: 3, maxUnavailable: 0 });
    });

    it('neither gates nor limits otherwise', () => {
      const ds = renderPullDaemonSet(ppi(), options);
      expect(ds.spec.template.spec).not.toHaveProperty('schedulingGates');
      expect(ds.spec.updateStrategy).toEqual({
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '100%', maxUnavailable: 0 },
      });
    });
  });

  it('shortens a long name', () => {
    const ds = renderPullDaemonSet(ppi({}, 'x'.repeat(200)), options);
    expect(ds.metadata.name).toHaveLength(57);
    expect(ds.metadata.ownerReferences?.[0]?.name).toBe('x'.repeat(200));
    expect(ds.spec.template.metadata.annotations?.[OWNER_ANNOTATION]).toBe(`team-a/${'x'.repeat(200)}`);
  });

  it('is deterministic and has no undefined values', () => {
    const full = ppi({
      pullPolicy: 'IfNotPresent',
      nodeSelector: { pool: 'a' },
      tolerations: [{ key: 'k', operator: 'Equal', value: undefined }],
      imagePullSecrets: [{ name: 's' }],
      maxConcurrentPulls: 2,
      priorityClassName: 'p',
      resources: { requests: { cpu: '1m' }, limits: undefined },
    });
    const a = renderPullDaemonSet(full, { ...options, extraPullSecrets: ['t'] });
    const b = renderPullDaemonSet(structuredClone(full), { ...options, extraPullSecrets: ['t'] });
    expect(a).toEqual(b);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(hasUndefined(a)).toBe(false);
    expect(hasUndefined(renderPullDaemonSet(ppi(), options))).toBe(false);
  });

  it('refuses an object without a uid', () => {
    const p = ppi();
    delete p.metadata.uid;
    expect(() => renderPullDaemonSet(p, options)).toThrow(/uid/);
  });
});

describe('refresh', () => {
  const images = [
    { image: 'nginx:1.27' },
    { image: `ghcr.io/org/app@sha256:${'a'.repeat(64)}` },
    { image: 'example.com/model:7b', tarball: { hostPath: '/srv/model.tar' } },
  ];

  it('pulls tags with Always, keeps digests and tarballs as they are, and marks the round on the pod template', () => {
    const ds = renderPullDaemonSet(ppi({ images, pullPolicy: 'IfNotPresent', refresh: { interval: '1h' } }), {
      ...options,
      refreshRound: 4,
    });
    expect(ds.spec.template.spec.containers.map((c) => c.imagePullPolicy)).toEqual([
      'Always',
      'IfNotPresent',
      'Never',
    ]);
    expect(ds.spec.template.metadata?.annotations?.[REFRESH_ROUND_ANNOTATION]).toBe('4');
  });

  it('a new round changes only the round annotation', () => {
    const spec = { images, refresh: { interval: '1h' } };
    const a = renderPullDaemonSet(ppi(spec), { ...options, refreshRound: 4 });
    const b = renderPullDaemonSet(ppi(spec), { ...options, refreshRound: 5 });
    delete a.spec.template.metadata?.annotations?.[REFRESH_ROUND_ANNOTATION];
    delete b.spec.template.metadata?.annotations?.[REFRESH_ROUND_ANNOTATION];
    expect(b).toEqual(a);
  });

  it('without spec.refresh there is no round and the pull policy follows the spec', () => {
    const ds = renderPullDaemonSet(ppi({ images, pullPolicy: 'IfNotPresent' }), {
      ...options,
      refreshRound: 4,
    });
    expect(ds.spec.template.metadata?.annotations).not.toHaveProperty(REFRESH_ROUND_ANNOTATION);
    expect(ds.spec.template.spec.containers.map((c) => c.imagePullPolicy)).toEqual([
      'IfNotPresent',
      'IfNotPresent',
      'Never',
    ]);
  });
});

describe('tarball images', () => {
  it('leave the puller pod PodSecurity restricted: no host path, no root, no privilege, no import step', () => {
    const ds = renderPullDaemonSet(
      ppi({
        images: [
          { image: 'example.com/app:1', tarball: { hostPath: '/var/lib/prepull/archives/team-a/app.tar' } },
          {
            image: 'example.com/model:1',
            tarball: { url: 'https://archives.example/model.tar', sha256: 'a'.repeat(64) },
          },
        ],
      }),
      options,
    );
    const spec = ds.spec.template.spec;
    expect(JSON.stringify(spec)).not.toContain('hostPath');
    expect(JSON.stringify(spec)).not.toContain('archives.example');
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect((spec.initContainers ?? []).map((c) => c.name)).toEqual(['install-hold']);
    for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
    expect(spec.containers.map((c) => c.imagePullPolicy)).toEqual(['Never', 'Never']);
  });

  it('from volume claims: one read-only volume per claim, a restricted sender per image with a projected agent token, nothing else of the claim in the spec', () => {
    const claim = (claimName: string, path: string) => ({ persistentVolumeClaim: { claimName, path } });
    const ds = renderPullDaemonSet(
      ppi({
        images: [
          { image: 'example.com/app:1', tarball: claim('images', 'app.tar') },
          { image: 'example.com/plain:1' },
          { image: 'example.com/model:1', tarball: claim('images', 'models/m.tar') },
          { image: 'example.com/tool:1', tarball: claim('tools', 't.tar') },
        ],
      }),
      { ...options, agent: { ...options.agent, archiveUrl: 'http://10.96.0.9:8471/' } },
    );
    const spec = ds.spec.template.spec;
    expect(spec.volumes).toEqual([
      { name: 'prepull', emptyDir: { sizeLimit: '4Mi' } },
      { name: 'claim-0', persistentVolumeClaim: { claimName: 'images', readOnly: true } },
      { name: 'claim-1', persistentVolumeClaim: { claimName: 'tools', readOnly: true } },
      {
        name: 'agent-token',
        projected: {
          sources: [
            {
              serviceAccountToken: { audience: 'prepull.dev/agent', expirationSeconds: 3600, path: 'token' },
            },
          ],
        },
      },
    ]);
    const senders = spec.containers.filter((c) => c.name.startsWith('archive-'));
    expect(senders.map((c) => c.name)).toEqual(['archive-0', 'archive-2', 'archive-3']);
    expect(senders[1]).toMatchObject({
      image: options.agent.image,
      args: [
        'send-archive',
        '--root=/archives/images',
        '--file=models/m.tar',
        `--to=http://10.96.0.9:8471/v1/imports/${uid}/2`,
        '--token-file=/var/run/secrets/prepull.dev/agent/token',
      ],
      volumeMounts: [
        { name: 'claim-0', mountPath: '/archives/images', readOnly: true },
        { name: 'agent-token', mountPath: '/var/run/secrets/prepull.dev/agent', readOnly: true },
      ],
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
    });
    expect(senders[2]?.volumeMounts).toContainEqual({
      name: 'claim-1',
      mountPath: '/archives/tools',
      readOnly: true,
    });
    // Still no API token mounted, no host path, and the hold containers as before.
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(JSON.stringify(spec)).not.toContain('hostPath');
    expect(spec.containers.filter((c) => c.name.startsWith('image-')).map((c) => c.imagePullPolicy)).toEqual([
      'Never',
      'IfNotPresent',
      'Never',
      'Never',
    ]);
    // Without claims, none of it.
    const plain = renderPullDaemonSet(ppi(), options).spec.template.spec;
    expect(plain.volumes).toEqual([{ name: 'prepull', emptyDir: { sizeLimit: '4Mi' } }]);
    expect(plain.containers.map((c) => c.name)).toEqual(['image-0', 'image-1']);
  });
});
