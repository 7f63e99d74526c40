// REG's SDE sampler with the class-token stream (REG (github.com/Martinser/REG) "Inference"): with a model whose
// two velocities are the exact ones of two independent Gaussians, each stream is exactly the
// §0.4 Euler–Maruyama sampler (diffusion/sdeSampler.ts, itself checked against closed forms) run
// on its own noise — same grid, noiseless last step, independent Brownian noise; one model call
// per step on both streams; guidance inside the interval on [x; x], [g; g] with [y; null], the
// image guided with cfg and the class token with its own scale (≤ 0: conditional only).
import { describe, expect, it } from 'vitest';
import { sampleSde } from '../../src/diffusion/sdeSampler.ts';
import { linear } from '../../src/diffusion/interpolant.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { full, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sampleSdeReg, type RegModelFn } from '../../src/methods/reg/sampler.ts';
import { flowVelocity, maxAbsDiff, type Gaussian } from '../diffusion/gaussianModels.ts';
import { expectClose } from '../kernels/expectClose.ts';

const gx: Gaussian = { mu: [2, -1, 0.5], s: [0.5, 1.5, 0.2] };
const gg: Gaussian = { mu: [0, 3], s: [1, 0.3] };
const decoupled: RegModelFn = (x, t, y, g) => ({ v: flowVelocity(linear, gx)(x, t, y), vg: flowVelocity(linear, gg)(g, t, y) });

describe('REG SDE sampler', () => {
  it('each stream is the standard SDE sampler on its own noise (decoupled exact model)', () => {
    const B = 6, N = 12;
    const xN = new Rng(1).normal([B, 3], 0, 1, 'float64'), gN = new Rng(2).normal([B, 2], 0, 1, 'float64'), y = full([B], 0, 'float64');
    const r = sampleSdeReg(decoupled, xN, gN, y, { steps: N, rng: new Rng(7), clsRng: new Rng(8) });
    const x = sampleSde(flowVelocity(linear, gx), xN, y, { steps: N, rng: new Rng(7) });
    const g = sampleSde(flowVelocity(linear, gg), gN, y, { steps: N, rng: new Rng(8) });
    expect(r.x.toArray()).toEqual(x.toArray());
    expect(r.g.toArray()).toEqual(g.toArray());
    // the class noise is its own: another clsRng moves g, never x
    const r2 = sampleSdeReg(decoupled, xN, gN, y, { steps: N, rng: new Rng(7), clsRng: new Rng(9) });
    expect(r2.x.toArray()).toEqual(r.x.toArray());
    expect(maxAbsDiff(r2.g.data, r.g.data)).toBeGreaterThan(1e-3);
  });

  it('one call per step on linspace(1, 0.04, N) with both streams; guided calls inside the interval only', () => {
    const B = 2, N = 6;
    const calls: { batch: number; t: number; y: number[]; g: number[]; halvesEqual: boolean }[] = [];
    const model: RegModelFn = (x, t, y, g) => {
      const half = g.size / 2;
      calls.push({ batch: x.shape[0], t: t.data[0], y: Array.from(y.data), g: Array.from(g.data), halvesEqual: x.shape[0] === 2 * B && Array.from(g.data.subarray(0, half)).every((v, i) => v === g.data[half + i]) });
      return decoupled(x, t, y, g);
    };
    sampleSdeReg(model, new Rng(1).normal([B, 3], 0, 1, 'float64'), new Rng(2).normal([B, 2], 0, 1, 'float64'), tensor([4, 5], [B], 'float64'), {
      steps: N, rng: new Rng(3), clsRng: new Rng(4), guidance: { scale: 2, nullClass: 10, interval: [0, 0.7] },
    });
    expectClose('times', calls.map((c) => c.t), Array.from({ length: N }, (_, i) => 1 + ((0.04 - 1) * i) / (N - 1)), 1e-15, 0);
    for (const c of calls) {
      const guided = c.t <= 0.7;
      expect(c.batch).toBe(guided ? 2 * B : B);
      expect(c.y).toEqual(guided ? [4, 5, 10, 10] : [4, 5]);
      expect(c.halvesEqual).toBe(guided); // the unconditional half sees the same noisy class token
    }
  });

  it('guides the image with cfg and the class token with its own scale (≤ 0: conditional only)', () => {
    // v = label, v_g = 2·label (constant in x, g); one step from t = 1 ends at x = −v, g = −v_g
    const byLabel: RegModelFn = (x, t, y, g) => {
      const per = (T: Tensor, k: number) => tensor(Array.from(T.data, (_, i) => k * y.data[Math.floor(i / (T.size / y.size))]), T.shape, T.dtype);
      return { v: per(x, 1), vg: per(g, 2) };
    };
    const run = (clsScale?: number) => sampleSdeReg(byLabel, full([1, 2], 0.3, 'float64'), full([1, 3], -0.2, 'float64'), tensor([4], [1], 'float64'), {
      steps: 1, rng: new Rng(1), clsRng: new Rng(2), guidance: { scale: 3, nullClass: 10 }, clsScale,
    });
    const vGuided = 10 + 3 * (4 - 10);
    const a = run();
    expect(a.x.toArray()).toEqual([-vGuided, -vGuided]);
    expect(a.g.toArray()).toEqual([-2 * vGuided, -2 * vGuided, -2 * vGuided]);
    expect(run(1.5).g.toArray()[0]).toBeCloseTo(-(20 + 1.5 * (8 - 20)), 12);
    expect(run(0).g.toArray()[0]).toBe(-8);
    expect(run(0).x.toArray()[0]).toBe(-vGuided);
  });
});
