import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArchive, sendOnce, sendUntilDone } from './send-archive.ts';

let dir = '';
let root = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'send-archive-'));
  root = join(dir, 'claim');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'sub', 'app.tar'), 'archive bytes');
  writeFileSync(join(dir, 'outside.tar'), 'not in the claim');
  symlinkSync('../outside.tar', join(root, 'escape.tar'));
  symlinkSync('sub/app.tar', join(root, 'inside-link.tar'));
  execFileSync('mkfifo', [join(root, 'fifo.tar')]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openArchive', () => {
  it('opens a regular file of the volume, through a symlink that stays inside it too', async () => {
    for (const file of ['sub/app.tar', 'inside-link.tar']) {
      const opened = await openArchive(root, file);
      expect(opened.ok, file).toBe(true);
      if (opened.ok) {
        expect(opened.size).toBe('archive bytes'.length);
        opened.stream.destroy();
      }
    }
  });

  it('refuses a symlink out of the volume, a FIFO (without blocking), a directory and a missing file', async () => {
    expect(await openArchive(root, 'escape.tar')).toMatchObject({
      ok: false,
      failure: { reason: 'PathRefused' },
    });
    expect(await openArchive(root, 'fifo.tar')).toMatchObject({
      ok: false,
      failure: {
        reason: 'NotRegularFile',
        message: 'fifo.tar in the volume claim is a FIFO, not a regular file',
      },
    });
    expect(await openArchive(root, 'sub')).toMatchObject({
      ok: false,
      failure: { reason: 'NotRegularFile' },
    });
    expect(await openArchive(root, 'gone.tar')).toMatchObject({
      ok: false,
      failure: { reason: 'ImportFailed', message: 'opening gone.tar in the volume claim: no such file' },
    });
  });
});

describe('sending to an agent that speaks the protocol', () => {
  let server: Server;
  let url = '';
  const received: Array<{ auth: string | undefined; type: string | undefined; body: string }> = [];
  let mode: 'import' | 'done' | 'busy' = 'import';

  beforeAll(async () => {
    const answer = async (req: IncomingMessage, res: ServerResponse, expects: boolean) => {
      if (mode === 'done') return res.writeHead(200).end(JSON.stringify({ ok: true, digest: 'sha256:old' }));
      if (mode === 'busy') {
        mode = 'done';
        return res
          .writeHead(503, { 'retry-after': '1' })
          .end(JSON.stringify({ ok: false, message: 'back-off' }));
      }
      if (expects) res.writeContinue();
      let body = '';
      for await (const chunk of req) body += String(chunk);
      received.push({ auth: req.headers.authorization, type: req.headers['content-type'], body });
      res.writeHead(200).end(JSON.stringify({ ok: true, digest: 'sha256:new' }));
    };
    server = createServer((req, res) => void answer(req, res, false));
    server.on('checkContinue', (req, res) => void answer(req, res, true));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/imports/u/0`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the archive once the agent asks for it, with the token', async () => {
    const opened = await openArchive(root, 'sub/app.tar');
    if (!opened.ok) throw new Error('not opened');
    const result = await sendOnce(new URL(url), 'token-1', { archive: opened.stream, size: opened.size });
    expect(result).toEqual({ status: 200, answer: { ok: true, digest: 'sha256:new' } });
    expect(received.at(-1)).toEqual({
      auth: 'Bearer token-1',
      type: 'application/octet-stream',
      body: 'archive bytes',
    });
  });

  it('sends nothing of the archive when the agent answers first, and a failure as JSON', async () => {
    mode = 'done';
    const before = received.length;
    const opened = await openArchive(root, 'sub/app.tar');
    if (!opened.ok) throw new Error('not opened');
    expect(await sendOnce(new URL(url), 't', { archive: opened.stream, size: opened.size })).toEqual({
      status: 200,
      answer: { ok: true, digest: 'sha256:old' },
    });
    expect(received.length).toBe(before);
    mode = 'import';
    await sendOnce(new URL(url), 't', { failure: { reason: 'NotRegularFile', message: 'a FIFO' } });
    expect(received.at(-1)).toMatchObject({
      type: 'application/json',
      body: JSON.stringify({ reason: 'NotRegularFile', message: 'a FIFO' }),
    });
  });

  it('waits as long as the agent says, then is done', async () => {
    mode = 'busy';
    writeFileSync(join(dir, 'token'), 'token-2\n');
    const waits: number[] = [];
    const events: string[] = [];
    const done = await sendUntilDone(
      { root, file: 'sub/app.tar', to: new URL(url), tokenFile: join(dir, 'token') },
      (event) => events.push(event),
      new AbortController().signal,
      async (ms) => {
        waits.push(ms);
      },
    );
    expect(done).toBe(true);
    expect(waits).toEqual([1000]);
    expect(events).toEqual(['import not done', 'imported']);
  });
});
