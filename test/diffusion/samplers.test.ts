// Samplers against closed forms for Gaussian data x ~ N(μ, diag s²) (see gaussianModels.ts):
// exact ODE end points, convergence orders, SDE/DDPM/DDIM moments, model-call counts and times.
import { describe, expect, it } from 'vitest';
import { odeGrid, sampleOde } from '../../src/diffusion/odeSampler.ts';
import { sampleSde, sdeGrid } from '../../src/diffusion/sdeSampler.ts';
import { sampleDdim, sampleDdpm } from '../../src/diffusion/ddpmSampler.ts';
import { DdpmSchedule, spacedTimesteps } from '../../src/diffusion/ddpmSchedule.ts';
import { cosine, linear, scoreCoefs, type Interpolant } from '../../src/diffusion/interpolant.ts';
import { shiftTime } from '../../src/diffusion/timeSampling.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { full, tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { ddpmEps, exactOdeEnd, flowVelocity, maxAbsDiff, moments, recording, type Gaussian } from './gaussianModels.ts';

const g: Gaussian = { mu: [2, -1, 0.5, 0], s: [0.5, 1.5, 0.2, 1] };
const D = 4;
const noise = (B: number, seed: number) => new Rng(seed).normal([B, D], 0, 1, 'float64');
const labels = (B: number) => full([B], 0, 'float64');

/** Moments within k standard errors (plus a small systematic allowance) of (mean, std) per dim. */
function expectMoments(what: string, x: ArrayLike<number>, B: number, mean: number[], std: number[], k = 5, sys = 0) {
  const m = moments(x, B, D);
  for (let d = 0; d < D; d++) {
    const seMean = std[d] / Math.sqrt(B), seStd = std[d] / Math.sqrt(2 * B);
    const msg = `${what} dim ${d}: mean ${m.mean[d].toFixed(4)} vs ${mean[d].toFixed(4)}, std ${m.std[d].toFixed(4)} vs ${std[d].toFixed(4)}`;
    expect(Math.abs(m.mean[d] - mean[d]), msg).toBeLessThan(k * seMean + sys * std[d]);
    expect(Math.abs(m.std[d] - std[d]), msg).toBeLessThan(k * seStd + sys * std[d]);
  }
}

describe('ODE sampler (Euler / Heun)', () => {
  it('transports N(0, 1) to N(μ, s²): the end point approaches μ + s·z, Heun far below Euler', () => {
    const B = 32, z = noise(B, 1), exact = exactOdeEnd(g, z.data, B);
    for (const p of [linear, cosine]) {
      const err = (N: number, heun: boolean) => maxAbsDiff(sampleOde(flowVelocity(p, g), z, labels(B), { steps: N, heun }).data, exact);
      const e20 = err(20, false), e40 = err(40, false), h20 = err(20, true), h40 = err(40, true);
      const msg = `${p.name}: Euler ${e20.toExponential(2)} → ${e40.toExponential(2)}, Heun ${h20.toExponential(2)} → ${h40.toExponential(2)}`;
      expect(e20 / e40, msg).toBeGreaterThan(1.7); // first order
      expect(e20 / e40, msg).toBeLessThan(2.3);
      expect(h20 / h40, msg).toBeGreaterThan(3.2); // second order
      expect(h40, msg).toBeLessThan(e40 / 6);
    }
    const h = sampleOde(flowVelocity(linear, g), z, labels(B), { steps: 200, heun: true });
    expectClose('Heun N=200 vs μ + s z', h.data, exact, 2e-4, 0);
  });

  it('moments of many samples match N(μ, s²)', () => {
    const B = 4000, out = sampleOde(flowVelocity(linear, g), noise(B, 2), labels(B), { steps: 40, heun: true });
    expectMoments('Heun', out.data, B, g.mu, g.s, 5, 0.01);
  });

  it('Euler makes N calls, Heun 2N − 1; the model never sees t = 0; progress reports every step', () => {
    const N = 7, B = 3;
    for (const heun of [false, true]) {
      const r = recording(flowVelocity(linear, g));
      const steps: number[] = [];
      sampleOde(r.model, noise(B, 3), labels(B), { steps: N, heun, onStep: (s, total) => { expect(total).toBe(N); steps.push(s); } });
      expect(r.calls.length).toBe(heun ? 2 * N - 1 : N);
      expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7]);
      const times = r.calls.map((c) => c.t[0]);
      expect(Math.min(...times)).toBeCloseTo(1 / N, 12);
      expect(times.every((t) => t > 0)).toBe(true);
      expect(r.calls.every((c) => c.batch === B && c.t.every((t) => t === c.t[0]))).toBe(true);
      const grid = odeGrid(N);
      const expected = heun ? Array.from(grid.subarray(0, N)).flatMap((t, i) => (i < N - 1 ? [t, grid[i + 1]] : [t])) : Array.from(grid.subarray(0, N));
      expectClose(`${heun ? 'Heun' : 'Euler'} times`, times, expected, 0, 0);
    }
  });

  it('the grid is linspace(1, 0, N+1); a shift s evaluates at τ_s(t_i) with the end points kept', () => {
    const grid = odeGrid(4);
    expect(Array.from(grid)).toEqual([1, 0.75, 0.5, 0.25, 0]);
    const r = recording(flowVelocity(linear, g));
    sampleOde(r.model, noise(2, 4), labels(2), { steps: 4, shift: 3 });
    expectClose('shifted times', r.calls.map((c) => c.t[0]), [1, 0.75, 0.5, 0.25].map((t) => shiftTime(t, 3)), 1e-15, 0);
    expect(odeGrid(5, 3)[5]).toBe(0);
    expect(() => odeGrid(0)).toThrow(/positive integer/);
  });

  it('float32 noise gives a float32 result that agrees with the float64 run', () => {
    const z64 = noise(8, 5), z32 = tensor(z64.data, z64.shape, 'float32');
    const a = sampleOde(flowVelocity(linear, g), z32, full([8], 0), { steps: 10 });
    const b = sampleOde(flowVelocity(linear, g), z64, labels(8), { steps: 10 });
    expect(a.dtype).toBe('float32');
    expectClose('f32 vs f64', a.data, b.data, 1e-4, 1e-4);
  });
});

/**
 * The distribution REPA's SDE sampler targets: the exact marginal at tLast, N(α μ, α² s² + σ²),
 * pushed through its noiseless last step x ← x − tLast·(v − t·s) (affine for Gaussian data).
 */
function sdeTarget(p: Interpolant, tL: number): { mean: number[]; std: number[] } {
  const v = flowVelocity(p, g);
  const probe = (x: number) => v(tensor(new Array(D).fill(x), [1, D], 'float64'), tensor([tL], [1], 'float64'), labels(1)).data;
  const v0 = probe(0), v1 = probe(1);
  const [a, b] = scoreCoefs(p, tL);
  const mean: number[] = [], std: number[] = [];
  for (let d = 0; d < D; d++) {
    const c1 = v1[d] - v0[d], c0 = v0[d]; // v = c0 + c1 x
    const k1 = 1 - tL * (c1 - tL * (a * c1 - b)), k0 = -tL * (c0 - tL * a * c0); // x0 = k0 + k1 x
    const al = p.alpha(tL), sg = p.sigma(tL);
    mean.push(k0 + k1 * al * g.mu[d]);
    std.push(Math.abs(k1) * Math.sqrt(al * al * g.s[d] ** 2 + sg * sg));
  }
  return { mean, std };
}

describe('Euler–Maruyama SDE sampler', () => {
  it('samples N(μ, s²) up to its noiseless last step, linear and cosine paths', () => {
    const B = 4000;
    for (const p of [linear, cosine]) {
      const out = sampleSde(flowVelocity(p, g), noise(B, 6), labels(B), { steps: 100, rng: new Rng(7), interpolant: p });
      const target = sdeTarget(p, 0.04);
      expectMoments(`SDE ${p.name}`, out.data, B, target.mean, target.std, 5, 0.02);
      // the last step shrinks low-variance dims noticeably: the target is not N(μ, s²) itself
      expect(target.std[2]).toBeLessThan(0.95 * g.s[2]);
    }
  });

  it('makes exactly N calls on linspace(1, 0.04, N), and the last step (0.04 → 0) adds no noise', () => {
    const N = 9, B = 5;
    const r = recording(flowVelocity(linear, g));
    const steps: number[] = [];
    const out = sampleSde(r.model, noise(B, 8), labels(B), { steps: N, rng: new Rng(9), onStep: (s) => steps.push(s) });
    expect(r.calls.length).toBe(N);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectClose('times', r.calls.map((c) => c.t[0]), Array.from({ length: N }, (_, i) => 1 + ((0.04 - 1) * i) / (N - 1)), 1e-15, 0);
    // x_out = x_last − 0.04·(v − ½·w·s) with w = 0.08, recomputed from the recorded last input
    const last = r.calls[N - 1];
    const v = flowVelocity(linear, g)(tensor(last.x, [B, D], 'float64'), full([B], 0.04, 'float64'), labels(B)).data;
    const ref = Array.from(last.x, (x, j) => { const s = -((1 - 0.04) * v[j] + x) / 0.04; return x - 0.04 * (v[j] - 0.04 * s); });
    expectClose('noiseless last step', out.data, ref, 1e-12, 1e-12);
    expect(Array.from(sdeGrid(1))).toEqual([1, 0]);
  });

  it('is reproducible from the Rng and changes with its seed', () => {
    const run = (seed: number) => sampleSde(flowVelocity(linear, g), noise(4, 10), labels(4), { steps: 5, rng: new Rng(seed) }).toArray();
    expect(run(11)).toEqual(run(11));
    expect(maxAbsDiff(run(11), run(12))).toBeGreaterThan(1e-3);
  });
});

describe('DDPM ancestral and DDIM samplers (ε-prediction, linear β schedule)', () => {
  const base = DdpmSchedule.linear(1000);
  const s50 = base.respace(spacedTimesteps(1000, 50));

  it('with the exact ε and the exact learned variance, DDPM samples N(μ, s²); fixed variances miss it', () => {
    const B = 6000, z = noise(B, 13);
    const learned = sampleDdpm(ddpmEps(base, g, s50), z, labels(B), { schedule: s50, rng: new Rng(14), variance: 'learned' });
    expectMoments('DDPM learned', learned.data, B, g.mu, g.s, 5, 0.005);
    const small = sampleDdpm(ddpmEps(base, g), z, labels(B), { schedule: s50, rng: new Rng(14), variance: 'fixedSmall' });
    const large = sampleDdpm(ddpmEps(base, g), z, labels(B), { schedule: s50, rng: new Rng(14), variance: 'fixedLarge' });
    const [ml, ms, mL] = [learned, small, large].map((o) => moments(o.data, B, D));
    for (const d of [0, 2]) { // low-variance dims: β̃ under-disperses, β over-disperses
      expect(ms.std[d]).toBeLessThan(0.95 * g.s[d]);
      expect(mL.std[d]).toBeGreaterThan(1.03 * g.s[d]);
      expect(Math.abs(ml.std[d] - g.s[d])).toBeLessThan(Math.abs(ms.std[d] - g.s[d]) / 3);
    }
  });

  it('one call per step, at the original timesteps from 999 down to 0', () => {
    const r = recording(ddpmEps(base, g));
    const steps: number[] = [];
    sampleDdpm(r.model, noise(3, 15), labels(3), { schedule: s50, rng: new Rng(16), onStep: (s, n) => { expect(n).toBe(50); steps.push(s); } });
    expect(r.calls.length).toBe(50);
    expect(steps.length).toBe(50);
    expect(r.calls.map((c) => c.t[0])).toEqual([...spacedTimesteps(1000, 50)].reverse());
    const r2 = recording(ddpmEps(base, g));
    sampleDdim(r2.model, noise(3, 15), labels(3), { schedule: s50, rng: new Rng(16) });
    expect(r2.calls.length).toBe(50);
  });

  it('DDIM η = 0 converges (first order) to the probability-flow map of the Gaussian', () => {
    const B = 32, z = noise(B, 17);
    const abT = base.alphasCumprod[999], ab0 = base.alphasCumprod[0];
    const exact = Array.from(z.data, (zi, i) => {
      const d = i % D, s2 = g.s[d] ** 2;
      const u = (zi - Math.sqrt(abT) * g.mu[d]) / Math.sqrt(abT * s2 + 1 - abT); // x_T's standardised value
      return g.mu[d] + (Math.sqrt(ab0) * s2 * u) / Math.sqrt(ab0 * s2 + 1 - ab0); // E[x | x_0-step]
    });
    const err = (n: number) => maxAbsDiff(sampleDdim(ddpmEps(base, g), z, labels(B), { schedule: base.respace(spacedTimesteps(1000, n)), rng: new Rng(1) }).data, exact);
    const e20 = err(20), e40 = err(40), e1000 = err(1000);
    expect(e20 / e40, `DDIM errors ${e20} ${e40}`).toBeGreaterThan(1.8);
    expect(e20 / e40).toBeLessThan(2.2);
    expect(e1000).toBeLessThan(0.012);
  });

  it('DDIM η = 1 is DDPM with β̃ (same Rng, same numbers)', () => {
    const s20 = base.respace(spacedTimesteps(1000, 20));
    const a = sampleDdim(ddpmEps(base, g), noise(6, 18), labels(6), { schedule: s20, rng: new Rng(19), eta: 1 });
    const b = sampleDdpm(ddpmEps(base, g), noise(6, 18), labels(6), { schedule: s20, rng: new Rng(19), variance: 'fixedSmall' });
    expectClose('DDIM(1) vs DDPM(β̃)', a.data, b.data, 1e-12, 1e-12);
  });

  it('DDIM η = 0 ignores the Rng; DDPM depends on it', () => {
    const s10 = base.respace(spacedTimesteps(1000, 10));
    const ddim = (seed: number) => sampleDdim(ddpmEps(base, g), noise(4, 20), labels(4), { schedule: s10, rng: new Rng(seed) }).toArray();
    const ddpm = (seed: number) => sampleDdpm(ddpmEps(base, g), noise(4, 20), labels(4), { schedule: s10, rng: new Rng(seed) }).toArray();
    expect(ddim(1)).toEqual(ddim(2));
    expect(maxAbsDiff(ddpm(1), ddpm(2))).toBeGreaterThan(1e-3);
    expect(ddpm(3)).toEqual(ddpm(3));
  });

  it('clipDenoised keeps x̂_0 in [−1, 1]: data at μ = 5 comes out at most 1', () => {
    const far: Gaussian = { mu: [5, 5, 5, 5], s: [0.1, 0.1, 0.1, 0.1] };
    const s10 = base.respace(spacedTimesteps(1000, 10));
    const out = sampleDdim(ddpmEps(base, far), noise(4, 21), labels(4), { schedule: s10, rng: new Rng(1), clipDenoised: true });
    expect(Math.max(...out.data)).toBeLessThanOrEqual(1 + 1e-12);
    const free = sampleDdim(ddpmEps(base, far), noise(4, 21), labels(4), { schedule: s10, rng: new Rng(1) });
    expect(Math.min(...free.data)).toBeGreaterThan(4);
  });
});
