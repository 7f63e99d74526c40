import { describe, expect, it } from 'vitest';
import { flowTrainingPair, meanFlatMse, velocityLoss } from '../../src/diffusion/flowLoss.ts';
import { linear, cosine, interpolate, velocityTarget } from '../../src/diffusion/interpolant.ts';
import { backward, gradcheck } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { zeros } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';

describe('SiT velocity loss: mean over (c, h, w), then over the batch', () => {
  it('matches a scalar reference, per sample and in the mean', () => {
    const rng = new Rng(1);
    const pred = rng.normal([3, 2, 2, 2], 0, 1, 'float64'), target = rng.normal([3, 2, 2, 2], 0, 1, 'float64');
    const { perSample, loss } = velocityLoss(pred, target);
    const ref = [0, 1, 2].map((b) => {
      let s = 0;
      for (let i = b * 8; i < (b + 1) * 8; i++) s += (pred.data[i] - target.data[i]) ** 2;
      return s / 8;
    });
    expect(perSample.shape).toEqual([3]);
    expectClose('per sample', perSample.data, ref, 1e-15, 1e-14);
    expect(loss.item()).toBeCloseTo((ref[0] + ref[1] + ref[2]) / 3, 14);
  });

  it('equals the plain mean when every sample has the same size, and is a mean of means', () => {
    const rng = new Rng(2);
    const p = rng.normal([4, 6], 0, 1, 'float64'), q = rng.normal([4, 6], 0, 1, 'float64');
    let s = 0;
    for (let i = 0; i < 24; i++) s += (p.data[i] - q.data[i]) ** 2;
    expect(meanFlatMse(p, q).loss.item()).toBeCloseTo(s / 24, 14);
  });

  it('gradients check against finite differences (loss and per-sample)', () => {
    const rng = new Rng(3);
    const p = rng.normal([2, 3, 2], 0, 1, 'float64'), q = rng.normal([2, 3, 2], 0, 1, 'float64');
    expect(gradcheck((a, b) => meanFlatMse(a, b).loss, [p, q]).ok).toBe(true);
    expect(gradcheck((a, b) => meanFlatMse(a, b).perSample, [p, q]).ok).toBe(true);
  });

  it('a zero-output model (SiT at init) has loss mean((ε − x)²) on the linear path', () => {
    const rng = new Rng(4);
    const x = rng.normal([5, 4], 0, 1, 'float64'), eps = rng.normal([5, 4], 0, 1, 'float64');
    const t = rng.uniformArray(5);
    const { xt, target } = flowTrainingPair(linear, x, eps, t);
    expectClose('x_t', xt.data, interpolate(linear, x, eps, t).data, 0, 0);
    let s = 0;
    for (let i = 0; i < 20; i++) s += (eps.data[i] - x.data[i]) ** 2;
    expect(velocityLoss(zeros([5, 4], 'float64'), target).loss.item()).toBeCloseTo(s / 20, 14);
  });

  it('the gradient reaches x through x_t and the target (REPA-E backpropagates into latents)', () => {
    const rng = new Rng(5);
    const x = rng.normal([2, 3], 0, 1, 'float64').requireGrad(), eps = rng.normal([2, 3], 0, 1, 'float64');
    const t = [0.3, 0.8];
    const { xt, target } = flowTrainingPair(cosine, x, eps, t);
    // a "model" that returns x_t: loss = mean_b mean_d (x_t − v*)², d/dx = 2 (x_t − v*)(α − α') / (B·D)
    backward(velocityLoss(xt, target).loss);
    const ref = x.toArray().map((_, i) => {
      const tb = t[Math.floor(i / 3)];
      const r = interpolate(cosine, x, eps, t).data[i] - velocityTarget(cosine, x, eps, t).data[i];
      return (2 * r * (cosine.alpha(tb) - cosine.dAlpha(tb))) / 6;
    });
    expectClose('dL/dx', x.grad!.data, ref, 1e-14, 1e-12);
  });

  it('shape mismatches throw with both shapes in the message', () => {
    expect(() => meanFlatMse(zeros([2, 3]), zeros([3, 2]))).toThrow(/\[2, 3\].*\[3, 2\]/);
  });
});
