/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1): one header may hold several
 * challenges, each a scheme with either comma-separated `name=value`
 * parameters (values plain or quoted with backslash escapes) or one token68.
 * Registries send `Basic realm="…"` or
 * `Bearer realm="…",service="…",scope="…"`. Pure.
 */

/** One challenge. `scheme` and parameter names are lower case; values are as sent. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge had one instead of parameters. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/** Parses a `WWW-Authenticate` value into its challenges; never throws, skipping what it cannot read. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TCHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = (): string => {
    // header[i] is the opening quote.
    i++;
    let value = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    i++; // the closing quote (or past the end)
    return value;
  };
  /** At `name =`? Looks ahead without moving. */
  const atParam = (): boolean => {
    let j = i;
    while (j < n && TCHAR.test(header[j]!)) j++;
    if (j === i) return false;
    while (j < n && (header[j] === ' ' || header[j] === '\t')) j++;
    return header[j] === '=' && header[j + 1] !== '=';
  };

  while (i < n) {
    while (i < n && (header[i] === ',' || header[i] === ' ' || header[i] === '\t')) i++;
    const scheme = readToken();
    if (!scheme) {
      // Not a challenge start: skip to the next comma.
      while (i < n && header[i] !== ',') i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipSpace();
    if (i < n && header[i] !== ',' && !atParam()) {
      const start = i;
      while (i < n && TOKEN68_CHAR.test(header[i]!)) i++;
      while (i < n && header[i] === '=') i++;
      if (i > start) challenge.token68 = header.slice(start, i);
      skipSpace();
      continue;
    }
    // Parameters, until something that is not `name=` follows a comma (the next challenge).
    for (;;) {
      skipSpace();
      if (!atParam()) break;
      const name = readToken().toLowerCase();
      skipSpace();
      i++; // '='
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      if (!(name in challenge.params)) challenge.params[name] = value;
      skipSpace();
      if (header[i] !== ',') break;
      const comma = i;
      i++;
      while (i < n && (header[i] === ',' || header[i] === ' ' || header[i] === '\t')) i++;
      if (!atParam()) {
        i = comma;
        break;
      }
    }
  }
  return challenges;
}

/** The token scope for pulling `repository` (`library/nginx`): what containerd and docker ask for. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}
