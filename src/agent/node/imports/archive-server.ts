/**
 * The node agent's end of archive sends (archive-protocol.ts): an HTTP server
 * on the agent's pod that authenticates each send by TokenReview, admits it
 * against the node's import tasks, and queues it until the import module
 * runs it. A send asks with `Expect: 100-continue`, so the archive flows only
 * once its import starts, straight into the importer's standard input; a
 * send that is answered at once (done already, refused, in back-off) never
 * transfers its body. Reviews are cached per token for a few minutes, and few
 * run at once, so no caller can turn the agent into a flood of API requests.
 * I/O.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KubeClient } from '../../../kube/client.ts';
import type { KubeObject } from '../../../kube/objects.ts';
import { Resources } from '../../../kube/resources.ts';
import {
  ARCHIVE_AUDIENCE,
  type ArchiveAnswer,
  admitSend,
  type RecordView,
  type Sender,
  type SenderFailure,
  senderFailureSchema,
  senderOf,
  type TokenReviewStatus,
  taskKeyOfPath,
} from './archive-protocol.ts';
import type { ImportTask } from './plan.ts';

/** A send admitted and waiting for its import. */
export interface QueuedSend {
  task: ImportTask;
  /** What the pod sent instead of an archive: why it cannot read it. */
  failure?: SenderFailure;
  /** Starts the body's flow (100 Continue) and gives it. */
  begin(): IncomingMessage;
  respond(status: number, answer: ArchiveAnswer): void;
}

export interface ArchiveServerOptions {
  client: KubeClient;
  nodeName: string;
  log: Logger;
  port: number;
  host?: string;
  /** The node's import tasks now. */
  tasks(): readonly ImportTask[];
  /** The node's puller pods now. */
  pods(): readonly KubeObject[];
  view(task: ImportTask): RecordView;
  /** Called when a send is queued. */
  wake(): void;
}

const REVIEW_TTL_MS = 5 * 60_000;
const MAX_CACHED_REVIEWS = 1024;
const MAX_REVIEWS_IN_FLIGHT = 4;
const MAX_FAILURE_BODY = 4096;

type Review = { ok: true; sender: Sender } | { ok: false; message: string; transient?: true };

export class ArchiveServer {
  readonly #options: ArchiveServerOptions;
  readonly #server: Server;
  readonly #queued = new Map<string, QueuedSend[]>();
  readonly #reviews = new Map<string, { review: Review; until: number }>();
  #inFlight = 0;

  constructor(options: ArchiveServerOptions) {
    this.#options = options;
    this.#server = createServer();
    // A queued send may wait for other imports; only the headers have a deadline.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = 10_000;
    const handle = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res, expectsContinue).catch((err: unknown) => {
        options.log.warn({ err: (err as Error).message }, 'archive send failed');
        reply(res, 500, { ok: false, message: 'the agent failed to handle the send' });
      });
    };
    this.#server.on('request', handle(false));
    this.#server.on('checkContinue', handle(true));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host ?? '0.0.0.0', () => resolve());
    });
  }

  async stop(): Promise<void> {
    for (const key of [...this.#queued.keys()]) {
      this.answerAll(key, 503, { ok: false, message: 'the agent is stopping', retryAfterSeconds: 5 });
    }
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Whether a send of task `key` waits. */
  has(key: string): boolean {
    return (this.#queued.get(key)?.length ?? 0) > 0;
  }

  /** The first send of task `key` that waits, taken off the queue. */
  take(key: string): QueuedSend | undefined {
    const list = this.#queued.get(key);
    const send = list?.shift();
    if (list?.length === 0) this.#queued.delete(key);
    return send;
  }

  /** Answers every send of `key` still waiting (another pod's send of the same import). */
  answerAll(key: string, status: number, answer: ArchiveAnswer): void {
    for (const send of this.#queued.get(key) ?? []) send.respond(status, answer);
    this.#queued.delete(key);
  }

  /** Answers the sends of tasks no longer owed. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of [...this.#queued.keys()]) {
      if (!keys.has(key))
        this.answerAll(key, 404, { ok: false, message: `the import ${key} is no longer owed` });
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const { log, nodeName } = this.#options;
    const key = req.method === 'PUT' ? taskKeyOfPath(req.url ?? '') : undefined;
    if (key === undefined)
      return reply(res, 404, { ok: false, message: 'PUT /v1/imports/<uid>/<index> only' });
    const token = /^Bearer ([A-Za-z0-9._-]{16,8192})$/.exec(req.headers.authorization ?? '')?.[1];
    if (token === undefined) return reply(res, 401, { ok: false, message: 'a Bearer token is needed' });
    const review = await this.#review(token);
    if (review === 'busy') return reply(res, 429, { ok: false, message: 'busy', retryAfterSeconds: 2 });
    if (!review.ok && review.transient) {
      return reply(res, 503, { ok: false, message: review.message, retryAfterSeconds: 5 });
    }
    if (!review.ok) return reply(res, 401, { ok: false, message: review.message });
    const admission = admitSend({
      sender: review.sender,
      key,
      nodeName,
      tasks: this.#options.tasks(),
      pods: this.#options.pods(),
      record: (task) => this.#options.view(task),
    });
    if (admission.kind === 'answer') {
      if (admission.status >= 400 && admission.status !== 503) {
        log.info(
          { key, sender: review.sender, status: admission.status, message: admission.answer.message },
          'archive send refused',
        );
      }
      return reply(res, admission.status, admission.answer);
    }
    let failure: SenderFailure | undefined;
    if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
      if (expectsContinue) res.writeContinue();
      const parsed = senderFailureSchema.safeParse(await readJson(req));
      if (!parsed.success)
        return reply(res, 400, { ok: false, message: 'not a sender failure: {reason, message}' });
      failure = parsed.data;
    }
    let answered = false;
    const send: QueuedSend = {
      task: admission.task,
      ...(failure && { failure }),
      begin: () => {
        if (expectsContinue && !failure) res.writeContinue();
        return req;
      },
      respond: (status, answer) => {
        if (answered) return;
        answered = true;
        reply(res, status, answer);
      },
    };
    // A sender that goes away while it waits leaves the queue.
    res.on('close', () => {
      answered = true;
      const list = this.#queued.get(key);
      const at = list?.indexOf(send) ?? -1;
      if (list && at >= 0) list.splice(at, 1);
      if (list?.length === 0) this.#queued.delete(key);
    });
    const list = this.#queued.get(key) ?? [];
    list.push(send);
    this.#queued.set(key, list);
    this.#options.wake();
  }

  /** The API server's word on `token`, cached for a while; 'busy' when too many are asked at once. */
  async #review(token: string): Promise<Review | 'busy'> {
    const hash = createHash('sha256').update(token).digest('hex');
    const now = Date.now();
    const cached = this.#reviews.get(hash);
    if (cached && cached.until > now) return cached.review;
    if (this.#inFlight >= MAX_REVIEWS_IN_FLIGHT) return 'busy';
    this.#inFlight++;
    let review: Review;
    try {
      const created = await this.#options.client.create<KubeObject & { status?: TokenReviewStatus }>(
        Resources.tokenReviews,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          metadata: {},
          spec: { token, audiences: [ARCHIVE_AUDIENCE] },
        } as KubeObject,
      );
      review = senderOf(created.status ?? {});
    } catch (err) {
      // Not cached: the next send asks again.
      return {
        ok: false,
        message: `the API server could not review the token: ${(err as Error).message}`,
        transient: true,
      };
    } finally {
      this.#inFlight--;
    }
    if (this.#reviews.size >= MAX_CACHED_REVIEWS) this.#reviews.clear();
    this.#reviews.set(hash, { review, until: now + REVIEW_TTL_MS });
    return review;
  }
}

function reply(res: ServerResponse, status: number, answer: ArchiveAnswer): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (answer.retryAfterSeconds !== undefined) headers['retry-after'] = String(answer.retryAfterSeconds);
  // An archive body not read yet is not read at all.
  headers.connection = 'close';
  res.writeHead(status, headers).end(`${JSON.stringify(answer)}\n`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > MAX_FAILURE_BODY) return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
