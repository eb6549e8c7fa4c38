/**
 * Secret informers started and stopped as RegistryCredentials come and go:
 * one per source secret (its namespace, `metadata.name=<name>`) and one per
 * copy name across namespaces (`metadata.name=<secretName>`), shared by every
 * RegistryCredential that needs the same one. The operator so caches exactly
 * the secrets it reads, never every secret of the cluster, and still learns at
 * once when a source rotates or a secret takes a copy's place.
 */
import type { KubeClient } from '../../kube/client.ts';
import { ApiError } from '../../kube/errors.ts';
import { apiSource, type Informer, type ListWatchSource, type Selection } from '../../kube/informer.ts';
import type { Secret } from '../../kube/objects.ts';
import { Resources } from '../../kube/resources.ts';

/** The selection of one source secret. */
export function sourceSelection(namespace: string, name: string): Selection {
  return { type: Resources.secrets, namespace, fieldSelector: `metadata.name=${name}` };
}

/** Every secret named `name`, in any namespace: copies and whatever would conflict with them. */
export function copyNameSelection(name: string): Selection {
  return { type: Resources.secrets, fieldSelector: `metadata.name=${name}` };
}

/** What a reconcile needs to know of one watch. */
export interface WatchState {
  informer: Informer<Secret>;
  /** The first list is in the cache. */
  synced: boolean;
  /** The last list failed with this, e.g. 403 when RBAC does not allow reading the namespace. */
  error: ApiError | undefined;
}

export interface SecretWatchesOptions {
  client: KubeClient;
  /** Builds an informer over `source` with the operator's clock, log and metrics. */
  newInformer(name: string, source: ListWatchSource<Secret>): Informer<Secret>;
  /** Called with a user (a RegistryCredential name) whenever a watch it uses changes, syncs or fails. */
  notify?(user: string): void;
  /** Called with every secret a watch reports added, changed or deleted. */
  seen?(secret: Secret): void;
}

interface Watch {
  state: WatchState;
  users: Set<string>;
}

/** The shared, reference-counted secret informers of the RegistryCredential controller. */
export class SecretWatches {
  readonly #options: SecretWatchesOptions;
  readonly #watches = new Map<string, Watch>();
  readonly #usedBy = new Map<string, Set<string>>();

  #notify: (user: string) => void;

  constructor(options: SecretWatchesOptions) {
    this.#options = options;
    this.#notify = options.notify ?? (() => {});
  }

  /** Where users are notified from now on (the controller's queue, once it exists). */
  notifyWith(notify: (user: string) => void): void {
    this.#notify = notify;
  }

  /**
   * Declares every watch `user` needs now, by selection; starts those that do
   * not run yet and stops those no user needs any more. Returns their states
   * in the order given.
   */
  use(user: string, selections: Selection[]): WatchState[] {
    const ids = selections.map(idOf);
    const previous = this.#usedBy.get(user) ?? new Set<string>();
    const states = selections.map((selection, i) => this.#acquire(ids[i]!, selection, user));
    const now = new Set(ids);
    for (const id of previous) if (!now.has(id)) this.#release(id, user);
    this.#usedBy.set(user, now);
    return states;
  }

  /** Drops every watch of `user` (its RegistryCredential is gone). */
  forget(user: string): void {
    for (const id of this.#usedBy.get(user) ?? []) this.#release(id, user);
    this.#usedBy.delete(user);
  }

  /** Informers running now: for tests and metrics. */
  get size(): number {
    return this.#watches.size;
  }

  /** Stops every informer (the controller stops). */
  async stop(): Promise<void> {
    const running = [...this.#watches.values()];
    this.#watches.clear();
    this.#usedBy.clear();
    await Promise.all(running.map((w) => w.state.informer.stop()));
  }

  #acquire(id: string, selection: Selection, user: string): WatchState {
    const existing = this.#watches.get(id);
    if (existing) {
      existing.users.add(user);
      return existing.state;
    }
    const watch = this.#start(id, selection);
    watch.users.add(user);
    this.#watches.set(id, watch);
    return watch.state;
  }

  #release(id: string, user: string): void {
    const watch = this.#watches.get(id);
    if (!watch) return;
    watch.users.delete(user);
    if (watch.users.size > 0) return;
    this.#watches.delete(id);
    void watch.state.informer.stop();
  }

  #start(id: string, selection: Selection): Watch {
    const api = apiSource<Secret>(this.#options.client, selection);
    const users = new Set<string>();
    const notifyUsers = () => {
      for (const user of users) this.#notify(user);
    };
    const state = {} as WatchState;
    // Seen through the list, because the informer retries failures by itself and
    // only logs them: a 403 must reach the status instead of a silent retry loop.
    const source: ListWatchSource<Secret> = {
      async list(options) {
        try {
          const page = await api.list(options);
          if (state.error) {
            state.error = undefined;
            notifyUsers();
          }
          return page;
        } catch (err) {
          const changed = !(err instanceof ApiError) || err.status !== state.error?.status;
          state.error = err instanceof ApiError ? err : new ApiError(0, 'Unavailable', String(err), 'list');
          if (changed) notifyUsers();
          throw err;
        }
      },
      watch: (options, signal) => api.watch(options, signal),
    };
    const informer = this.#options.newInformer(`secrets ${id}`, source);
    state.informer = informer;
    state.synced = false;
    state.error = undefined;
    const changed = (secret: Secret) => {
      this.#options.seen?.(secret);
      notifyUsers();
    };
    informer.addHandler({ add: changed, update: (_, secret) => changed(secret), delete: changed });
    void informer.waitForSync().then(() => {
      state.synced = true;
      notifyUsers();
    });
    informer.start();
    return { state, users };
  }
}

function idOf(selection: Selection): string {
  return `${selection.namespace ?? '*'}/${selection.fieldSelector ?? ''}`;
}
