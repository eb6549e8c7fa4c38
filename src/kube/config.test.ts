import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findKubeconfig } from './config.ts';

describe('findKubeconfig', () => {
  const home = mkdtempSync(join(tmpdir(), 'prepull-home-'));
  const empty = mkdtempSync(join(tmpdir(), 'prepull-empty-'));
  mkdirSync(join(home, '.kube'));
  writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\nkind: Config\n');

  it('prefers the flag, then $KUBECONFIG, then ~/.kube/config, then in-cluster', () => {
    expect(findKubeconfig('/x', { KUBECONFIG: '/y', HOME: home })).toEqual({ source: 'flag', path: '/x' });
    expect(findKubeconfig(undefined, { KUBECONFIG: '/y', HOME: home })).toEqual({
      source: 'env',
      path: '/y',
    });
    expect(findKubeconfig(undefined, { HOME: home })).toEqual({
      source: 'home',
      path: join(home, '.kube', 'config'),
    });
    expect(findKubeconfig(undefined, { HOME: empty, KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toEqual({
      source: 'in-cluster',
    });
  });

  it('finds nothing on a machine with no cluster, so the embedded one starts', () => {
    expect(findKubeconfig(undefined, { HOME: empty })).toBeUndefined();
  });
});
