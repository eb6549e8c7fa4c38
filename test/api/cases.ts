/**
 * Objects the API server must accept, and objects it must reject with a message
 * a user understands. Shared by the cluster tier and kept as data so each case
 * reads as the YAML a user would write.
 */

const digest = `sha256:${'a'.repeat(64)}`;

type Spec = Record<string, unknown>;

export interface Case {
  name: string;
  kind: 'PrePulledImage' | 'RegistryCredential';
  spec: Spec;
  /** Substring of the API server's error; absent for objects that must be accepted. */
  rejectedWith?: string;
  /**
   * For a spec the API server accepts (its CEL cannot say it) but the
   * controller's spec parse refuses, so the object gets InvalidSpec: a
   * substring of that message.
   */
  invalidSpec?: string;
}

const ppi = (name: string, spec: Spec, rejectedWith?: string): Case => ({
  name,
  kind: 'PrePulledImage',
  spec,
  ...(rejectedWith ? { rejectedWith } : {}),
});
const regcred = (name: string, spec: Spec, rejectedWith?: string): Case => ({
  name,
  kind: 'RegistryCredential',
  spec,
  ...(rejectedWith ? { rejectedWith } : {}),
});

const one = [{ image: 'nginx:1.27' }];
const source = { secretRef: { name: 'pull', namespace: 'prepull-system' } };

export const goodCases: Case[] = [
  ppi('minimal', { images: [{ image: 'nginx' }] }),
  ppi('images-from-alone', { imagesFrom: {} }),
  ppi('images-from-everything', {
    images: one,
    imagesFrom: {
      namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['ml'] }] },
      selector: { matchLabels: { pool: 'gpu' } },
      kinds: ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'Pod'],
    },
  }),
  ppi('digest-and-tag', {
    images: [{ image: `ghcr.io/org/app:v1@${digest}`, name: 'app' }, { image: `busybox@${digest}` }],
  }),
  ppi('registry-port', {
    images: [{ image: '127.0.0.1:5443/prepull-test/scratch:v1' }],
    pullPolicy: 'Always',
  }),
  ppi('targeting', {
    images: one,
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['g5.xlarge'] },
              ],
            },
          ],
        },
      },
    },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    maxConcurrentPulls: 5,
    refresh: { interval: '30m' },
    imagePullSecrets: [{ name: 'ghcr' }],
    registryCredentials: [{ name: 'ghcr' }],
    priorityClassName: 'prepull-low',
    resources: { requests: { cpu: '1m', memory: '8Mi' }, limits: { memory: '16Mi' } },
  }),
  ppi('tarballs', {
    images: [
      { image: 'localhost/app:dev', tarball: { hostPath: '/var/lib/images/app.tar' } },
      {
        image: 'registry.k8s.io/pause:3.10',
        tarball: {
          url: 'https://files.internal/pause.tar',
          sha256: 'b'.repeat(64),
          credentialsSecretRef: { name: 'downloads' },
        },
      },
      {
        image: 'ml/model:3',
        tarball: { persistentVolumeClaim: { claimName: 'images', path: 'ml/model.tar' } },
      },
    ],
    maxConcurrentPulls: '25%',
  }),
  regcred('selector', {
    source,
    target: { secretName: 'ghcr-pull', namespaceSelector: { matchLabels: { team: 'a' } } },
  }),
  regcred('list', {
    source: { ...source, registry: 'registry.internal:5000' },
    target: { secretName: 'pull', namespaces: ['a', 'b'], excludeNamespaces: ['kube-system'] },
    serviceAccounts: ['default', 'builder'],
  }),
  // RegistryCredential: who may ask for the secret through a PrePulledImage (#12, #17).
  regcred('allow-requests-from-labelled', {
    source,
    target: {
      secretName: 'pull',
      namespaces: ['ci'],
      allowRequestsFrom: { namespaceSelector: { matchLabels: { 'pulls-from': 'corp' } } },
    },
  }),
  regcred('allow-requests-from-all', {
    source,
    target: { secretName: 'pull', namespaces: ['ci'], allowRequestsFrom: { namespaceSelector: {} } },
  }),
];

const tarball = (source: Spec): Spec => ({ images: [{ image: 'a:1', tarball: source }] });
const pvc = (path: string): Spec => tarball({ persistentVolumeClaim: { claimName: 'images', path } });
const resources = (r: Spec): Spec => ({ images: one, resources: r });

/** Specs the API server takes but the controller refuses (InvalidSpec). */
export const invalidSpecCases: Case[] = [
  {
    name: 'same-image-after-normalisation',
    kind: 'PrePulledImage',
    spec: { images: [{ image: 'nginx' }, { image: 'docker.io/library/nginx:latest' }] },
    invalidSpec: 'are the same image (docker.io/library/nginx:latest); list it once',
  },
  {
    name: 'same-digest-after-normalisation',
    kind: 'PrePulledImage',
    spec: { images: [{ image: `busybox@${digest}` }, { image: `docker.io/library/busybox@${digest}` }] },
    invalidSpec: `are the same image (docker.io/library/busybox@${digest})`,
  },
  {
    name: 'same-image-library-prefix',
    kind: 'PrePulledImage',
    spec: { images: [{ image: 'library/redis:7' }, { image: 'redis:7' }] },
    invalidSpec: 'are the same image (docker.io/library/redis:7)',
  },
];

export const badCases: Case[] = [
  // Multi-tenant safety (issue 12): limits and paths a hostile author tries.
  ppi(
    'interval-too-long',
    { images: one, refresh: { interval: '1000h' } },
    'refresh.interval must be at most 720h',
  ),
  ppi(
    'interval-too-long-in-minutes',
    { images: one, refresh: { interval: '43201m' } },
    'refresh.interval must be at most 720h',
  ),
  ppi('interval-zero', { images: one, refresh: { interval: '0s' } }, 'refresh.interval must be at least 1m'),
  ppi(
    'interval-negative',
    { images: one, refresh: { interval: '-1h' } },
    'must be a duration like 30m or 1h',
  ),
  ppi('interval-days', { images: one, refresh: { interval: '1d' } }, 'must be a duration like 30m or 1h'),
  ppi(
    'http-without-sha256',
    tarball({ url: 'http://files.internal/app.tar' }),
    'sha256 is required for a plain http:// url',
  ),
  ppi('pvc-path-traversal', pvc('../../host/etc/shadow'), 'must stay inside the volume: no .. segment'),
  ppi('pvc-path-inner-traversal', pvc('ml/../../x.tar'), 'must stay inside the volume: no .. segment'),
  ppi('pvc-path-dotdot', pvc('..'), 'must stay inside the volume: no .. segment'),
  ppi('pvc-path-absolute', pvc('/etc/shadow'), 'must be a path relative to the volume root'),
  ppi(
    'hostpath-traversal',
    tarball({ hostPath: '/var/lib/images/../../../etc/shadow' }),
    'must not contain a .. segment',
  ),
  ppi('hostpath-empty', tarball({ hostPath: '' }), 'must be an absolute path on the node'),
  ppi('file-url', tarball({ url: 'file:///etc/shadow' }), 'must be an http:// or https:// URL'),
  ppi(
    'credentials-over-http',
    tarball({
      url: 'http://files.internal/app.tar',
      sha256: 'b'.repeat(64),
      credentialsSecretRef: { name: 'dl' },
    }),
    'credentialsSecretRef is only for an https:// url',
  ),
  ppi(
    'credentials-for-hostpath',
    tarball({ hostPath: '/var/lib/images/app.tar', credentialsSecretRef: { name: 'dl' } }),
    'credentialsSecretRef is only for an https:// url',
  ),
  ppi(
    'credentials-other-namespace',
    tarball({
      url: 'https://files.internal/app.tar',
      credentialsSecretRef: { name: 'dl', namespace: 'kube-system' },
    }),
    'unknown field "spec.images[0].tarball.credentialsSecretRef.namespace"',
  ),
  ppi(
    'url-with-space',
    tarball({ url: 'https://h/a b.tar', sha256: 'b'.repeat(64) }),
    'must be an http:// or https:// URL',
  ),
  ppi('url-too-long', tarball({ url: `https://h/${'a'.repeat(2048)}` }), 'spec.images[0].tarball.url'),
  ppi('upper-case-sha256', tarball({ url: 'https://h/a.tar', sha256: 'B'.repeat(64) }), 'tarball.sha256'),
  ppi(
    'pvc-bad-claim',
    tarball({ persistentVolumeClaim: { claimName: 'Claim_1', path: 'a.tar' } }),
    'claimName',
  ),
  ppi(
    'pvc-unknown-field',
    tarball({ persistentVolumeClaim: { claimName: 'c', path: 'a.tar', readOnly: false } }),
    'unknown field "spec.images[0].tarball.persistentVolumeClaim.readOnly"',
  ),
  ppi(
    'requests-cpu-over-cap',
    resources({ requests: { cpu: '2' } }),
    'resources.requests.cpu must be from 0 to 100m',
  ),
  ppi(
    'requests-int-cpu-over-cap',
    resources({ requests: { cpu: 4 } }),
    'resources.requests.cpu must be from 0 to 100m',
  ),
  ppi(
    'limits-memory-over-cap',
    resources({ limits: { memory: '64Gi' } }),
    'resources.limits.memory must be from 0 to 128Mi',
  ),
  ppi(
    'requests-memory-exponent',
    resources({ requests: { memory: '1e12' } }),
    'resources.requests.memory must be from 0 to 128Mi',
  ),
  ppi(
    'ephemeral-storage-over-cap',
    resources({ requests: { 'ephemeral-storage': '10Gi' } }),
    'resources.requests.ephemeral-storage must be from 0 to 1Gi',
  ),
  ppi(
    'negative-memory',
    resources({ requests: { memory: '-1Mi' } }),
    'resources.requests.memory must be from 0 to 128Mi',
  ),
  ppi(
    'gpu-request',
    resources({ limits: { 'nvidia.com/gpu': 1 } }),
    'resources.limits may name only cpu, memory, ephemeral-storage',
  ),
  ppi('bad-priority-class', { images: one, priorityClassName: 'System_Critical' }, 'spec.priorityClassName'),
  ppi('image-name-too-long', { images: [{ image: 'a:1', name: 'n'.repeat(64) }] }, 'spec.images[0].name'),
  ppi('image-too-long', { images: [{ image: `a/${'b'.repeat(512)}:1` }] }, 'spec.images[0].image'),
  ppi('upper-case-digest', { images: [{ image: `nginx@sha256:${'A'.repeat(64)}` }] }, 'spec.images[0].image'),
  ppi(
    'too-many-tolerations',
    { images: one, tolerations: Array.from({ length: 33 }, () => ({ operator: 'Exists' })) },
    'must have at most 32 items',
  ),
  ppi(
    'too-many-pull-secrets',
    { images: one, imagePullSecrets: Array.from({ length: 17 }, (_, i) => ({ name: `s${i}` })) },
    'must have at most 16 items',
  ),
  ppi(
    'bad-registry-credential-name',
    { images: one, registryCredentials: [{ name: 'Bad Name' }] },
    'spec.registryCredentials[0].name',
  ),
  ppi(
    'node-selector-value-too-long',
    { images: one, nodeSelector: { zone: 'z'.repeat(64) } },
    'spec.nodeSelector',
  ),
  ppi(
    'string-toleration-seconds',
    { images: one, tolerations: [{ operator: 'Exists', tolerationSeconds: '10' }] },
    'tolerationSeconds',
  ),
  ppi(
    'zero-affinity-weight',
    {
      images: one,
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 0, preference: { matchExpressions: [{ key: 'a', operator: 'Exists' }] } },
          ],
        },
      },
    },
    'preferredDuringSchedulingIgnoredDuringExecution[0].weight',
  ),

  ppi('no-images', { images: [] }, 'list at least one image, or take them from workloads with imagesFrom'),
  ppi('missing-images', {}, 'list at least one image, or take them from workloads with imagesFrom'),
  ppi('images-from-unknown-kind', { imagesFrom: { kinds: ['ReplicaSet'] } }, 'spec.imagesFrom.kinds[0]'),
  ppi(
    'images-from-kind-twice',
    { imagesFrom: { kinds: ['Pod', 'Pod'] } },
    'each kind may be listed only once',
  ),
  ppi(
    'images-from-in-without-values',
    { imagesFrom: { selector: { matchExpressions: [{ key: 'pool', operator: 'In' }] } } },
    'In and NotIn need values',
  ),
  ppi(
    'images-from-unknown-operator',
    {
      imagesFrom: {
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Matches', values: ['ml'] }] },
      },
    },
    'spec.imagesFrom.namespaceSelector.matchExpressions[0].operator',
  ),
  ppi('upper-case', { images: [{ image: 'Nginx:1.27' }] }, 'spec.images[0].image'),
  ppi('upper-case-path', { images: [{ image: 'docker.io/Library/nginx' }] }, 'spec.images[0].image'),
  ppi('short-digest', { images: [{ image: 'nginx@sha256:abc123' }] }, 'spec.images[0].image'),
  ppi('bad-digest-algorithm', { images: [{ image: `nginx@md5:${'a'.repeat(32)}` }] }, 'spec.images[0].image'),
  ppi('empty-tag', { images: [{ image: 'nginx:' }] }, 'spec.images[0].image'),
  ppi('space', { images: [{ image: 'nginx 1.27' }] }, 'spec.images[0].image'),
  ppi(
    'too-many-images',
    { images: Array.from({ length: 65 }, (_, i) => ({ image: `app-${i}:1` })) },
    'must have at most 64 items',
  ),
  ppi(
    'duplicate-image',
    { images: [{ image: 'nginx:1' }, { image: 'nginx:1' }] },
    'each image may be listed only once',
  ),
  ppi(
    'duplicate-name',
    {
      images: [
        { image: 'a:1', name: 'x' },
        { image: 'b:1', name: 'x' },
      ],
    },
    'image names must be unique',
  ),
  ppi('unknown-field', { images: one, pullSecrets: ['x'] }, 'unknown field "spec.pullSecrets"'),
  ppi(
    'unknown-image-field',
    { images: [{ image: 'nginx:1', tag: 'x' }] },
    'unknown field "spec.images[0].tag"',
  ),
  ppi('bad-pull-policy', { images: one, pullPolicy: 'Never' }, 'supported values: "IfNotPresent", "Always"'),
  ppi('negative-concurrency', { images: one, maxConcurrentPulls: -1 }, 'maxConcurrentPulls must be'),
  ppi('zero-concurrency', { images: one, maxConcurrentPulls: 0 }, 'maxConcurrentPulls must be'),
  ppi('zero-percent', { images: one, maxConcurrentPulls: '0%' }, 'maxConcurrentPulls must be'),
  ppi('over-percent', { images: one, maxConcurrentPulls: '150%' }, 'maxConcurrentPulls must be'),
  ppi('word-concurrency', { images: one, maxConcurrentPulls: 'abc' }, 'maxConcurrentPulls must be'),
  ppi(
    'empty-tarball',
    { images: [{ image: 'a:1', tarball: {} }] },
    'exactly one of url, hostPath or persistentVolumeClaim',
  ),
  ppi(
    'two-tarball-sources',
    { images: [{ image: 'a:1', tarball: { hostPath: '/x.tar', url: 'https://h/x.tar' } }] },
    'exactly one of url, hostPath or persistentVolumeClaim',
  ),
  ppi('relative-hostpath', { images: [{ image: 'a:1', tarball: { hostPath: 'x.tar' } }] }, 'absolute path'),
  ppi(
    'bad-sha256',
    { images: [{ image: 'a:1', tarball: { url: 'https://h/x.tar', sha256: 'xyz' } }] },
    'tarball.sha256',
  ),
  ppi(
    'sha256-without-url',
    { images: [{ image: 'a:1', tarball: { hostPath: '/x.tar', sha256: 'a'.repeat(64) } }] },
    'only for a url source',
  ),
  ppi('ftp-url', { images: [{ image: 'a:1', tarball: { url: 'ftp://h/x.tar' } }] }, 'tarball.url'),
  ppi(
    'pvc-without-path',
    { images: [{ image: 'a:1', tarball: { persistentVolumeClaim: { claimName: 'c' } } }] },
    'path: Required value',
  ),
  ppi('bad-interval', { images: one, refresh: { interval: 'hourly' } }, 'spec.refresh.interval'),
  ppi(
    'short-interval',
    { images: one, refresh: { interval: '10s' } },
    'refresh.interval must be at least 1m',
  ),
  ppi(
    'bad-selector-operator',
    {
      images: one,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['b'] }] }],
          },
        },
      },
    },
    'supported values: "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"',
  ),
  ppi(
    'in-without-values',
    {
      images: one,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'In' }] }],
          },
        },
      },
    },
    'In, NotIn, Gt and Lt need values',
  ),
  ppi(
    'bad-toleration-effect',
    { images: one, tolerations: [{ operator: 'Exists', effect: 'Sometimes' }] },
    'spec.tolerations[0].effect',
  ),
  ppi(
    'bad-quantity',
    { images: one, resources: { requests: { memory: 'lots' } } },
    'spec.resources.requests[memory]: Invalid value: "lots": must be a quantity like 10m, 64Mi or 1',
  ),
  ppi(
    'bad-secret-name',
    { images: one, imagePullSecrets: [{ name: 'Not_A_Name' }] },
    'spec.imagePullSecrets[0].name',
  ),
  regcred(
    'no-target',
    { source, target: { secretName: 'pull' } },
    'target needs namespaceSelector or a non-empty namespaces list',
  ),
  regcred(
    'empty-namespaces',
    { source, target: { secretName: 'pull', namespaces: [] } },
    'target needs namespaceSelector or a non-empty namespaces list',
  ),
  regcred(
    'missing-secret-name',
    { source, target: { namespaces: ['a'] } },
    'spec.target.secretName: Required value',
  ),
  regcred(
    'bad-secret-name',
    { source, target: { secretName: 'Pull Secret', namespaces: ['a'] } },
    'spec.target.secretName',
  ),
  regcred(
    'missing-source',
    { target: { secretName: 'pull', namespaces: ['a'] } },
    'spec.source: Required value',
  ),
  regcred(
    'bad-label-selector',
    {
      source,
      target: {
        secretName: 'pull',
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In' }] },
      },
    },
    'In and NotIn need values',
  ),
  regcred(
    'bad-namespace',
    { source, target: { secretName: 'pull', namespaces: ['Team_A'] } },
    'spec.target.namespaces[0]',
  ),
  regcred(
    'duplicate-service-account',
    { source, target: { secretName: 'p', namespaces: ['a'] }, serviceAccounts: ['default', 'default'] },
    'Duplicate value',
  ),
  // RegistryCredential: contradictory targets, and the opt-in for PrePulledImage requests (#12, #17).
  regcred(
    'namespace-listed-and-excluded',
    { source, target: { secretName: 'p', namespaces: ['a', 'team-b'], excludeNamespaces: ['team-b'] } },
    'namespace team-b is in both namespaces and excludeNamespaces',
  ),
  regcred(
    'allow-requests-without-selector',
    { source, target: { secretName: 'p', namespaces: ['a'], allowRequestsFrom: {} } },
    'spec.target.allowRequestsFrom.namespaceSelector: Required value',
  ),
  regcred(
    'allow-requests-by-name',
    { source, target: { secretName: 'p', namespaces: ['a'], allowRequestsFrom: { namespaces: ['b'] } } },
    'unknown field "spec.target.allowRequestsFrom.namespaces"',
  ),
  regcred(
    'allow-requests-bad-selector',
    {
      source,
      target: {
        secretName: 'p',
        namespaces: ['a'],
        allowRequestsFrom: { namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'NotIn' }] } },
      },
    },
    'In and NotIn need values',
  ),
];

/** The manifest for a case, in `namespace` when the kind is namespaced. */
export function manifestOf(c: Case, namespace: string): string {
  const metadata =
    c.kind === 'PrePulledImage' ? { name: c.name, namespace } : { name: `${namespace}-${c.name}` };
  return JSON.stringify({ apiVersion: 'prepull.dev/v1alpha1', kind: c.kind, metadata, spec: c.spec });
}
