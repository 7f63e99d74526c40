// Property tests of REG's loss weighting (REG (github.com/Martinser/REG) "Training step" 5):
// L = L_diff + λ·L_proj + β·L_cls. Over random terms and weights the total is that sum and its
// gradient with respect to the three terms is (1, λ, β); on a tiny REG model the class-token
// head (linear_cls, which only the class-token velocity reaches) gets exactly β times the
// gradient of L_cls alone, so it scales linearly with β, while the image head's gradient does
// not depend on λ or β at all. The actor run's logged loss against its logged terms is checked
// in test/protocols/invariants.test.ts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { createRegSiT } from '../../src/models/reg.ts';
import { Projector } from '../../src/models/projector.ts';
import { flowTrainingPair, linear, velocityLoss } from '../../src/diffusion/index.ts';
import { regAlignTarget, regClsLoss, regClsPair, regTotalLoss, repaProjLoss } from '../../src/methods/index.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { perturb, tinySiTConfig, zeroAllGrads } from './tiny.ts';

const f32 = Math.fround;
const term = fc.double({ min: -10, max: 10, noNaN: true });
const weight = fc.double({ min: 0, max: 2, noNaN: true });

describe('REG total loss (fast-check)', () => {
  it('equals L_diff + λ·L_proj + β·L_cls, and its gradient w.r.t. the terms is (1, λ, β)', () => {
    fc.assert(fc.property(term, fc.double({ min: -1, max: 1, noNaN: true }), term, weight, weight, (d, p, c, lambda, beta) => {
      const [diff, proj, cls] = [d, p, c].map((v) => tensor([v], []).requireGrad());
      const total = regTotalLoss(diff, proj, cls, lambda, beta);
      const want = f32(d) + lambda * f32(p) + beta * f32(c); // float64 of the float32 inputs
      expect(Math.abs(total.item() - want)).toBeLessThanOrEqual(4e-7 * (Math.abs(f32(d)) + lambda * Math.abs(f32(p)) + beta * Math.abs(f32(c))) + 1e-30);
      backward(total);
      expect(diff.grad!.item()).toBe(1);
      expect(proj.grad!.item()).toBe(f32(lambda));
      expect(cls.grad!.item()).toBe(f32(beta));
    }), { seed: 61, numRuns: 200 });
  });
});

describe('REG class-token gradient on a tiny model (fast-check)', () => {
  // One batch of a 3-block REG SiT (4×4 tokens, class token width 6), random but fixed.
  const model = createRegSiT(tinySiTConfig(), 6, 7);
  perturb(model, 8);
  const proj = new Projector(16, 12, 6, new Rng(9));
  const rng = new Rng(10);
  const x = rng.normal([2, 1, 8, 8]), eps = rng.normal([2, 1, 8, 8]), g = rng.normal([2, 6]), eg = rng.normal([2, 6]), P = rng.normal([2, 16, 6]);
  const t = rng.uniformArray(2);
  const img = flowTrainingPair(linear, x, eps, t), clsPair = regClsPair(linear, g, eg, t);
  const params = new Map(model.namedParameters());
  const clsHead = ['final_layer.linear_cls.weight', 'final_layer.linear_cls.bias'];
  const imageHead = ['final_layer.linear.weight', 'final_layer.linear.bias'];

  /** Gradients (copied) of the named parameters after a backward of loss(diff, proj, cls). */
  function grads(loss: (diff: Tensor, proj: Tensor, cls: Tensor) => Tensor, names: string[]): Float64Array[] {
    zeroAllGrads(model, proj);
    const o = model.forward(img.xt, t, [1, 2], { cls: clsPair.xt, taps: [1], forceDrop: [0, 0] });
    backward(loss(
      velocityLoss(o.out, img.target).loss,
      repaProjLoss([{ pred: proj.forward(o.hidden.get(1)!), target: regAlignTarget(g, P) }]),
      regClsLoss(o.cls, clsPair.target),
    ));
    return names.map((n) => Float64Array.from(params.get(n)!.grad?.data ?? new Float32Array(params.get(n)!.size)));
  }

  const clsAlone = grads((_d, _p, c) => c, clsHead);
  const diffAlone = grads((d) => d, imageHead);

  it('the class-token gradient is non-zero (the test can fail)', () => {
    for (const gr of clsAlone) expect(gr.some((v) => v !== 0)).toBe(true);
  });

  it('linear_cls gets β·∂L_cls/∂θ from the total loss (linear in β, zero at β = 0); the image head does not see λ or β', () => {
    fc.assert(fc.property(weight, fc.oneof(fc.constant(0), weight), (lambda, beta) => {
      const total = (d: Tensor, p: Tensor, c: Tensor) => regTotalLoss(d, p, c, lambda, beta);
      const gotCls = grads(total, clsHead);
      clsHead.forEach((n, i) => expectClose(`${n} at β=${beta}`, gotCls[i], clsAlone[i].map((v) => beta * v), 1e-7, 1e-5));
      const gotImg = grads(total, imageHead);
      imageHead.forEach((n, i) => expectClose(`${n} at λ=${lambda}, β=${beta}`, gotImg[i], diffAlone[i], 1e-7, 1e-5));
    }), { seed: 62, numRuns: 12 });
  });
});
