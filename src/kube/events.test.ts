import { describe, expect, it } from 'vitest';
import { eventName, MAX_EVENT_NAME } from './events.ts';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const now = Date.UTC(2026, 11, 1);

describe('eventName', () => {
  it('is the object name and a suffix when that fits', () => {
    expect(eventName('web', now, 0)).toBe(`web.${now.toString(16)}0`);
  });

  it('stays within 253 characters for a 253-character object name, and is a DNS subdomain', () => {
    for (const name of [
      'a'.repeat(253),
      `${'a'.repeat(229)}.${'b'.repeat(23)}`,
      `${'a'.repeat(230)}-${'c'.repeat(22)}`,
    ]) {
      const event = eventName(name, now, 12_345);
      expect(event.length).toBeLessThanOrEqual(MAX_EVENT_NAME);
      expect(event).toMatch(DNS_SUBDOMAIN);
    }
  });

  it('keeps two long names apart that share their first 240 characters', () => {
    const prefix = 'x'.repeat(240);
    expect(eventName(`${prefix}-one`, now, 1)).not.toBe(eventName(`${prefix}-two`, now, 1));
  });

  it('keeps events of one object apart by the sequence number', () => {
    const name = 'y'.repeat(253);
    expect(eventName(name, now, 1)).not.toBe(eventName(name, now, 2));
    expect(eventName(name, now, 1)).not.toBe(eventName(name, now, 16));
  });
});
