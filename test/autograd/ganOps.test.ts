// The two ops added for REPA-E's GAN and perceptual terms: leakyRelu (the PatchGAN's activation)
// and unitNormalize (LPIPS' normalize_tensor over channels). Forwards against closed forms,
// gradchecks (float64, away from leakyRelu's kink), the all-zero feature vector of unitNormalize
// (finite gradient g / eps where the composed sqrt form gives NaN), and float32 vs float64.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { Tape, backward, gradcheck, withTape, sum, mul } from '../../src/autograd/index.ts';
import { leakyRelu } from '../../src/autograd/ops/leakyRelu.ts';
import { unitNormalize } from '../../src/autograd/ops/unitNormalize.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

describe('leakyRelu', () => {
  it('is x for x > 0 and slope·x otherwise; gradient slope at 0 (torch)', () => {
    const x = tensor([-2, -0.5, 0, 0.5, 3], [5], 'float64').requireGrad();
    const tape = new Tape();
    const y = withTape(tape, () => leakyRelu(x, 0.2));
    expect(Array.from(y.data)).toEqual([-0.4, -0.1, 0, 0.5, 3]);
    backward(withTape(tape, () => sum(y)), { tape });
    expect(Array.from(x.grad!.data)).toEqual([0.2, 0.2, 0.2, 1, 1]);
  });

  it('passes gradcheck away from 0 and agrees in float32', () => {
    const x = new Rng(3).normal([2, 3, 4, 4], 0, 1, 'float64');
    for (let i = 0; i < x.size; i++) if (Math.abs(x.data[i]) < 0.05) x.data[i] = 0.05;
    const r = gradcheck((t) => leakyRelu(t, 0.2), [x]);
    expect(r.ok, r.message).toBe(true);
    expectF32Agrees('leakyRelu', (t) => leakyRelu(t, 0.2), [x], { atol: 1e-6, rtol: 1e-6 });
  });
});

describe('unitNormalize', () => {
  it('divides each (sample, position) channel vector by its norm + eps', () => {
    const x = new Rng(1).normal([2, 3, 2, 2], 0, 1, 'float64');
    const y = unitNormalize(x, 1e-10);
    for (let b = 0; b < 2; b++) for (let p = 0; p < 4; p++) {
      let n = 0;
      for (let c = 0; c < 3; c++) n += x.data[(b * 3 + c) * 4 + p] ** 2;
      n = Math.sqrt(n);
      for (let c = 0; c < 3; c++) expect(y.data[(b * 3 + c) * 4 + p]).toBeCloseTo(x.data[(b * 3 + c) * 4 + p] / (n + 1e-10), 14);
    }
  });

  it('passes gradcheck (eps 1e-3 so its term is exercised) and agrees in float32', () => {
    const x = new Rng(2).normal([2, 4, 3, 3], 0, 1, 'float64');
    for (const eps of [1e-10, 1e-3]) {
      const r = gradcheck((t) => unitNormalize(t, eps), [x]);
      expect(r.ok, `eps ${eps}: ${r.message}`).toBe(true);
    }
    expectF32Agrees('unitNormalize', (t) => unitNormalize(t), [x], { atol: 1e-5, rtol: 1e-5 });
  });

  it('has a finite gradient g / eps at an all-zero channel vector', () => {
    const x = new Rng(4).normal([1, 3, 1, 2], 0, 1, 'float64').requireGrad();
    for (let c = 0; c < 3; c++) x.data[c * 2] = 0; // position 0 all zero
    const w = tensor([1, 2, 3, 4, 5, 6], [1, 3, 1, 2], 'float64');
    const tape = new Tape();
    const y = withTape(tape, () => unitNormalize(x, 1e-3));
    expect(y.data[0]).toBe(0);
    backward(withTape(tape, () => sum(mul(y, w))), { tape });
    expect(x.grad!.data.every(Number.isFinite)).toBe(true);
    expectClose('zero vector grad', [x.grad!.data[0], x.grad!.data[2], x.grad!.data[4]], [1 / 1e-3, 3 / 1e-3, 5 / 1e-3], 1e-9, 1e-12);
  });
});
