/** The leader-election lock as a coordination.k8s.io/v1 Lease. */
import type { LeaseLock, LeaseRecord } from '../runtime/leader.ts';
import type { KubeClient } from './client.ts';
import type { KubeObject } from './objects.ts';
import { Resources } from './resources.ts';

interface Lease extends KubeObject {
  spec?: LeaseRecord;
}

export function leaseLock(client: KubeClient, namespace: string, name: string): LeaseLock {
  return {
    async get() {
      const lease = await client.get<Lease>(Resources.leases, name, namespace);
      if (!lease) return undefined;
      return { record: lease.spec ?? {}, version: lease.metadata.resourceVersion ?? '' };
    },
    async create(record) {
      await client.create<Lease>(Resources.leases, { metadata: { name, namespace }, spec: record });
    },
    async update(record, version) {
      await client.replace<Lease>(Resources.leases, {
        metadata: { name, namespace, resourceVersion: version },
        spec: record,
      });
    },
    describe: () => `${namespace}/${name}`,
  };
}
