import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { encodeReport, MAX_REPORT_BYTES, readReport, reportAnnotation } from './report.ts';

const schema = z.object({ hosts: z.array(z.string()) });
const podWith = (annotations: Record<string, string>) => ({ metadata: { annotations } });

describe('agent reports', () => {
  it('live in prepull.dev/report.<module>, for a DNS-label module name only', () => {
    expect(reportAnnotation('import')).toBe('prepull.dev/report.import');
    for (const bad of ['', 'Import', 'a/b', '-x', 'x'.repeat(41)]) {
      expect(() => reportAnnotation(bad)).toThrow(/DNS label/);
    }
  });

  it('round-trip through the annotation and the schema', () => {
    const value = { hosts: ['registry.example'] };
    const pod = podWith({ [reportAnnotation('mirror')]: encodeReport('mirror', value) });
    expect(readReport(pod, 'mirror', schema)).toEqual({ state: 'present', report: value });
    expect(readReport(pod, 'import', schema)).toEqual({ state: 'absent' });
  });

  it('that are not JSON, or not of the schema, read as invalid with a message', () => {
    const notJson = readReport(podWith({ 'prepull.dev/report.mirror': '{' }), 'mirror', schema);
    expect(notJson.state).toBe('invalid');
    const wrong = readReport(podWith({ 'prepull.dev/report.mirror': '{"hosts":3}' }), 'mirror', schema);
    expect(wrong).toMatchObject({ state: 'invalid', message: expect.stringContaining('hosts') });
  });

  it('refuse a value that is too large or not JSON', () => {
    expect(() => encodeReport('mirror', { text: 'x'.repeat(MAX_REPORT_BYTES) })).toThrow(/exceeds/);
    expect(() => encodeReport('mirror', undefined)).toThrow(/JSON/);
  });
});
