import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { formatLogLine, parseLogFormat, prettyLogStream, usePrettyLogs } from './log-format.ts';

const time = Date.UTC(2026, 11, 1, 12, 4, 5, 123);

describe('formatLogLine', () => {
  it('puts time, level and message first, then the fields as key=value', () => {
    const line = JSON.stringify({
      level: 30,
      time,
      pid: 7,
      hostname: 'h',
      component: 'prepull',
      msg: 'connected to the API server',
      server: 'https://127.0.0.1:6443',
      source: 'in cluster',
      nodes: 3,
      labels: { a: 'b' },
    });
    expect(formatLogLine(line, { color: false })).toBe(
      '12:04:05.123 INFO  connected to the API server  component=prepull server=https://127.0.0.1:6443 ' +
        'source="in cluster" nodes=3 labels={"a":"b"}\n',
    );
  });

  it('shows the stack of an error under its line', () => {
    const line = JSON.stringify({
      level: 50,
      time,
      msg: 'operator failed',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at main (x.ts:1:1)' },
    });
    expect(formatLogLine(line, { color: false })).toBe(
      '12:04:05.123 ERROR operator failed\n    Error: boom\n        at main (x.ts:1:1)\n',
    );
  });

  it('colours the level on a terminal that wants it', () => {
    const out = formatLogLine(JSON.stringify({ level: 40, time, msg: 'slow' }), { color: true });
    expect(out).toContain('\x1b[33mWARN \x1b[0m');
  });

  it('passes a line that is not a JSON object through', () => {
    expect(formatLogLine('plain text', { color: false })).toBe('plain text\n');
    expect(formatLogLine('[1,2]\n', { color: false })).toBe('[1,2]\n');
  });

  it('formats what pino itself writes', () => {
    const written: string[] = [];
    const log = pino(
      { base: { component: 'prepull' } },
      prettyLogStream({ write: (t) => written.push(t) }, { color: false }),
    );
    log.info({ ppi: 'team-a/ml' }, 'reconciled');
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}reconciled {2}component=prepull ppi=team-a\/ml\n$/,
    );
  });
});

describe('log format choice', () => {
  it.each([
    ['auto', true, true],
    ['auto', false, false],
    ['json', true, false],
    ['pretty', false, true],
  ] as const)('%s on a terminal=%s is pretty=%s', (format, terminal, pretty) => {
    expect(usePrettyLogs(parseLogFormat(format), terminal)).toBe(pretty);
  });

  it('rejects another format', () => {
    expect(() => parseLogFormat('yaml')).toThrowError(/json, pretty or auto/);
  });
});
