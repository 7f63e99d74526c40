// The VE/EDM σ convention (src/diffusion/ve.ts) against diffactor's flow time and methods-b §7's
// invariants: (a) two noise levels of one (x, ε) lie on one VE trajectory; (d) the Karras grid's
// endpoints (×H/64) and strict decrease; (e) the iCT curriculum N(k) is non-decreasing, takes values
// s0·2^j + 1 or s1 + 1 and ends at s1 + 1; the VE point x_σ is the linear-path point at
// t = σ/(1 + σ) scaled by 1 + σ (both directions), and an exact denoiser's flow velocity is ε − x.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EDM, curriculumPoints, denoiserAsFlowModel, edmCIn, flowTimeToSigma, flowToVe, karrasSigmas, nearestGridIndex,
  resolutionShift, sigmaCondition, sigmaToFlowTime, veNoise, veToFlow,
} from '../../src/diffusion/ve.ts';
import { interpolate, linear, velocityTarget } from '../../src/diffusion/interpolant.ts';
import { add, mul, sub } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';

const sigma = fc.double({ min: 1e-3, max: 200, noNaN: true });

describe('VE σ ↔ flow time', () => {
  it('t = σ/(1 + σ) and σ = t/(1 − t) are inverse and monotone', () => {
    fc.assert(fc.property(sigma, sigma, (a, b) => {
      expect(flowTimeToSigma(sigmaToFlowTime(a))).toBeCloseTo(a, 8);
      if (a < b) expect(sigmaToFlowTime(a)).toBeLessThanOrEqual(sigmaToFlowTime(b));
    }), { numRuns: 200, seed: 1 });
    expect(() => flowTimeToSigma(1)).toThrow(/\[0, 1\)/);
  });

  it('x_σ/(1 + σ) is the linear-path point at t = σ/(1 + σ); flowToVe undoes veToFlow', () => {
    const rng = new Rng(3);
    const x = rng.normal([3, 2, 4, 4], 0, 1, 'float64'), eps = rng.normal([3, 2, 4, 4], 0, 1, 'float64');
    fc.assert(fc.property(fc.array(sigma, { minLength: 3, maxLength: 3 }), (s) => {
      const xs = veNoise(x, eps, s);
      const { xt, t } = veToFlow(xs, s);
      for (let b = 0; b < 3; b++) {
        const one = (v: typeof x) => tensor(v.data.slice(b * 32, (b + 1) * 32), [1, 2, 4, 4], 'float64');
        expectClose(`x_t sample ${b}`, one(xt).data, interpolate(linear, one(x), one(eps), t[b]).data, 1e-12, 1e-12);
      }
      const back = flowToVe(xt, t);
      expectClose('σ back', back.sigmas, s, 1e-9, 1e-9);
      expectClose('x_σ back', back.xSigma.data, xs.data, 1e-9, 1e-9);
    }), { numRuns: 40, seed: 2 });
  });

  it('(a) x_σ and x_σ′ of one (x, ε) lie on one trajectory: (x_σ − x)/σ = (x_σ′ − x)/σ′ = ε', () => {
    const rng = new Rng(4);
    const x = rng.normal([2, 1, 4, 4], 0, 1, 'float64'), eps = rng.normal([2, 1, 4, 4], 0, 1, 'float64');
    fc.assert(fc.property(sigma, fc.double({ min: 0.01, max: 0.99, noNaN: true }), (s, f) => {
      const s2 = s * f; // σ′ < σ
      const a = mul(sub(veNoise(x, eps, [s, s]), x), 1 / s), b = mul(sub(veNoise(x, eps, [s2, s2]), x), 1 / s2);
      expectClose('direction', a.data, b.data, 1e-9, 1e-9);
      expectClose('= ε', a.data, eps.data, 1e-9, 1e-9);
    }), { numRuns: 60, seed: 3 });
  });

  it('an exact denoiser (D = x) seen through denoiserAsFlowModel has the flow velocity ε − x', () => {
    const rng = new Rng(5);
    const x = rng.normal([2, 1, 4, 4], 0, 1, 'float64'), eps = rng.normal([2, 1, 4, 4], 0, 1, 'float64');
    const v = denoiserAsFlowModel(() => x);
    fc.assert(fc.property(fc.double({ min: 0.01, max: 0.99, noNaN: true }), (t) => {
      const xt = interpolate(linear, x, eps, t);
      const got = v(xt, tensor([t, t], [2], 'float64'), tensor([0, 0], [2]));
      expectClose('v', got.data, velocityTarget(linear, x, eps, t).data, 1e-9, 1e-9);
    }), { numRuns: 40, seed: 4 });
    // and the VE ODE derivative (x_σ − D)/σ of the exact denoiser is ε at every σ
    const s = 0.7, xs = veNoise(x, eps, [s, s]);
    expectClose('(x_σ − x)/σ', mul(sub(xs, x), 1 / s).data, eps.data, 1e-12, 1e-12);
    expect(add(x, x).shape).toEqual(x.shape);
  });
});

describe('EDM preconditioning and time condition', () => {
  it('c_in = 1/√(σ² + 0.25), the condition 250·ln σ', () => {
    fc.assert(fc.property(sigma, (s) => {
      expect(edmCIn(s)).toBeCloseTo(1 / Math.sqrt(s * s + 0.25), 12);
      expect(edmCIn(s) * Math.sqrt(s * s + EDM.sigmaData ** 2)).toBeCloseTo(1, 12);
      expect(sigmaCondition(s)).toBeCloseTo(250 * Math.log(s), 8);
    }), { numRuns: 100, seed: 5 });
    expect(sigmaCondition(1)).toBe(0);
  });
});

describe('Karras grid (d) and the iCT curriculum (e)', () => {
  it('(d) σ_0 = 80·H/64, σ_{N−1} = 0.002·H/64, strictly decreasing, ρ-spaced', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 1400 }), fc.constantFrom(16, 28, 32, 64, 256), (n, h) => {
      const shift = resolutionShift(h), g = karrasSigmas(n, shift);
      expect(g.length).toBe(n);
      expect(g[0]).toBeCloseTo(80 * h / 64, 10);
      expect(g[n - 1]).toBeCloseTo(0.002 * h / 64, 12);
      for (let i = 1; i < n; i++) expect(g[i]).toBeLessThan(g[i - 1]);
      // σ^{1/ρ} is affine in i
      const r = Array.from(g, (v) => (v / shift) ** (1 / 7));
      for (let i = 1; i < n; i++) expect(r[i] - r[i - 1]).toBeCloseTo(r[1] - r[0], 9);
    }), { numRuns: 60, seed: 6 });
    expect(resolutionShift(32)).toBe(0.5);
    expect(() => karrasSigmas(0)).toThrow(/≥ 1/);
  });

  it('(e) N(k) is non-decreasing, in {s0·2^j + 1} ∪ {s1 + 1}, and ends at s1 + 1 (paper 20 → 1280; ours 10 → 320)', () => {
    for (const [s0, s1] of [[20, 1280], [10, 320]]) {
      fc.assert(fc.property(fc.integer({ min: 40, max: 5000 }), (K) => {
        let prev = 0;
        for (let k = 0; k <= K; k += Math.max(1, Math.floor(K / 97))) {
          const n = curriculumPoints(k, K, s0, s1);
          expect(n).toBeGreaterThanOrEqual(prev);
          const j = Math.log2((n - 1) / s0);
          expect(n === s1 + 1 || (Number.isInteger(j) && j >= 0)).toBe(true);
          prev = n;
        }
        expect(curriculumPoints(K, K, s0, s1)).toBe(s1 + 1);
        expect(curriculumPoints(0, K, s0, s1)).toBe(s0 + 1);
      }), { numRuns: 60, seed: 7 });
    }
    // the paper's values: 21, 41, …, 1281
    const seen = new Set(Array.from({ length: 1001 }, (_, k) => curriculumPoints(k, 1000, 20, 1280)));
    expect([...seen].sort((a, b) => a - b)).toEqual([21, 41, 81, 161, 321, 641, 1281]);
    expect(() => curriculumPoints(5, 4, 20, 1280)).toThrow(/k must be/);
  });

  it('nearestGridIndex finds the closest σ and clamps', () => {
    const g = karrasSigmas(50);
    fc.assert(fc.property(fc.integer({ min: 0, max: 49 }), (i) => { expect(nearestGridIndex(g[i], g)).toBe(i); }), { numRuns: 50, seed: 8 });
    expect(nearestGridIndex(1e-9, g, 48)).toBe(48);
    expect(nearestGridIndex(1e9, g)).toBe(0);
  });
});
