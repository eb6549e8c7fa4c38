/**
 * The RegistryMirror CRD on a real API server: the short name and printer
 * columns users read, and the specs its schema and CEL rules refuse, each
 * with a message a user understands (the same words as the controller's
 * own parse, src/api/registrymirror.ts).
 */
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { registryMirrorSpecSchema } from '../../src/api/registrymirror.ts';
import { kubectl } from '../support/kubectl.ts';

const cluster = inject('cluster');
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

function create(name: string, spec: unknown) {
  return kubectl(
    cluster,
    ['create', '-f', '-'],
    JSON.stringify({ apiVersion: 'prepull.dev/v1alpha1', kind: 'RegistryMirror', metadata: { name }, spec }),
  );
}

const good: [string, unknown][] = [
  ['minimal', { host: 'docker.io', mirrors: [{ url: 'https://10.1.2.3:32000' }] }],
  [
    'everything',
    {
      host: 'registry.k8s.io',
      upstream: 'Replaced',
      nodeSelector: { matchLabels: { site: 'edge' } },
      mirrors: [
        // The largest CA bundle the schema takes still fits the API server's CEL cost budget.
        {
          url: 'https://m.local',
          caBundle: PEM.repeat(Math.floor(65536 / PEM.length)),
          capabilities: ['pull'],
        },
        { url: 'https://harbor.example/v2/proxy', overridePath: true, headers: { 'X-A': 'b' } },
        { url: 'http://plain.local:5000', skipVerify: true },
      ],
    },
  ],
  ['default-host', { host: '_default', mirrors: [{ url: 'https://m.local' }] }],
  ['host-port', { host: '10.1.2.3:32000', mirrors: [{ url: 'https://m.local' }] }],
];

const bad: [string, unknown, string][] = [
  ['no-mirrors', { host: 'docker.io', mirrors: [] }, 'should have at least 1 items'],
  [
    'upper-host',
    { host: 'Docker.io', mirrors: [{ url: 'https://m' }] },
    'must be a lower-case registry host',
  ],
  [
    'path-host',
    { host: 'docker.io/library', mirrors: [{ url: 'https://m' }] },
    'must be a lower-case registry host',
  ],
  ['ftp', { host: 'docker.io', mirrors: [{ url: 'ftp://m' }] }, 'must be an http:// or https:// URL'],
  [
    'quote',
    { host: 'docker.io', mirrors: [{ url: 'https://m"]' }] },
    'without spaces, quotes or backslashes',
  ],
  [
    'twice',
    { host: 'docker.io', mirrors: [{ url: 'https://m' }, { url: 'https://m' }] },
    'mirror urls must be unique',
  ],
  [
    'ca-and-skip',
    { host: 'docker.io', mirrors: [{ url: 'https://m', caBundle: PEM, skipVerify: true }] },
    'caBundle and skipVerify exclude each other',
  ],
  [
    'ca-http',
    { host: 'docker.io', mirrors: [{ url: 'http://m', caBundle: PEM }] },
    'caBundle needs an https:// url',
  ],
  [
    'not-pem',
    { host: 'docker.io', mirrors: [{ url: 'https://m', caBundle: 'hello' }] },
    'must hold PEM certificates',
  ],
  [
    'override-no-path',
    { host: 'docker.io', mirrors: [{ url: 'https://m', overridePath: true }] },
    'overridePath needs a url with a path',
  ],
  [
    'auth-header',
    { host: 'docker.io', mirrors: [{ url: 'https://m', headers: { authorization: 'Basic eA==' } }] },
    'use a pull secret',
  ],
  [
    'header-name',
    { host: 'docker.io', mirrors: [{ url: 'https://m', headers: { 'X A': 'b' } }] },
    'header names must be letters, digits and -',
  ],
  [
    'capability',
    { host: 'docker.io', mirrors: [{ url: 'https://m', capabilities: ['push'] }] },
    'Unsupported value: "push"',
  ],
  [
    'upstream',
    { host: 'docker.io', upstream: 'Never', mirrors: [{ url: 'https://m' }] },
    'Unsupported value: "Never"',
  ],
];

describe('the RegistryMirror CRD on a real API server', () => {
  beforeAll(() => {
    const applied = kubectl(cluster, ['apply', '--server-side', '-f', 'crds/']);
    expect(applied.status, applied.stderr).toBe(0);
    const established = kubectl(cluster, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/registrymirrors.prepull.dev',
    ]);
    expect(established.status, established.stderr).toBe(0);
  });

  it('has the short name and the columns users read', () => {
    const names = kubectl(cluster, ['api-resources', '--api-group=prepull.dev']);
    expect(names.stdout).toMatch(
      /registrymirrors\s+regmirror\s+prepull\.dev\/v1alpha1\s+false\s+RegistryMirror/,
    );
    expect(create('columns', good[0]![1]).status).toBe(0);
    const table = kubectl(cluster, ['get', 'regmirror', 'columns']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+HOST\s+APPLIED\s+STATUS\s+AGE$/);
    kubectl(cluster, ['delete', 'regmirror', 'columns']);
  });

  it.each(good)('accepts %s, as the controller does', (name, spec) => {
    const created = create(`good-${name}`, spec);
    expect(created.stderr).toBe('');
    expect(registryMirrorSpecSchema.safeParse(spec).success).toBe(true);
    kubectl(cluster, ['delete', 'regmirror', `good-${name}`]);
  });

  it.each(bad)('rejects %s with a clear message, as the controller would', (name, spec, message) => {
    const created = create(`bad-${name}`, spec);
    expect(created.status).not.toBe(0);
    expect(created.stderr).toContain(message);
    expect(registryMirrorSpecSchema.safeParse(spec).success).toBe(false);
  });

  it('documents the fields for kubectl explain', () => {
    const explained = kubectl(cluster, ['explain', 'regmirror.spec.upstream']);
    expect(explained.stdout.replace(/\s+/g, ' ')).toContain('only the mirrors are used');
  });
});
