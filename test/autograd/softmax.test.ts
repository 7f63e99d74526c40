// softmax / logSoftmax along any axis: forwards against exp(x) / sum exp(x) computed here by
// multi-index loops, stability with huge logits, gradchecks, and float32 against float64.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, softmax, logSoftmax } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees, ravel, unravel } from './agreeF32.ts';

/** softmax by definition: for every element, sum exp over its line along `axis` (no max shift). */
function naiveSoftmax(x: Tensor, axis: number): number[] {
  return Array.from(x.data, (v, i) => {
    const idx = unravel(i, x.shape);
    let s = 0;
    for (let j = 0; j < x.shape[axis]; j++) {
      idx[axis] = j;
      s += Math.exp(x.data[ravel(idx, x.shape)]);
    }
    return Math.exp(v) / s;
  });
}

const caseArb = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 })
  .chain((shape) => fc.record({
    shape: fc.constant(shape),
    axis: fc.integer({ min: -shape.length, max: shape.length - 1 }),
    seed: fc.integer({ min: 0, max: 1000 }),
  }));

describe('softmax and logSoftmax', () => {
  it('forward matches the definition along any axis', () => {
    fc.assert(
      fc.property(caseArb, ({ shape, axis, seed }) => {
        const x = new Rng(seed).normal(shape, 0, 2, 'float64');
        const ref = naiveSoftmax(x, axis < 0 ? axis + shape.length : axis);
        expectClose(`softmax ${JSON.stringify(shape)} axis ${axis}`, softmax(x, axis).data, ref, 1e-14, 1e-12);
        expectClose(`logSoftmax ${JSON.stringify(shape)} axis ${axis}`, logSoftmax(x, axis).data, ref.map(Math.log), 1e-12, 1e-12);
      }),
      { numRuns: 100, seed: 31 },
    );
  });

  it('gradcheck along any axis', () => {
    fc.assert(
      fc.property(caseArb, ({ shape, axis, seed }) => {
        const x = new Rng(seed).normal(shape, 0, 2, 'float64');
        for (const [name, op] of [['softmax', softmax], ['logSoftmax', logSoftmax]] as const) {
          const r = gradcheck((t) => op(t, axis), [x]);
          expect(r.ok, `${name} ${JSON.stringify(shape)} axis ${axis}: ${r.message}`).toBe(true);
        }
      }),
      { numRuns: 40, seed: 32 },
    );
  });

  it('is stable for huge logits (shift invariance, no overflow)', () => {
    const x = tensor([1000, 1001, 1002, -1000, -1001, -1002], [2, 3], 'float64');
    const small = tensor([0, 1, 2, 0, -1, -2], [2, 3], 'float64');
    expectClose('softmax shifted', softmax(x).data, softmax(small).data, 1e-15, 1e-13);
    const ls = logSoftmax(x).toArray();
    // row 0: x - 1002 - log(e^-2 + e^-1 + 1)
    const lse = Math.log(Math.exp(-2) + Math.exp(-1) + 1);
    expectClose('logSoftmax huge', ls.slice(0, 3), [-2 - lse, -1 - lse, -lse], 1e-12, 1e-12);
    expect(ls.every(Number.isFinite)).toBe(true);
  });

  it('float32 path agrees with float64, last axis (the kernel) and a middle axis', () => {
    const x = new Rng(33).normal([4, 19, 37], 0, 3, 'float64');
    for (const axis of [-1, 1, 0]) {
      expectF32Agrees(`softmax axis ${axis}`, (t) => softmax(t, axis), [x], { atol: 1e-6, rtol: 1e-4 });
      expectF32Agrees(`logSoftmax axis ${axis}`, (t) => logSoftmax(t, axis), [x], { atol: 1e-5, rtol: 1e-4 });
    }
  });
});
