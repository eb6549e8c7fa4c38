/**
 * Which priority classes a PrePulledImage may give its puller pods. A
 * namespaced object must not buy its pods a higher scheduling priority than
 * the namespace could: a high class would let a pod on every node preempt
 * other teams' pods. So a spec may name only a class the operator's admin
 * allowed (`--allowed-priority-class`, default `prepull-low`) or one whose
 * value is 0 or less, which preempts nothing. Pure.
 */

/** The classes allowed when the operator is given none. */
export const DEFAULT_ALLOWED_PRIORITY_CLASSES: readonly string[] = ['prepull-low'];

/**
 * Why `name` may not be used, or undefined when it may: it is allowed by
 * name, or it exists with a value of 0 or less (`value` undefined: no such class).
 */
export function priorityClassRefusal(
  name: string,
  allowed: readonly string[],
  value: number | undefined,
): string | undefined {
  if (allowed.includes(name)) return undefined;
  if (value !== undefined && value <= 0) return undefined;
  const why = value === undefined ? 'does not exist' : `has value ${value}, above 0`;
  return (
    `priorityClassName ${name} is not allowed for puller pods: it ${why} and is not one the operator allows ` +
    `(${allowed.join(', ') || 'none'}); use one of those or a class of value 0 or less`
  );
}
