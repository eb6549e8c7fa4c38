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
