import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const here = import.meta.dirname;

describe('untilSignal', () => {
  it('keeps a process whose only wait is an unref’d timer up until SIGTERM, then lets it exit', () => {
    // The child waits on an unref'd timer (as the clock's are), holds itself up, and
    // sends itself SIGTERM after a while: without the hold it would exit at once, before.
    const script = `
      import { untilSignal } from ${JSON.stringify(join(here, 'signals.ts'))};
      const { signal } = untilSignal();
      const t = setTimeout(() => {}, 60_000); t.unref();
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 300).unref();
      const got = await signal;
      process.stdout.write('got ' + got);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out).toBe('got SIGTERM');
  });
});
