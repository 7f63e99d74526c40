import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { flipInterval, flipModel, flipShift, flipTime, flipTimes, flipVelocity } from '../../src/diffusion/convention.ts';
import { interpolate, linear, velocityTarget } from '../../src/diffusion/interpolant.ts';
import { shiftTime } from '../../src/diffusion/timeSampling.ts';
import { sampleOde } from '../../src/diffusion/odeSampler.ts';
import { add, mul } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { full, tensor, type Tensor } from '../../src/tensor/tensor.ts';
import type { ModelFn } from '../../src/diffusion/types.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { flowVelocity } from './gaussianModels.ts';

const unit = fc.double({ min: 0, max: 1, noNaN: true });

/** The flipped convention's interpolant (LayerSync ICPlan, DDT): t'·x + (1 − t')·ε, target x − ε. */
const flippedXt = (x: Tensor, eps: Tensor, tp: number) => add(mul(x, tp), mul(eps, 1 - tp));

describe('t′ = 1 − t converters', () => {
  it('flipTime and flipTimes are involutions', () => {
    fc.assert(fc.property(unit, (t) => { expect(flipTime(flipTime(t))).toBeCloseTo(t, 15); }), { numRuns: 100, seed: 1 });
    const ts = new Rng(1).uniformArray(7);
    expectClose('flipTimes twice', flipTimes(flipTimes(ts)), ts, 1e-15, 0);
  });

  it("the flipped interpolant at t′ is ours at 1 − t′, and its velocity x − ε is ours negated", () => {
    const rng = new Rng(2);
    const x = rng.normal([2, 5], 0, 1, 'float64'), eps = rng.normal([2, 5], 0, 1, 'float64');
    fc.assert(fc.property(unit, (tp) => {
      expectClose('x_t′', flippedXt(x, eps, tp).data, interpolate(linear, x, eps, flipTime(tp)).data, 1e-15, 0);
    }), { numRuns: 30, seed: 2 });
    const theirs = add(x, mul(eps, -1));
    expectClose('x − ε = −(ε − x)', flipVelocity(velocityTarget(linear, x, eps, 0.3)).data, theirs.data, 1e-15, 0);
  });

  it('flipModel turns a flipped-convention exact field into ours, and flipping twice is the identity', () => {
    const g = { mu: [1.5, -0.5], s: [0.5, 1.2] };
    const ours = flowVelocity(linear, g);
    // the same Gaussian's exact field written natively in the flipped convention
    const theirs: ModelFn = (x, t, y) => mul(ours(x, tensor(flipTimes(t.data), t.shape, t.dtype), y), -1);
    const x = new Rng(3).normal([4, 2], 0, 1, 'float64'), y = full([4], 0, 'float64');
    for (const t of [0.1, 0.5, 0.93]) {
      const tt = full([4], t, 'float64');
      expectClose(`flipModel(theirs) at ${t}`, flipModel(theirs)(x, tt, y).data, ours(x, tt, y).data, 1e-14, 1e-14);
      expectClose(`flipModel∘flipModel at ${t}`, flipModel(flipModel(ours))(x, tt, y).data, ours(x, tt, y).data, 1e-14, 1e-14);
    }
  });

  it("our Euler sampler on flipModel(m) equals DDT's Euler in t′ from 0 to 1 on m", () => {
    const g = { mu: [2, -1, 0.5], s: [0.7, 1.1, 0.4] };
    const ours = flowVelocity(linear, g);
    const theirs: ModelFn = (x, t, y) => mul(ours(x, tensor(flipTimes(t.data), t.shape, t.dtype), y), -1);
    const z = new Rng(4).normal([5, 3], 0, 1, 'float64'), y = full([5], 0, 'float64');
    const N = 12;
    // DDT-style reference loop in its own convention: t′ = linspace(0, 1, N + 1)
    const ref = Float64Array.from(z.data);
    for (let i = 0; i < N; i++) {
      const tp = i / N, dt = 1 / N;
      const v = theirs(tensor(ref, z.shape, 'float64'), full([5], tp, 'float64'), y);
      for (let j = 0; j < ref.length; j++) ref[j] += dt * v.data[j];
    }
    const got = sampleOde(flipModel(theirs), z, y, { steps: N });
    expectClose('Euler across conventions', got.data, ref, 1e-12, 1e-12);
  });

  it('a shift s in the flipped convention is 1/s in ours; intervals flip end for end', () => {
    fc.assert(fc.property(unit, fc.double({ min: 0.1, max: 10, noNaN: true }), (t, s) => {
      // their shifted time at t′ = 1 − t, seen in our convention
      expect(1 - shiftTime(flipTime(t), s)).toBeCloseTo(shiftTime(t, flipShift(s)), 12);
    }), { numRuns: 100, seed: 5 });
    expect(flipShift(0.4)).toBeCloseTo(2.5, 15);
    const [lo, hi] = flipInterval(0.3, 1.0);
    expect(lo).toBe(0);
    expect(hi).toBeCloseTo(0.7, 15);
  });
});
