import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, add, sub, mul, div, reshape, backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';

// Broadcast-compatible shape pairs: b is a (right-aligned) suffix of a with some dims set to 1.
const shapePair = fc
  .array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 })
  .chain((a) => fc.tuple(fc.constant(a), fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }), fc.integer({ min: 0, max: a.length })))
  .map(([a, ones, drop]) => [a, a.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))] as const);

describe('elementwise arithmetic with broadcasting', () => {
  const ops = { add, sub, mul, div };
  for (const [name, op] of Object.entries(ops)) {
    it(`${name} gradcheck`, () => {
      fc.assert(
        fc.property(shapePair, fc.boolean(), fc.integer({ min: 0, max: 1000 }), ([sa, sb], swap, seed) => {
          const rng = new Rng(seed);
          const [s1, s2] = swap ? [sb, sa] : [sa, sb];
          const a = rng.normal(s1, 0, 1, 'float64');
          // keep divisors away from zero
          const b = name === 'div' ? rng.uniform(s2, 0.5, 2, 'float64') : rng.normal(s2, 0, 1, 'float64');
          const r = gradcheck((x, y) => op(x, y), [a, b]);
          expect(r.ok, r.message).toBe(true);
        }),
        { numRuns: 30, seed: 1 },
      );
    });
  }

  it('x + x accumulates 2 (one gradient tensor handed to two inputs)', () => {
    const x = tensor([1, 2, 3]).requireGrad();
    const y = mul(add(x, x), tensor([1, 10, 100]));
    backward([[y, tensor([1, 1, 1])]]);
    expect(x.grad!.toArray()).toEqual([2, 20, 200]);
  });

  it('reshape passes the gradient through', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]).requireGrad();
    const y = mul(reshape(x, [3, 2]), tensor([1, 2], [2]));
    backward([[y, tensor([1, 1, 1, 1, 1, 1], [3, 2])]]);
    expect(x.grad!.toArray()).toEqual([1, 2, 1, 2, 1, 2]);
  });
});
