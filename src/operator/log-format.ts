/**
 * Human-readable logs for a terminal (`npm start`): pino's JSON lines turned
 * into `12:04:05.123 INFO  message  key=value …`, with the error's stack below
 * its line. In a pod, logs stay JSON for the log pipeline; `prepull run
 * --log-format` picks. The formatting is pure; {@link prettyLogStream} only
 * writes its output.
 */

/** How `prepull run` writes its log: JSON lines, readable lines, or readable on a terminal only. */
export type LogFormat = 'json' | 'pretty' | 'auto';

/** Parses `--log-format`. */
export function parseLogFormat(value: string): LogFormat {
  if (value === 'json' || value === 'pretty' || value === 'auto') return value;
  throw new Error(`--log-format must be json, pretty or auto, not ${JSON.stringify(value)}`);
}

/** Whether to write readable lines: `auto` means when the log goes to a terminal. */
export function usePrettyLogs(format: LogFormat, isTerminal: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && isTerminal);
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
};

/** Fields every line has, shown in its own place or not at all. */
const OWN_PLACE = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v', 'err']);

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function clock(time: unknown): string {
  if (typeof time !== 'number') return '--:--:--.---';
  return new Date(time).toISOString().slice(11, 23);
}

/** One pino JSON line as a readable line (ending in a newline); a line that is not JSON passes through. */
export function formatLogLine(line: string, options: { color: boolean }): string {
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return ensureNewline(line);
    record = parsed as Record<string, unknown>;
  } catch {
    return ensureNewline(line);
  }
  const level = LEVELS[record.level as number] ?? { name: String(record.level ?? '?'), color: '0' };
  const paint = (code: string, text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const fields = Object.entries(record)
    .filter(([key]) => !OWN_PLACE.has(key))
    .map(([key, value]) => `${paint('2', `${key}=`)}${formatValue(value)}`);
  const head = `${paint('2', clock(record.time))} ${paint(level.color, level.name.padEnd(5))} ${String(record.msg ?? '')}`;
  let out = fields.length > 0 ? `${head}  ${fields.join(' ')}` : head;
  const err = record.err as { stack?: unknown; message?: unknown } | undefined;
  if (err && typeof err === 'object') {
    const text = typeof err.stack === 'string' ? err.stack : String(err.message ?? JSON.stringify(err));
    out += `\n${text.replace(/^/gm, '    ')}`;
  }
  return `${out}\n`;
}

function ensureNewline(line: string): string {
  return line.endsWith('\n') ? line : `${line}\n`;
}

/** A pino destination that writes {@link formatLogLine}'s lines to `out`. */
export function prettyLogStream(
  out: { write(text: string): unknown },
  options: { color: boolean },
): { write(line: string): void } {
  return { write: (line) => void out.write(formatLogLine(line, options)) };
}
