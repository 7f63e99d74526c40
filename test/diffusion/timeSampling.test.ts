import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { logitNormalTimes, resolutionShift, sampleTimes, shiftTime, shiftTimes, uniformTimes, uniformTimesteps } from '../../src/diffusion/timeSampling.ts';
import { cosine, linear } from '../../src/diffusion/interpolant.ts';
import { Rng } from '../../src/tensor/rng.ts';

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
const std = (a: ArrayLike<number>) => { const m = mean(a); return Math.sqrt(Array.from(a).reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1)); };
const unit = fc.double({ min: 0, max: 1, noNaN: true });
const shift = fc.double({ min: 0.05, max: 20, noNaN: true });

describe('training time distributions', () => {
  it('uniform: in (0, 1), mean 1/2, variance 1/12, reproducible per seed', () => {
    const t = uniformTimes(new Rng(1), 20000);
    expect(Math.min(...t)).toBeGreaterThan(0);
    expect(Math.max(...t)).toBeLessThan(1);
    expect(Math.abs(mean(t) - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(std(t) - Math.sqrt(1 / 12))).toBeLessThan(0.01);
    expect(uniformTimes(new Rng(1), 5)).toEqual(t.subarray(0, 5));
  });

  it('logit-normal on the linear path: logit(t) ~ N(mean, std)', () => {
    const t = logitNormalTimes(new Rng(2), 20000, { mean: -0.5, std: 1.3 });
    const logit = Array.from(t, (v) => Math.log(v / (1 - v)));
    expect(Math.abs(mean(logit) + 0.5)).toBeLessThan(0.05);
    expect(Math.abs(std(logit) - 1.3)).toBeLessThan(0.05);
  });

  it('lognormal on the cosine path is (2/π)·atan(eⁿ) of the same normal draw (REPA loss.py)', () => {
    const tl = logitNormalTimes(new Rng(3), 100), tc = logitNormalTimes(new Rng(3), 100, { interpolant: cosine });
    for (let i = 0; i < 100; i++) {
      const n = Math.log(tl[i] / (1 - tl[i]));
      expect(tc[i]).toBeCloseTo((2 / Math.PI) * Math.atan(Math.exp(n)), 12);
    }
  });

  it('extreme normals do not overflow into NaN', () => {
    const t = logitNormalTimes(new Rng(4), 1000, { std: 400 });
    expect(t.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('sampleTimes follows the spec and applies the shift after sampling', () => {
    const a = sampleTimes(new Rng(5), 50, { kind: 'logitNormal', mean: 0, std: 1, shift: 3 });
    const b = shiftTimes(logitNormalTimes(new Rng(5), 50), 3);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(sampleTimes(new Rng(6), 10, { kind: 'uniform' }))).toEqual(Array.from(uniformTimes(new Rng(6), 10)));
    expect(Array.from(sampleTimes(new Rng(7), 10, { kind: 'logitNormal' }, cosine)))
      .toEqual(Array.from(logitNormalTimes(new Rng(7), 10, { interpolant: cosine })));
    expect(sampleTimes(new Rng(7), 3, { kind: 'uniform' }, linear).length).toBe(3);
  });

  it('DDPM timesteps are integers in [0, T) covering the range', () => {
    const k = uniformTimesteps(new Rng(8), 5000, 1000);
    expect(k.every((v) => Number.isInteger(v) && v >= 0 && v < 1000)).toBe(true);
    expect(Math.min(...k)).toBeLessThan(10);
    expect(Math.max(...k)).toBeGreaterThan(990);
  });
});

describe('timestep shift τ_s(t) = s t / (1 + (s−1) t) (RAE, SVG and DDT official code)', () => {
  it('τ_1 is the identity; τ_s fixes 0 and 1; τ_s(1/2) = s/(1+s)', () => {
    fc.assert(fc.property(unit, shift, (t, s) => {
      expect(shiftTime(t, 1)).toBeCloseTo(t, 15);
      expect(shiftTime(0, s)).toBe(0);
      expect(shiftTime(1, s)).toBeCloseTo(1, 14);
      expect(shiftTime(0.5, s)).toBeCloseTo(s / (1 + s), 14);
    }), { numRuns: 100, seed: 9 });
  });

  it('monotone; τ_{1/s} inverts τ_s; 1 − τ_s(1 − t) = τ_{1/s}(t); s > 1 moves mass toward noise', () => {
    fc.assert(fc.property(unit, unit, shift, (a, b, s) => {
      const [lo, hi] = a < b ? [a, b] : [b, a];
      expect(shiftTime(lo, s)).toBeLessThanOrEqual(shiftTime(hi, s));
      expect(shiftTime(shiftTime(a, s), 1 / s)).toBeCloseTo(a, 12);
      expect(1 - shiftTime(1 - a, s)).toBeCloseTo(shiftTime(a, 1 / s), 12);
      if (s > 1) expect(shiftTime(a, s)).toBeGreaterThanOrEqual(a - 1e-15);
    }), { numRuns: 200, seed: 10 });
    expect(() => shiftTime(0.5, 0)).toThrow(/shift must be > 0/);
  });

  it("RAE's resolution shift: √(196608/4096) = √48; the small-scale 8×8×64 latent gives 1", () => {
    expect(resolutionShift(16 * 16 * 768, 4096)).toBeCloseTo(Math.sqrt(48), 14);
    expect(resolutionShift(8 * 8 * 64, 4096)).toBe(1);
  });
});
