/**
 * A test's or benchmark's own watch of the cluster: an informer of the
 * operator's kind (the same list, watch and resume), on the system clock, that
 * logs nothing. For a moment too short to catch by polling, and for figures
 * timed as events arrive. Start it, and stop it when done.
 */
import { pino } from 'pino';

import type { KubeClient } from '../../src/kube/client.ts';
import { apiSource, Informer, type Selection } from '../../src/kube/informer.ts';
import type { KubeObject } from '../../src/kube/objects.ts';
import { systemClock } from '../../src/runtime/clock.ts';

const silent = pino({ level: 'silent' });

export function watchObjects<T extends KubeObject>(
  client: KubeClient,
  name: string,
  selection: Selection,
): Informer<T> {
  return new Informer<T>({ name, source: apiSource<T>(client, selection), clock: systemClock, log: silent });
}

/**
 * Resolves at the first watch event after which `holds` gives a value (at once
 * if it does now), for a moment too short to catch by polling or a wait that a
 * poll's own requests would weigh on. Rejects after `timeoutMs`, naming `what`.
 */
export function whenWatched<T extends KubeObject, R>(
  informer: Informer<T>,
  holds: () => R | undefined,
  timeoutMs: number,
  what: string,
): Promise<R> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const check = () => {
      if (settled) return;
      const value = holds();
      if (value === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    informer.addHandler({ add: check, update: check, delete: check });
    check();
  });
}
