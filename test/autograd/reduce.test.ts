// sum / mean / max over random axis sets: forwards against a naive multi-index loop written here,
// gradchecks, the first-max gradient rule, and the float32 path against float64.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, sum, mean, max, backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees, ravel, unravel } from './agreeF32.ts';

/** Reduce by visiting every input element and adding it into its output slot (keepDim layout). */
function naiveReduce(x: Tensor, axes: number[], kind: 'sum' | 'mean' | 'max'): number[] {
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = kept.reduce((p, q) => p * q, 1);
  const acc = new Array<number>(n).fill(kind === 'max' ? -Infinity : 0);
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  for (let i = 0; i < x.size; i++) {
    const idx = unravel(i, x.shape).map((v, d) => (axes.includes(d) ? 0 : v));
    const o = ravel(idx, kept);
    acc[o] = kind === 'max' ? Math.max(acc[o], x.data[i]) : acc[o] + x.data[i];
  }
  return kind === 'mean' ? acc.map((v) => v / count) : acc;
}

// A shape (sizes 1..5, up to 4 dims) and an axis argument: undefined (all), one axis, or a subset,
// each axis written negative half the time.
const caseArb = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 })
  .chain((shape) => fc.record({
    shape: fc.constant(shape),
    pick: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
    negative: fc.boolean(),
    mode: fc.constantFrom('all', 'one', 'list'),
    keepDim: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1000 }),
  }))
  .map(({ shape, pick, negative, mode, keepDim, seed }) => {
    let axes = shape.map((_, i) => i).filter((i) => pick[i]);
    if (axes.length === 0) axes = [shape.length - 1];
    if (mode === 'one') axes = [axes[0]];
    if (mode === 'all') axes = shape.map((_, i) => i);
    const written = axes.map((a) => (negative ? a - shape.length : a));
    const axis = mode === 'all' ? undefined : mode === 'one' ? written[0] : written;
    return { shape, axes, axis, keepDim, seed };
  });

describe('reductions', () => {
  const ops = { sum, mean, max } as const;
  for (const [name, op] of Object.entries(ops)) {
    const kind = name as keyof typeof ops;
    it(`${name}: forward matches a naive loop, output shape follows keepDim`, () => {
      fc.assert(
        fc.property(caseArb, ({ shape, axes, axis, keepDim, seed }) => {
          const x = new Rng(seed).normal(shape, 0, 1, 'float64');
          const y = op(x, axis, keepDim);
          const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
          expect(y.shape).toEqual(keepDim ? kept : shape.filter((_, i) => !axes.includes(i)));
          expectClose(`${name} ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}`, y.data, naiveReduce(x, axes, kind), 1e-12, 1e-12);
        }),
        { numRuns: 100, seed: 11 },
      );
    });

    it(`${name}: gradcheck over random shapes and axis sets`, () => {
      fc.assert(
        fc.property(caseArb, ({ shape, axis, keepDim, seed }) => {
          const x = new Rng(seed).normal(shape, 0, 1, 'float64');
          const r = gradcheck((t) => op(t, axis, keepDim), [x]);
          expect(r.ok, `${JSON.stringify(shape)} axis ${JSON.stringify(axis)}: ${r.message}`).toBe(true);
        }),
        { numRuns: 40, seed: 12 },
      );
    });

    it(`${name}: float32 path agrees with float64`, () => {
      const x = new Rng(13).normal([5, 33, 17], 0, 1, 'float64');
      for (const axis of [undefined, 0, 1, -1, [0, 2]] as const) {
        expectF32Agrees(`${name} axis ${JSON.stringify(axis)}`, (t) => op(t, axis), [x], { atol: 1e-4, rtol: 1e-4 });
      }
    });
  }

  it('max sends the gradient to the first maximum only (argmax rule); ties get nothing else', () => {
    const x = tensor([1, 3, 3, 2, 5, 5, 5, 0], [2, 4]).requireGrad();
    const y = max(x, 1);
    expect(y.toArray()).toEqual([3, 5]);
    backward([[y, tensor([10, 20])]]);
    expect(x.grad!.toArray()).toEqual([0, 10, 0, 0, 20, 0, 0, 0]);
  });

  it('max over several axes picks the first maximum in row-major order of the reduced dims', () => {
    // x (2, 2, 2) reduced over dims 0 and 2: the group for j = 1 is x[0,1,0], x[0,1,1], x[1,1,0], x[1,1,1]
    const x = tensor([0, 0, 7, 1, 0, 0, 7, 7], [2, 2, 2]).requireGrad();
    const y = max(x, [0, 2]);
    expect(y.toArray()).toEqual([0, 7]);
    backward([[y, tensor([1, 1])]]);
    expect(x.grad!.toArray()).toEqual([1, 0, 1, 0, 0, 0, 0, 0]);
  });

  it('max propagates NaN; empty and repeated axes are handled like torch', () => {
    expect(Number.isNaN(max(tensor([1, NaN, 3])).item())).toBe(true);
    expect(() => max(tensor([], [2, 0]), 1)).toThrow(/empty/);
    expect(() => sum(tensor([1, 2, 3, 4], [2, 2]), [0, -2])).toThrow(/repeats/);
    expect(sum(tensor([], [2, 0]), 1).toArray()).toEqual([0, 0]);
    expect(sum(tensor([1, 2, 3, 4], [2, 2]), []).item()).toBe(10);
  });

  it('0-d input: sum, mean and max are the value itself', () => {
    const x = tensor([4], []);
    for (const op of [sum, mean, max]) {
      expect(op(x).shape).toEqual([]);
      expect(op(x).item()).toBe(4);
      expect(op(x, 0).item()).toBe(4);
    }
  });
});
