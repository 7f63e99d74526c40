// The LPIPS-like perceptual distance (models/perceptualLoss.ts) on a small frozen VGG-style net:
// gradcheck of the distance on feature maps (float64, zero feature vectors included), the image
// gradient through the net against a finite difference along random directions (float32), zero
// for identical images, symmetry, growth with the size of a perturbation, and that the frozen net's
// weights never receive a gradient.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { add, backward, gradcheck, mul, noGrad, Tape, withTape } from '../../src/autograd/index.ts';
import { type Tensor } from '../../src/tensor/tensor.ts';
import { createPerceptualNet, perceptualNetPreset, type PerceptualNet } from '../../src/models/perceptualNet.ts';
import { lpipsFromFeatures, perceptualDistance, perceptualLoss } from '../../src/models/perceptualLoss.ts';

function frozenNet(): PerceptualNet {
  const net = createPerceptualNet(perceptualNetPreset('VGG-P', { inChannels: 3 }), 11).eval();
  for (const p of net.parameters()) p.requireGrad(false);
  return net;
}

describe('lpipsFromFeatures', () => {
  it('passes gradcheck in both feature lists, with and without stage weights', () => {
    const rng = new Rng(1);
    const mk = (shape: number[]): Tensor => rng.normal(shape, 0.2, 1, 'float64');
    const a = [mk([2, 3, 4, 4]), mk([2, 5, 2, 2])], b = [mk([2, 3, 4, 4]), mk([2, 5, 2, 2])];
    // Signed features, so no feature vector is all zero: x / (‖x‖ + eps) has a kink at 0 that finite
    // differences cannot see through (the op's gradient there: test/autograd/ganOps.test.ts).
    const r = gradcheck((a0, a1, b0, b1) => lpipsFromFeatures([a0, a1], [b0, b1]), [...a, ...b]);
    expect(r.ok, r.message).toBe(true);
    const w = gradcheck((a0, a1, b0, b1) => lpipsFromFeatures([a0, a1], [b0, b1], [0.5, 2]), [...a, ...b]);
    expect(w.ok, w.message).toBe(true);
  });
});

describe('perceptualDistance through the net', () => {
  const net = frozenNet();
  const rng = new Rng(2);
  const x = rng.uniform([3, 3, 32, 32], -1, 1);
  const noise = rng.normal([3, 3, 32, 32]);
  const perturbed = (s: number): Tensor => noGrad(() => add(x, mul(noise, s)));

  it('is 0 for identical images, symmetric, and grows with the perturbation', () => {
    expect(Array.from(noGrad(() => perceptualDistance(net, x, x)).data)).toEqual([0, 0, 0]);
    const y = perturbed(0.3);
    expect(Array.from(noGrad(() => perceptualDistance(net, x, y)).data)).toEqual(Array.from(noGrad(() => perceptualDistance(net, y, x)).data));
    const d = [0.05, 0.2, 0.5, 1].map((s) => noGrad(() => perceptualDistance(net, x, perturbed(s))).data);
    for (let i = 0; i < 3; i++) {
      expect(d[0][i]).toBeGreaterThan(0);
      for (let k = 1; k < d.length; k++) expect(d[k][i], `image ${i}, level ${k}`).toBeGreaterThan(d[k - 1][i]);
    }
  });

  it('its image gradient matches finite differences along random directions; the net gets no gradient', () => {
    const y = perturbed(0.3).requireGrad();
    const tape = new Tape();
    const loss = withTape(tape, () => perceptualLoss(net, x, y));
    backward(loss, { tape });
    for (const p of net.parameters()) expect(p.grad).toBeNull();
    const g = y.grad!;
    const L = (v: Tensor, h: number): number => noGrad(() => perceptualLoss(net, x, add(y, mul(v, h)))).item();
    for (let k = 0; k < 3; k++) {
      const v = new Rng(100 + k).normal(y.shape);
      let analytic = 0;
      for (let i = 0; i < v.size; i++) analytic += g.data[i] * v.data[i];
      // float32 net: a small step (ReLU kinks make larger ones biased, 1e-2 is off by ~20%)
      const h = 3e-4;
      const numeric = (L(v, h) - L(v, -h)) / (2 * h);
      expect(Math.abs(numeric - analytic), `direction ${k}: ${numeric} vs ${analytic}`).toBeLessThan(0.05 * Math.abs(analytic) + 1e-5);
    }
  });

  it('refuses a net in train mode and mismatched images', () => {
    const n = frozenNet().train();
    expect(() => perceptualDistance(n, x, x)).toThrow(/eval mode/);
    expect(() => perceptualDistance(net, x, rng.uniform([2, 3, 32, 32]))).toThrow(/differ/);
  });
});
