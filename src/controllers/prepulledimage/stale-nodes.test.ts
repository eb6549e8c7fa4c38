import { describe, expect, it } from 'vitest';
import { parseImageReference } from '../../image/reference.ts';
import type { PullerPod } from './pods.ts';
import { failedCheck, resolvedImage } from './resolution.ts';
import { staleNodes } from './stale-nodes.ts';

const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;
const IMAGE = 'registry.test/app:v1';
const CHECKED = new Date('2026-01-01T01:00:00Z');
const refs = [parseImageReference(IMAGE)];
const resolved = [resolvedImage(NEW, [], CHECKED)];

function pod(node: string, imageID: string | undefined, name = `ppi-x-${node}`): PullerPod {
  const running = { name: 'image-0', image: IMAGE, ready: true, restartCount: 0, state: { running: {} } };
  return {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { nodeName: node, containers: [{ name: 'image-0', image: IMAGE }] },
    status: {
      phase: 'Running',
      containerStatuses: imageID === undefined ? [] : [{ ...running, imageID }],
    },
  };
}
const at = (digest: string) => `registry.test/app@${digest}`;

describe('staleNodes', () => {
  it('names the nodes that hold another digest than the check resolved, and no other', () => {
    const pods = [pod('b', at(OLD)), pod('a', at(OLD)), pod('fresh', at(NEW)), pod('pulling', undefined)];
    expect(staleNodes({ pods, refs, resolutions: resolved })).toEqual(['a', 'b']);
  });

  it('a node whose surge replacement holds the resolved digest is not stale, though its old pod runs on', () => {
    const pods = [pod('n', at(OLD)), pod('n', at(NEW), 'ppi-x-n-new')];
    expect(staleNodes({ pods, refs, resolutions: resolved })).toEqual([]);
  });

  it('makes no node stale while the check fails or before one resolved the tag', () => {
    const pods = [pod('n', at(OLD))];
    const down = [failedCheck('RegistryUnavailable', 'connection refused', CHECKED)];
    for (const resolutions of [down, [undefined]])
      expect(staleNodes({ pods, refs, resolutions })).toEqual([]);
  });

  it('never resolves digest references, and keeps the digest of tag+digest references', () => {
    for (const image of [`registry.test/app@${OLD}`, `registry.test/app:v1@${OLD}`]) {
      const pods = [pod('n', at(OLD))];
      expect(staleNodes({ pods, refs: [parseImageReference(image)], resolutions: resolved })).toEqual([]);
    }
  });

  it('a pod without a registry digest (kwok, an image ID alone) is never stale', () => {
    expect(staleNodes({ pods: [pod('k', ''), pod('i', OLD)], refs, resolutions: resolved })).toEqual([]);
  });

  it('a pod being deleted holds nothing', () => {
    const leaving = pod('n', at(OLD));
    leaving.metadata.deletionTimestamp = '2026-01-01T02:00:00Z';
    expect(staleNodes({ pods: [leaving], refs, resolutions: resolved })).toEqual([]);
  });
});
