/**
 * A small REST client over client-node's authentication: list, watch, get,
 * create, server-side apply, patch and delete for any resource type, with
 * every request counted by verb and code. Objects stay plain JSON. Every
 * request has a deadline (a hung connection must not hang its caller, e.g. a
 * leader's renew); a watch's applies until its response starts, after which
 * the server's timeoutSeconds and the informer's stall timer bound it.
 */
import { type HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch, getGlobalDispatcher, type Response } from 'undici';
import { ApiError, isNotFound } from './errors.ts';
import type { KubeObject } from './objects.ts';
import { apiVersionOf, type ResourceType, resourcePath } from './resources.ts';

/** Told about every request once its answer (or failure) is known. */
export type RequestObserver = (verb: string, code: string, resource: string) => void;

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion: string;
  /** The server closes the watch after this long; the informer then re-watches. */
  timeoutSeconds?: number;
  /**
   * A watch-list: the server first sends every current object (ADDED), then a
   * bookmark annotated `k8s.io/initial-events-end`, then changes, as a list and
   * a watch would (resourceVersionMatch NotOlderThan; the WatchList feature).
   */
  sendInitialEvents?: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
}

export interface ApplyOptions {
  fieldManager: string;
  /** Take ownership of fields another manager set (controllers own what they apply). */
  force?: boolean;
  subresource?: 'status';
}

export type PatchType = 'merge' | 'json' | 'strategic';

const PATCH_CONTENT_TYPES: Record<PatchType | 'apply', string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface KubeClientOptions {
  observe?: RequestObserver;
  userAgent?: string;
  /** Deadline of one request, answer body included (default {@link DEFAULT_REQUEST_TIMEOUT_MS}). */
  requestTimeoutMs?: number;
}

/** Long enough for a large list on a busy API server, short enough that nothing waits forever. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/** A request that got no (complete) answer before its deadline. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
}

export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: string;
  readonly #observe: RequestObserver;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  /**
   * client-node builds a new connection pool (an undici Agent) each time it
   * authenticates a request; reusing the first keeps one pool of keep-alive
   * connections instead of a new TLS connection per request.
   */
  #dispatcher: ReturnType<RequestContext['getDispatcher']>;
  /**
   * The same pool for watches, with no body timeout: undici ends a response
   * whose body is quiet for 5 minutes by default, and a watch the API server
   * sends no bookmarks on (Events) is quiet for longer. The informer's stall
   * timer tells a dead watch from a quiet one instead.
   */
  #watchDispatcher: Dispatcher | undefined;

  constructor(kc: KubeConfig, options: KubeClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.#kc = kc;
    this.#server = cluster.server.replace(/\/+$/, '');
    this.#observe = options.observe ?? (() => {});
    this.#userAgent = options.userAgent ?? 'prepull';
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  async list<T extends KubeObject>(type: ResourceType, options: ListOptions = {}): Promise<ListResult<T>> {
    const query = new URLSearchParams();
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
    if (options.limit) query.set('limit', String(options.limit));
    if (options.continue) query.set('continue', options.continue);
    if (options.resourceVersion !== undefined) query.set('resourceVersion', options.resourceVersion);
    const body = (await this.#request('list', type, 'GET', resourcePath(type, options.namespace), query)) as {
      items: T[];
      metadata: { resourceVersion: string; continue?: string };
    };
    const kind = type.kind;
    const apiVersion = apiVersionOf(type);
    // Items of a list carry no apiVersion/kind; put them back so objects look alike everywhere.
    for (const item of body.items) {
      item.apiVersion ??= apiVersion;
      item.kind ??= kind;
    }
    return {
      items: body.items,
      resourceVersion: body.metadata.resourceVersion,
      ...(body.metadata.continue ? { continue: body.metadata.continue } : {}),
    };
  }

  /**
   * Watches from `resourceVersion`; yields events until the server closes the
   * stream or `signal` aborts. Bookmarks are always asked for.
   */
  async *watch<T extends KubeObject>(
    type: ResourceType,
    options: WatchOptions,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent<T>> {
    const query = new URLSearchParams({
      watch: 'true',
      allowWatchBookmarks: 'true',
      resourceVersion: options.resourceVersion,
    });
    if (options.labelSelector) query.set('labelSelector', options.labelSelector);
    if (options.fieldSelector) query.set('fieldSelector', options.fieldSelector);
    if (options.timeoutSeconds) query.set('timeoutSeconds', String(options.timeoutSeconds));
    if (options.sendInitialEvents) {
      query.set('sendInitialEvents', 'true');
      query.set('resourceVersionMatch', 'NotOlderThan');
    }
    // The deadline holds until the response starts; then the stream is the caller's to end.
    const started = new AbortController();
    const timer = setTimeout(() => started.abort(), this.#timeoutMs);
    let response: Response;
    try {
      response = await this.#send('watch', type, 'GET', resourcePath(type, options.namespace), query, {
        signal: AbortSignal.any([signal, started.signal]),
        deadline: started.signal,
        stream: true,
      });
    } finally {
      clearTimeout(timer);
    }
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line) as WatchEvent<T>;
        newline = buffered.indexOf('\n');
      }
    }
  }

  /** The object, or undefined when it does not exist. */
  async get<T extends KubeObject>(
    type: ResourceType,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    try {
      return (await this.#request('get', type, 'GET', resourcePath(type, namespace, name))) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create<T extends KubeObject>(type: ResourceType, object: T): Promise<T> {
    return (await this.#request(
      'create',
      type,
      'POST',
      resourcePath(type, object.metadata.namespace),
      undefined,
      {
        body: JSON.stringify({ apiVersion: apiVersionOf(type), kind: type.kind, ...object }),
        contentType: 'application/json',
      },
    )) as T;
  }

  /** PUT: a full replace guarded by metadata.resourceVersion (409 when it moved). */
  async replace<T extends KubeObject>(type: ResourceType, object: T): Promise<T> {
    const { name, namespace } = object.metadata;
    return (await this.#request('update', type, 'PUT', resourcePath(type, namespace, name), undefined, {
      body: JSON.stringify({ apiVersion: apiVersionOf(type), kind: type.kind, ...object }),
      contentType: 'application/json',
    })) as T;
  }

  /** Server-side apply of `object` (only the fields this manager owns) under a stable field manager. */
  async apply<T extends KubeObject>(type: ResourceType, object: T, options: ApplyOptions): Promise<T> {
    const { name, namespace } = object.metadata;
    if (!name) throw new Error('server-side apply needs metadata.name');
    const query = new URLSearchParams({ fieldManager: options.fieldManager });
    if (options.force) query.set('force', 'true');
    const verb = options.subresource ? `apply-${options.subresource}` : 'apply';
    return (await this.#request(
      verb,
      type,
      'PATCH',
      resourcePath(type, namespace, name, options.subresource),
      query,
      {
        body: JSON.stringify({ apiVersion: apiVersionOf(type), kind: type.kind, ...object }),
        contentType: PATCH_CONTENT_TYPES.apply,
      },
    )) as T;
  }

  async patch<T extends KubeObject>(
    type: ResourceType,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    patchType: PatchType,
    options: { fieldManager?: string; subresource?: 'status' } = {},
  ): Promise<T> {
    const query = new URLSearchParams();
    if (options.fieldManager) query.set('fieldManager', options.fieldManager);
    return (await this.#request(
      'patch',
      type,
      'PATCH',
      resourcePath(type, namespace, name, options.subresource),
      query,
      { body: JSON.stringify(patch), contentType: PATCH_CONTENT_TYPES[patchType] },
    )) as T;
  }

  /** Deletes; true when it existed. */
  async delete(
    type: ResourceType,
    name: string,
    namespace?: string,
    options: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; uid?: string } = {},
  ): Promise<boolean> {
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      ...(options.propagationPolicy ? { propagationPolicy: options.propagationPolicy } : {}),
      ...(options.uid ? { preconditions: { uid: options.uid } } : {}),
    };
    try {
      await this.#request('delete', type, 'DELETE', resourcePath(type, namespace, name), undefined, {
        body: JSON.stringify(body),
        contentType: 'application/json',
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** A raw GET of an API path (e.g. /version), counted like any other request. */
  async getPath(path: string): Promise<unknown> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const response = await this.#send('get', undefined, 'GET', path, undefined, {
      signal: deadline,
      deadline,
    });
    return this.#readJson(response, 'get', path, deadline);
  }

  async #request(
    verb: string,
    type: ResourceType,
    method: HttpMethod | keyof typeof HttpMethod,
    path: string,
    query?: URLSearchParams,
    init: { body?: string; contentType?: string } = {},
  ): Promise<unknown> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const response = await this.#send(verb, type, method, path, query, {
      ...init,
      signal: deadline,
      deadline,
    });
    return this.#readJson(response, verb, path, deadline);
  }

  async #readJson(response: { json(): Promise<unknown> }, verb: string, path: string, deadline: AbortSignal) {
    try {
      return await response.json();
    } catch (err) {
      if (deadline.aborted) throw this.#timedOut(verb, path);
      throw err;
    }
  }

  #timedOut(verb: string, path: string): RequestTimeoutError {
    return new RequestTimeoutError(`${verb} ${path}: no answer within ${this.#timeoutMs} ms`);
  }

  async #send(
    verb: string,
    type: ResourceType | undefined,
    method: HttpMethod | keyof typeof HttpMethod,
    path: string,
    query?: URLSearchParams,
    init: {
      body?: string;
      contentType?: string;
      signal?: AbortSignal;
      deadline?: AbortSignal;
      /** A watch: its body may be quiet for as long as the server keeps it open. */
      stream?: boolean;
    } = {},
  ) {
    const url = `${this.#server}${path}${query?.size ? `?${query}` : ''}`;
    const context = new RequestContext(url, method as HttpMethod);
    await this.#kc.applySecurityAuthentication(context);
    this.#dispatcher ??= context.getDispatcher();
    if (init.stream) this.#watchDispatcher ??= withoutBodyTimeout(this.#dispatcher ?? getGlobalDispatcher());
    const dispatcher = init.stream ? this.#watchDispatcher : this.#dispatcher;
    const headers: Record<string, string> = { ...context.getHeaders(), 'user-agent': this.#userAgent };
    headers.accept = 'application/json';
    if (init.contentType) headers['content-type'] = init.contentType;
    const resource = type?.plural ?? path;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(dispatcher ? { dispatcher } : {}),
        ...(init.body !== undefined ? { body: init.body } : {}),
        ...(init.signal ? { signal: init.signal } : {}),
      });
    } catch (err) {
      if (init.deadline?.aborted) {
        this.#observe(verb, 'timeout', resource);
        throw this.#timedOut(verb, path);
      }
      this.#observe(verb, 'error', resource);
      throw err;
    }
    this.#observe(verb, String(response.status), resource);
    if (response.ok) return response;
    const text = await response.text();
    let reason = response.statusText;
    let message = text;
    let causes: string[] = [];
    try {
      const status = JSON.parse(text) as {
        reason?: string;
        message?: string;
        details?: { causes?: { type?: unknown }[] };
      };
      reason = status.reason ?? reason;
      message = status.message ?? message;
      causes = (status.details?.causes ?? []).flatMap((c) => (typeof c.type === 'string' ? [c.type] : []));
    } catch {
      // Not a metav1.Status: keep the raw text.
    }
    throw new ApiError(response.status, reason, `${verb} ${path}: ${message}`, verb, causes);
  }
}

/** `dispatcher`, with no limit on how long a response's body may go without data. */
function withoutBodyTimeout(dispatcher: Dispatcher): Dispatcher {
  return dispatcher.compose(
    (dispatch) => (options, handler) => dispatch({ ...options, bodyTimeout: 0 }, handler),
  );
}
