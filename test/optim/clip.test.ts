// Tests for clipGradNorm: the total norm against a direct sum, PyTorch's scaling rule
// (coefficient maxNorm / (total + 1e-6), applied only when below 1), untouched gradients under
// the limit, and non-finite norms.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { clipGradNorm } from '../../src/optim/clip.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose, fillRandom } from '../kernels/expectClose.ts';

function withGrads(sizes: number[], seed: number, scale: number, dtype: 'float32' | 'float64'): Tensor[] {
  return sizes.map((n, i) => {
    const p = tensor(new Float64Array(n), [n], dtype).requireGrad();
    p.grad = tensor(fillRandom(new Float64Array(n), seed + i, -scale, scale), [n], dtype);
    return p;
  });
}

const norm = (ps: Tensor[]): number => Math.sqrt(ps.reduce((s, p) => s + Array.from(p.grad!.data).reduce((a, x) => a + x * x, 0), 0));

describe('clipGradNorm', () => {
  it('returns the global L2 norm and clips to maxNorm / (total + 1e-6) like PyTorch', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 1e6 }),
      fc.double({ min: 1e-3, max: 10, noNaN: true }), fc.double({ min: 0, max: 5, noNaN: true }),
      fc.constantFrom('float32' as const, 'float64' as const),
      (sizes, seed, scale, maxNorm, dtype) => {
        const ps = withGrads(sizes, seed, scale, dtype);
        const before = ps.map((p) => Array.from(p.grad!.data));
        const want = norm(ps);
        const total = clipGradNorm(ps, maxNorm);
        expectClose('total norm', [total], [want], 1e-12, 1e-12);
        const coef = maxNorm / (want + 1e-6);
        const tol = dtype === 'float32' ? 1e-6 : 1e-14;
        ps.forEach((p, i) => {
          if (coef >= 1) expect(Array.from(p.grad!.data)).toEqual(before[i]); // untouched, bit for bit
          else expectClose(`grad ${i} scaled by ${coef}`, p.grad!.data, before[i].map((g) => g * coef), tol * scale, tol);
        });
        if (coef < 1) expectClose('norm after clipping', [norm(ps)], [maxNorm * want / (want + 1e-6)], 1e-6, 1e-5);
      },
    ), { seed: 5, numRuns: 60 });
  });

  it('accepts named parameters, ignores those without gradients, and is 0 with none', () => {
    const [a, b] = withGrads([3, 4], 9, 1, 'float32');
    const c = tensor([1, 2]).requireGrad(); // no grad
    const want = norm([a, b]);
    expect(clipGradNorm(new Map([['a', a], ['b', b], ['c', c]]), 1e9)).toBeCloseTo(want, 6);
    expect(clipGradNorm([c], 1)).toBe(0);
    expect(c.grad).toBeNull();
  });

  it('hand-computed: grads (3, 4) with maxNorm 1 become (0.6, 0.8) up to the 1e-6 guard', () => {
    const p = tensor([0, 0], [2], 'float64').requireGrad();
    p.grad = tensor([3, 4], [2], 'float64');
    expect(clipGradNorm([p], 1)).toBe(5);
    expectClose('clipped', p.grad.data, [3 / (5 + 1e-6), 4 / (5 + 1e-6)], 0, 1e-15);
  });

  it('non-finite norms: NaN gradients propagate as in PyTorch, or throw when asked', () => {
    const p = tensor([0, 0]).requireGrad();
    p.grad = tensor([NaN, 1]);
    expect(() => clipGradNorm([p], 1, { errorIfNonfinite: true })).toThrow(/total gradient norm is NaN/);
    expect(clipGradNorm([p], 1)).toBeNaN();
    expect(Number.isNaN(p.grad.data[1])).toBe(true);
    expect(() => clipGradNorm([p], -1)).toThrow(/maxNorm must be >= 0/);
  });
});
