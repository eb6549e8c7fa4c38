/** A sort order that is the same on every machine. Pure. */

/** Code-point order, unlike localeCompare: the same everywhere, so sorted output serialises identically. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
