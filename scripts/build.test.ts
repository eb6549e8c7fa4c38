import { describe, expect, it } from 'vitest';
import { asciiOnly } from './build.ts';

describe('asciiOnly', () => {
  it('escapes every non-ASCII character, so V8 keeps the bundle as a one-byte string', () => {
    const source = "// response’s status, RFC 9111 §5 — 😀\nconst a = 'x';\n";
    const out = asciiOnly(source);
    expect(out).toBe(
      "// response\\u2019s status, RFC 9111 \\u00a75 \\u2014 \\ud83d\\ude00\nconst a = 'x';\n",
    );
    expect(/[\u0080-\uffff]/.test(out)).toBe(false);
    // The escapes read back as the same text in JavaScript.
    expect(JSON.parse(`"${out.slice(3, out.indexOf('\n'))}"`)).toBe(source.slice(3, source.indexOf('\n')));
  });
});
