import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, backward } from '../../src/autograd/index.ts';
import { embedding } from '../../src/autograd/ops/embedding.ts';
import { modulate } from '../../src/autograd/ops/modulate.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const seedArb = fc.integer({ min: 0, max: 10_000 });

describe('embedding', () => {
  it('looks up rows for any index shape; gradcheck with repeated indices', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }), seedArb,
      (v, d, idxShape, seed) => {
        const rng = new Rng(seed);
        const w = rng.normal([v, d], 0, 1, 'float64');
        const idx = rng.randint(0, v, idxShape, 'float64');
        const y = embedding(w, idx);
        expect(y.shape).toEqual([...idxShape, d]);
        const ref = Array.from({ length: idx.size * d }, (_, i) => w.data[idx.data[Math.floor(i / d)] * d + (i % d)]);
        expectClose('embedding', y.data, ref, 0, 0);
        expectClose('embedding from Int32Array', embedding(w, Int32Array.from(idx.data), idxShape).data, ref, 0, 0);
        const r = gradcheck((a) => embedding(a, idx), [w]);
        expect(r.ok, r.message).toBe(true);
      }), { numRuns: 25, seed: 51 });
  });

  it('a repeated label sends the sum of its gradients to one row', () => {
    const w = tensor([0, 0, 0, 0, 0, 0], [3, 2]).requireGrad();
    backward([[embedding(w, [2, 0, 2]), tensor([1, 2, 3, 4, 5, 6], [3, 2])]]);
    expect(w.grad!.toArray()).toEqual([3, 4, 0, 0, 6, 8]);
  });

  it('rejects out-of-range labels', () => {
    expect(() => embedding(tensor([1, 2], [1, 2]), [1])).toThrow(/not an integer in \[0, 1\)/);
  });
});

describe('modulate', () => {
  it('is x * (1 + scale) + shift broadcast over tokens; gradcheck for all three inputs', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 7 }), seedArb, (b, n, c, seed) => {
      const rng = new Rng(seed);
      const x = rng.normal([b, n, c], 0, 1, 'float64');
      const shift = rng.normal([b, c], 0, 1, 'float64'), scale = rng.normal([b, c], 0, 1, 'float64');
      const y = modulate(x, shift, scale);
      const ref = Array.from(x.data, (v, i) => {
        const bi = Math.floor(i / (n * c)), j = i % c;
        return v * (1 + scale.data[bi * c + j]) + shift.data[bi * c + j];
      });
      expectClose('modulate', y.data, ref, 1e-15, 1e-12);
      const r = gradcheck((a, sh, sc) => modulate(a, sh, sc), [x, shift, scale]);
      expect(r.ok, r.message).toBe(true);
    }), { numRuns: 25, seed: 53 });
  });
});

describe('float32 path', () => {
  it('embedding and modulate agree with float64', () => {
    const rng = new Rng(55);
    const w = rng.normal([11, 19], 0, 1, 'float64');
    expectF32Agrees('embedding', (a) => embedding(a, [3, 3, 10, 0, 7], [5]), [w], { atol: 1e-6, rtol: 1e-6 });
    const x = rng.normal([3, 17, 24], 0, 1, 'float64');
    const sh = rng.normal([3, 24], 0, 1, 'float64'), sc = rng.normal([3, 24], 0, 1, 'float64');
    expectF32Agrees('modulate', (a, b, c) => modulate(a, b, c), [x, sh, sc], { atol: 1e-5, rtol: 1e-5 });
  });
});
