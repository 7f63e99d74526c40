// Tests for the lr schedules: boundary values of warm-up and cosine, the cosine midpoint, and
// range/monotonicity properties.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { constantSchedule, cosineSchedule, linearWarmup, scaled } from '../../src/optim/schedule.ts';

describe('schedules', () => {
  it('constant is 1 everywhere', () => {
    const f = constantSchedule();
    expect([0, 1, 10_000].map(f)).toEqual([1, 1, 1]);
  });

  it('linear warm-up: 1/W at step 0, 1 at step W-1 and after; W = 0 is constant', () => {
    const f = linearWarmup(4);
    expect([0, 1, 2, 3, 4, 100].map(f)).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
    expect([0, 5].map(linearWarmup(0))).toEqual([1, 1]);
  });

  it('cosine: warm-up, 1 at W, (1 + floor)/2 halfway, floor at T and after', () => {
    const f = cosineSchedule({ totalSteps: 110, warmupSteps: 10, minFactor: 0.1 });
    expect(f(0)).toBeCloseTo(0.1, 15);
    expect(f(9)).toBe(1);
    expect(f(10)).toBe(1);
    expect(f(60)).toBeCloseTo(0.55, 15);
    expect(f(35)).toBeCloseTo(0.1 + 0.9 * (1 + Math.SQRT1_2) / 2, 15); // a quarter of the way: cos(pi/4)
    expect(f(110)).toBe(0.1);
    expect(f(10_000)).toBe(0.1);
    const g = cosineSchedule({ totalSteps: 4 });
    expect([0, 1, 2, 3, 4].map(g).map((x) => +x.toFixed(12))).toEqual([1, 0.853553390593, 0.5, 0.146446609407, 0]);
    expect(scaled(1e-4, g)(2)).toBeCloseTo(5e-5, 18);
  });

  it('cosine stays in [floor, 1] and never increases after warm-up', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 500 }), fc.double({ min: 0, max: 1, noNaN: true }),
      (total, w, floor) => {
        const warm = Math.min(w, total);
        const f = cosineSchedule({ totalSteps: total, warmupSteps: warm, minFactor: floor });
        let prev = Infinity;
        for (let s = warm; s <= total + 2; s++) {
          const v = f(s);
          expect(v).toBeGreaterThanOrEqual(floor - 1e-15);
          expect(v).toBeLessThanOrEqual(1);
          expect(v).toBeLessThanOrEqual(prev);
          prev = v;
        }
      }), { seed: 2, numRuns: 25 });
  });

  it('rejects invalid arguments and steps', () => {
    expect(() => linearWarmup(-1)).toThrow(/warmupSteps must be a non-negative integer/);
    expect(() => cosineSchedule({ totalSteps: 5, warmupSteps: 6 })).toThrow(/exceeds totalSteps/);
    expect(() => cosineSchedule({ totalSteps: 5, minFactor: 2 })).toThrow(/minFactor/);
    expect(() => constantSchedule()(1.5)).toThrow(/step must be a non-negative integer/);
  });
});
