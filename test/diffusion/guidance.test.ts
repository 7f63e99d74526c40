// Classifier-free guidance: the combine formula, the inclusive interval, the [x; x] / [y; null]
// batch, which time decides (REPA: t_i for both Heun evaluations), the SDE's drift guidance,
// DiT's ε-only guidance for learned variances, and label dropout.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cfgCombine, dropLabels, evalModel, guidanceActive, type Guidance } from '../../src/diffusion/guidance.ts';
import { odeGrid, sampleOde } from '../../src/diffusion/odeSampler.ts';
import { sampleSde, sdeGrid } from '../../src/diffusion/sdeSampler.ts';
import { sampleDdpm } from '../../src/diffusion/ddpmSampler.ts';
import { DdpmSchedule, spacedTimesteps } from '../../src/diffusion/ddpmSchedule.ts';
import { linear, scoreCoefs } from '../../src/diffusion/interpolant.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { full, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import type { ModelFn } from '../../src/diffusion/types.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { flowVelocity, recording } from './gaussianModels.ts';

const NULL = 10;
/** A class-conditional velocity field: class c has data N(c − 1, 0.5²); the null class N(0, 1). */
const classModel: ModelFn = (x, t, y) => {
  const B = x.shape[0], D = x.size / B;
  const out = new Float64Array(x.size);
  for (let b = 0; b < B; b++) {
    const c = y.data[b];
    const g = c === NULL ? { mu: [0], s: [1] } : { mu: [c - 1], s: [0.5] };
    const row = tensor(x.data.subarray(b * D, (b + 1) * D), [D, 1], x.dtype);
    const v = flowVelocity(linear, g)(row, full([D], t.data[b], x.dtype), full([D], c, x.dtype));
    out.set(v.data, b * D);
  }
  return tensor(out, x.shape, x.dtype);
};
const y3 = () => tensor([0, 2, 4], [3], 'float64');

describe('combine and interval', () => {
  it('v_u + w (v_c − v_u): w = 1 gives v_c, w = 0 gives v_u', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 2, maxLength: 8 }), fc.double({ min: 0, max: 8, noNaN: true }), (c, w) => {
      const u = c.map((v) => v * 0.3 - 1);
      expectClose('combine', cfgCombine(c, u, w), c.map((v, i) => u[i] + w * (v - u[i])), 1e-12, 0);
      expectClose('w=1', cfgCombine(c, u, 1), c, 1e-12, 0);
      expectClose('w=0', cfgCombine(c, u, 0), u, 0, 0);
    }), { numRuns: 50, seed: 1 });
  });

  it('the interval is inclusive at both ends; scale ≤ 1 never guides; no interval means always', () => {
    const g: Guidance = { scale: 1.8, nullClass: NULL, interval: [0, 0.7] };
    expect(guidanceActive(g, 0.7)).toBe(true);
    expect(guidanceActive(g, 0)).toBe(true);
    expect(guidanceActive(g, 0.7000000001)).toBe(false);
    expect(guidanceActive(g, 0.75)).toBe(false);
    expect(guidanceActive({ ...g, interval: [0.3, 0.5] }, 0.2999)).toBe(false);
    expect(guidanceActive({ ...g, scale: 1 }, 0.5)).toBe(false);
    expect(guidanceActive({ scale: 4, nullClass: NULL }, 1)).toBe(true);
    expect(guidanceActive(undefined, 0.5)).toBe(false);
  });
});

describe('evalModel', () => {
  const x = new Rng(2).normalArray(6), shape = [3, 2];
  const g: Guidance = { scale: 3, nullClass: NULL };

  it('guided: one call on [x; x] with labels [y; null] and equal times, then the CFG combination', () => {
    const r = recording(classModel);
    const { out } = evalModel(r.model, x, shape, 0.4, y3(), 'float64', g, true);
    expect(r.calls.length).toBe(1);
    const c = r.calls[0];
    expect(c.batch).toBe(6);
    expect(c.y).toEqual([0, 2, 4, NULL, NULL, NULL]);
    expect(c.t).toEqual(new Array(6).fill(0.4));
    expectClose('x duplicated', c.x, [...x, ...x], 0, 0);
    const cond = classModel(tensor(x, shape, 'float64'), full([3], 0.4, 'float64'), y3()).data;
    const unc = classModel(tensor(x, shape, 'float64'), full([3], 0.4, 'float64'), full([3], NULL, 'float64')).data;
    expectClose('guided output', out, cfgCombine(cond, unc, 3), 1e-14, 0);
  });

  it('unguided: one conditional call on the single batch', () => {
    const r = recording(classModel);
    const { out } = evalModel(r.model, x, shape, 0.4, y3(), 'float64', g, false);
    expect(r.calls.length).toBe(1);
    expect(r.calls[0].batch).toBe(3);
    expect(r.calls[0].y).toEqual([0, 2, 4]);
    expectClose('cond', out, classModel(tensor(x, shape, 'float64'), full([3], 0.4, 'float64'), y3()).data, 0, 0);
  });

  it("channels: only the leading channels are guided, the rest comes from the conditional half (DiT's learned σ)", () => {
    // output (B, 4, 2): channel k of sample b = label·(k+1) + x-independent offset
    const m: ModelFn = (xx, _t, y) => {
      const B = xx.shape[0];
      const o = new Float64Array(B * 8);
      for (let b = 0; b < B; b++) for (let k = 0; k < 8; k++) o[b * 8 + k] = y.data[b] * (Math.floor(k / 2) + 1) + k;
      return tensor(o, [B, 4, 2], 'float64');
    };
    const { out, shape: os } = evalModel(m, new Float64Array(3 * 4 * 2), [3, 4, 2], 0.5, y3(), 'float64', { ...g, channels: 2 }, true);
    expect(os).toEqual([3, 4, 2]);
    for (let b = 0; b < 3; b++) {
      for (let k = 0; k < 8; k++) {
        const c = y3().data[b] * (Math.floor(k / 2) + 1) + k, u = NULL * (Math.floor(k / 2) + 1) + k;
        expect(out[b * 8 + k]).toBeCloseTo(k < 4 ? u + 3 * (c - u) : c, 12);
      }
    }
  });

  it('a model that returns the wrong batch is reported', () => {
    const bad: ModelFn = (xx) => tensor(new Float64Array(2), [1, 2], xx.dtype);
    expect(() => evalModel(bad, x, shape, 0.5, y3(), 'float64')).toThrow(/for a batch of 3/);
  });
});

describe('guidance inside the samplers', () => {
  it('ODE: guided (batch 2B) exactly on the steps whose t_i lies in [lo, hi], boundaries included', () => {
    const N = 10, grid = odeGrid(N);
    const g: Guidance = { scale: 2, nullClass: NULL, interval: [grid[7], grid[3]] };
    const r = recording(classModel);
    sampleOde(r.model, new Rng(3).normal([3, 2], 0, 1, 'float64'), y3(), { steps: N, guidance: g });
    expect(r.calls.map((c) => c.batch)).toEqual([3, 3, 3, 6, 6, 6, 6, 6, 3, 3]);
  });

  it('Heun: the corrector follows the decision made at t_i (REPA), even when t_{i+1} is outside', () => {
    const N = 4, grid = odeGrid(N);
    const g: Guidance = { scale: 2, nullClass: NULL, interval: [grid[2], 1] }; // t = 1, 0.75, 0.5 guided
    const r = recording(classModel);
    sampleOde(r.model, new Rng(4).normal([3, 2], 0, 1, 'float64'), y3(), { steps: N, heun: true, guidance: g });
    // calls: (1, .75) (.75, .5) (.5, .25) (.25): the corrector at t = 0.25 belongs to the guided step from 0.5
    expect(r.calls.map((c) => [c.t[0], c.batch])).toEqual([[1, 6], [0.75, 6], [0.75, 6], [0.5, 6], [0.5, 6], [0.25, 6], [0.25, 3]]);
  });

  it('scale 1 never doubles the batch', () => {
    const r = recording(classModel);
    sampleOde(r.model, new Rng(5).normal([3, 2], 0, 1, 'float64'), y3(), { steps: 5, guidance: { scale: 1, nullClass: NULL } });
    expect(r.calls.every((c) => c.batch === 3)).toBe(true);
  });

  it("SDE: guiding the velocity equals REPA's guiding of the drift (scalar reference with the same noise)", () => {
    const N = 8, B = 3, Dm = 2, w = 2.5, lo = 0, hi = 0.7;
    const z = new Rng(6).normal([B, Dm], 0, 1, 'float64');
    const got = sampleSde(classModel, z, y3(), { steps: N, rng: new Rng(7), guidance: { scale: w, nullClass: NULL, interval: [lo, hi] } });
    // reference: drift d = v − ½·(2t)·s per half, combined as d_u + w (d_c − d_u), REPA's order of draws
    const grid = sdeGrid(N), rng = new Rng(7), x = Float64Array.from(z.data);
    const field = (xx: Float64Array, t: number, y: Tensor) => classModel(tensor(xx, [B, Dm], 'float64'), full([B], t, 'float64'), y).data;
    for (let i = 0; i < N; i++) {
      const t = grid[i], dt = grid[i + 1] - t, last = i === N - 1;
      const xi = last ? null : rng.normalArray(x.length);
      const [a, b] = scoreCoefs(linear, t);
      const drift = (v: ArrayLike<number>) => Array.from(x, (xv, j) => v[j] - t * (a * v[j] - b * xv));
      const dc = drift(field(x, t, y3()));
      const d = t >= lo && t <= hi ? cfgCombine(dc, drift(field(x, t, full([B], NULL, 'float64'))), w) : dc;
      for (let j = 0; j < x.length; j++) x[j] += d[j] * dt + (xi ? Math.sqrt(2 * t) * Math.sqrt(Math.abs(dt)) * xi[j] : 0);
    }
    expectClose('guided SDE', got.data, x, 1e-12, 1e-12);
  });

  it('DDPM with a learned-variance model guides ε only; the variance half comes from the conditional run', () => {
    const base = DdpmSchedule.linear(1000), s5 = base.respace(spacedTimesteps(1000, 5));
    // ε̂ = 0.1·label per element, v = label/20 − 0.5: any leak of the null label into v changes the sample
    const m: ModelFn = (xx, _t, y) => {
      const B = xx.shape[0], P = xx.size / B;
      const o = new Float64Array(2 * xx.size);
      for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) { o[b * 2 * P + k] = 0.1 * y.data[b]; o[b * 2 * P + P + k] = y.data[b] / 20 - 0.5; }
      return tensor(o, [B, 2 * xx.shape[1], ...xx.shape.slice(2)], 'float64');
    };
    const z = new Rng(8).normal([3, 1, 2], 0, 1, 'float64');
    const got = sampleDdpm(m, z, y3(), { schedule: s5, rng: new Rng(9), variance: 'learned', guidance: { scale: 3, nullClass: NULL } });
    // the same run with a model that already returns the guided ε and the conditional v
    const pre: ModelFn = (xx, t, y) => {
      const o = m(xx, t, y), B = xx.shape[0], P = xx.size / B;
      for (let b = 0; b < B; b++) for (let k = 0; k < P; k++) o.data[b * 2 * P + k] = 0.1 * NULL + 3 * (0.1 * y.data[b] - 0.1 * NULL);
      return o;
    };
    const ref = sampleDdpm(pre, z, y3(), { schedule: s5, rng: new Rng(9), variance: 'learned' });
    expectClose('ε-only guidance', got.data, ref.data, 1e-12, 1e-12);
  });
});

describe('label dropout', () => {
  it('p = 0 keeps every label, p = 1 drops all, p = 0.1 drops about 10 %, reproducibly', () => {
    const y = tensor(Array.from({ length: 20000 }, (_, i) => i % 7), [20000]);
    expect(dropLabels(y, 0, NULL, new Rng(1)).toArray()).toEqual(y.toArray());
    expect(dropLabels(y, 1, NULL, new Rng(1)).toArray().every((v) => v === NULL)).toBe(true);
    const d = dropLabels(y, 0.1, NULL, new Rng(2));
    const dropped = d.toArray().filter((v) => v === NULL).length / 20000;
    expect(Math.abs(dropped - 0.1)).toBeLessThan(0.006); // 3σ = 0.0064
    expect(d.toArray().every((v, i) => v === NULL || v === y.data[i])).toBe(true);
    expect(dropLabels(y, 0.1, NULL, new Rng(2)).toArray()).toEqual(d.toArray());
    expect(dropLabels(y, 0.1, NULL, new Rng(3)).toArray()).not.toEqual(d.toArray());
    expect(dropLabels([1, 2, 3], 0.5, NULL, new Rng(4)).shape).toEqual([3]);
    expect(() => dropLabels(y, 1.5, NULL, new Rng(1))).toThrow(/p must be in \[0, 1\]/);
  });
});
