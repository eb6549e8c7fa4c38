import { describe, expect, it } from 'vitest';
import { priorityClassRefusal } from './priority.ts';

describe('priorityClassRefusal', () => {
  it('allows the listed classes and classes that preempt nothing', () => {
    expect(priorityClassRefusal('prepull-low', ['prepull-low'], -10)).toBeUndefined();
    expect(priorityClassRefusal('team-batch', ['prepull-low'], 0)).toBeUndefined();
    expect(priorityClassRefusal('team-low', ['prepull-low'], -5)).toBeUndefined();
    expect(priorityClassRefusal('listed-but-missing', ['listed-but-missing'], undefined)).toBeUndefined();
  });

  it('refuses a class above 0 that is not listed, and a class that does not exist', () => {
    expect(priorityClassRefusal('system-node-critical', ['prepull-low'], 2_000_001_000)).toBe(
      'priorityClassName system-node-critical is not allowed for puller pods: it has value 2000001000, above 0 and is not one the operator allows (prepull-low); use one of those or a class of value 0 or less',
    );
    expect(priorityClassRefusal('nope', [], undefined)).toContain('it does not exist');
  });
});
