import { describe, expect, it } from 'vitest';
import {
  holdContainerName,
  holdIndexOf,
  importContainerName,
  importIndexOf,
  parseImportResult,
  podCreatedAt,
} from './protocol.ts';

describe('container names', () => {
  it('round-trip through their index, and nothing else parses', () => {
    expect(holdIndexOf(holdContainerName(12))).toBe(12);
    expect(importIndexOf(importContainerName(3))).toBe(3);
    expect(holdIndexOf(importContainerName(3))).toBeUndefined();
    expect(importIndexOf('install-hold')).toBeUndefined();
    expect(holdIndexOf('image-')).toBeUndefined();
    expect(holdIndexOf('image-1x')).toBeUndefined();
  });
});

describe('parseImportResult', () => {
  it('is a success only with an explicit ok', () => {
    expect(parseImportResult({ exitCode: 0, message: '{"ok":true,"image":"a"}' })).toEqual({ ok: true });
  });

  it('keeps a known reason and the importer message', () => {
    expect(
      parseImportResult({
        exitCode: 0,
        message: '{"ok":false,"reason":"ChecksumMismatch","message":"sha256 differs"}',
      }),
    ).toEqual({ ok: false, reason: 'ChecksumMismatch', message: 'sha256 differs' });
  });

  it('turns an unknown reason into ImportFailed', () => {
    expect(
      parseImportResult({ exitCode: 0, message: '{"ok":false,"reason":"Whatever","message":"m"}' }),
    ).toEqual({
      ok: false,
      reason: 'ImportFailed',
      message: 'm',
    });
  });

  it('treats exit 0 with no result as a failure that says so', () => {
    const result = parseImportResult({ exitCode: 0, reason: 'Completed' });
    expect(result).toEqual({
      ok: false,
      reason: 'ImportFailed',
      message: 'the import step exited with 0 (Completed) and left no result',
    });
  });

  it('shows text that is not JSON as the message', () => {
    expect(parseImportResult({ exitCode: 2, message: 'panic: boom' })).toEqual({
      ok: false,
      reason: 'ImportFailed',
      message: 'panic: boom',
    });
  });
});

describe('podCreatedAt', () => {
  it('is undefined when unknown, so each caller decides what that means', () => {
    expect(podCreatedAt({ metadata: {} })).toBeUndefined();
    expect(podCreatedAt({ metadata: { creationTimestamp: 'nonsense' } })).toBeUndefined();
    expect(podCreatedAt({ metadata: { creationTimestamp: '2026-01-01T00:00:00Z' } })).toBe(
      Date.UTC(2026, 0, 1),
    );
  });
});
