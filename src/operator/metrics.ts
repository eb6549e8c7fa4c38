/**
 * The operator's Prometheus metrics: reconciles, queues, API requests and
 * watches. One registry per operator process, passed to what observes.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControllerObserver } from '../runtime/controller.ts';
import type { WorkQueueObserver } from '../runtime/queue.ts';

export interface OperatorMetrics {
  registry: Registry;
  controller: ControllerObserver;
  queue(controller: string): WorkQueueObserver;
  apiRequest(verb: string, code: string, resource: string): void;
  watchRestart(informer: string, reason: string): void;
  watchEvent(informer: string, type: string): void;
  setLeader(leading: boolean): void;
}

export function createOperatorMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'prepull_' });
  const reconciles = new Counter({
    name: 'prepull_reconcile_total',
    help: 'Reconciles by controller and result (success, requeue, error, terminal).',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: 'prepull_reconcile_errors_total',
    help: 'Reconciles that failed and will be retried with backoff.',
    labelNames: ['controller'],
    registers: [registry],
  });
  const reconcileSeconds = new Histogram({
    name: 'prepull_reconcile_duration_seconds',
    help: 'Time spent in one reconcile.',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const depth = new Gauge({
    name: 'prepull_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'],
    registers: [registry],
  });
  const adds = new Counter({
    name: 'prepull_workqueue_adds_total',
    help: 'Keys added to the work queue (before deduplication).',
    labelNames: ['controller'],
    registers: [registry],
  });
  const waited = new Histogram({
    name: 'prepull_workqueue_queue_duration_seconds',
    help: 'Time a key waited in the queue before a worker took it.',
    labelNames: ['controller'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'prepull_api_requests_total',
    help: 'Requests to the Kubernetes API by verb, HTTP code and resource.',
    labelNames: ['verb', 'code', 'resource'],
    registers: [registry],
  });
  const restarts = new Counter({
    name: 'prepull_watch_restarts_total',
    help: 'Watches restarted, by informer and reason (gone, error, stall, closed).',
    labelNames: ['informer', 'reason'],
    registers: [registry],
  });
  const events = new Counter({
    name: 'prepull_watch_events_total',
    help: 'Watch events received, by informer and type.',
    labelNames: ['informer', 'type'],
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'prepull_leader',
    help: '1 while this process holds the leader lease.',
    registers: [registry],
  });
  leader.set(0);
  return {
    registry,
    controller: {
      reconciled(controller, result, seconds) {
        reconciles.inc({ controller, result });
        if (result === 'error') reconcileErrors.inc({ controller });
        reconcileSeconds.observe({ controller }, seconds);
      },
    },
    queue: (controller) => ({
      depth: (n) => depth.set({ controller }, n),
      added: () => adds.inc({ controller }),
      waited: (ms) => waited.observe({ controller }, ms / 1000),
    }),
    apiRequest: (verb, code, resource) => requests.inc({ verb, code, resource }),
    watchRestart: (informer, reason) => restarts.inc({ informer, reason }),
    watchEvent: (informer, type) => events.inc({ informer, type }),
    setLeader: (leading) => leader.set(leading ? 1 : 0),
  };
}
