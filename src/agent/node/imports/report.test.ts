import { describe, expect, it } from 'vitest';
import { prePulledImageSpecSchema } from '../../../api/prepulledimage.ts';
import { importFingerprint } from './report.ts';

describe('importFingerprint', () => {
  const raw = {
    image: 'prepull.local/team/app:v1',
    tarball: { sha256: 'a'.repeat(64), url: 'https://files.example/app.tar' },
  };

  it('is the same for the entry as stored and as the schema parsed it (which reorders its fields)', () => {
    const parsed = prePulledImageSpecSchema.parse({ images: [raw] }).images[0]!;
    expect(Object.keys(parsed.tarball!)).not.toEqual(Object.keys(raw.tarball));
    expect(importFingerprint(parsed)).toBe(importFingerprint(raw));
  });

  it('changes with the image or its source', () => {
    const base = importFingerprint(raw);
    expect(importFingerprint({ ...raw, image: 'prepull.local/team/app:v2' })).not.toBe(base);
    expect(importFingerprint({ ...raw, tarball: { ...raw.tarball, sha256: 'b'.repeat(64) } })).not.toBe(base);
  });
});
