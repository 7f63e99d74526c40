import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck } from '../../src/autograd/index.ts';
import { layerNorm, groupNorm, batchNorm } from '../../src/autograd/ops/norm.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sizeOf } from '../../src/tensor/shape.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const seedArb = fc.integer({ min: 0, max: 10_000 });
const RUNS = { numRuns: 20, seed: 7 };

function check(r: { ok: boolean; message: string }): void {
  expect(r.ok, r.message).toBe(true);
}

/** Normalise xs[idx] in place of a plain array: (x - mean) / sqrt(var + eps), biased var. */
function normaliseGroup(x: ArrayLike<number>, idx: number[], eps: number, out: number[]): void {
  const m = idx.reduce((a, i) => a + x[i], 0) / idx.length;
  const v = idx.reduce((a, i) => a + (x[i] - m) ** 2, 0) / idx.length;
  for (const i of idx) out[i] = (x[i] - m) / Math.sqrt(v + eps);
}

const maybe = (rng: Rng, on: boolean, n: number): Tensor | null => (on ? rng.normal([n], 1, 0.5, 'float64') : null);

describe('layerNorm', () => {
  it('matches a naive per-row normalisation, with and without affine; gradcheck', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.boolean(), seedArb,
      (lead, cols, hasW, hasB, seed) => {
        const rng = new Rng(seed);
        const x = rng.normal([...lead, cols], 0.3, 1.5, 'float64');
        const w = maybe(rng, hasW, cols), b = maybe(rng, hasB, cols);
        const y = layerNorm(x, cols, w, b, 1e-5);
        const ref = new Array<number>(x.size);
        for (let r = 0; r < x.size / cols; r++) normaliseGroup(x.data, Array.from({ length: cols }, (_, c) => r * cols + c), 1e-5, ref);
        for (let i = 0; i < x.size; i++) ref[i] = ref[i] * (w ? w.data[i % cols] : 1) + (b ? b.data[i % cols] : 0);
        expectClose('layerNorm', y.data, ref, 1e-12, 1e-10);
        const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
        check(gradcheck((a, ...p) => layerNorm(a, cols, w ? p[0] : null, b ? p[w ? 1 : 0] : null, 1e-5), inputs));
      }), RUNS);
  });

  it('rejects a mismatched last dim', () => {
    expect(() => layerNorm(tensor([1, 2, 3], [3]), 4)).toThrow(/last dim/);
  });
});

describe('groupNorm', () => {
  it('matches a naive per-(sample, group) normalisation; gradcheck', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }), fc.boolean(), fc.boolean(), seedArb,
      (n, groups, perGroup, spatial, hasW, hasB, seed) => {
        const rng = new Rng(seed);
        const c = groups * perGroup, s = sizeOf(spatial);
        const x = rng.normal([n, c, ...spatial], -0.2, 2, 'float64');
        const w = maybe(rng, hasW, c), b = maybe(rng, hasB, c);
        const y = groupNorm(x, groups, w, b, 1e-5);
        const ref = new Array<number>(x.size);
        for (let i = 0; i < n; i++) {
          for (let g = 0; g < groups; g++) {
            const idx: number[] = [];
            for (let ch = g * perGroup; ch < (g + 1) * perGroup; ch++) for (let j = 0; j < s; j++) idx.push((i * c + ch) * s + j);
            normaliseGroup(x.data, idx, 1e-5, ref);
          }
        }
        for (let i = 0; i < x.size; i++) {
          const ch = Math.floor(i / s) % c;
          ref[i] = ref[i] * (w ? w.data[ch] : 1) + (b ? b.data[ch] : 0);
        }
        expectClose('groupNorm', y.data, ref, 1e-12, 1e-10);
        const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
        check(gradcheck((a, ...p) => groupNorm(a, groups, w ? p[0] : null, b ? p[w ? 1 : 0] : null, 1e-5), inputs));
      }), RUNS);
  });
});

describe('batchNorm', () => {
  const bnArb = fc.tuple(
    fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
    fc.boolean(), fc.boolean(), seedArb,
  ).filter(([n, , sp]) => n * sizeOf(sp) >= 3); // >= 3 values per channel keeps the batch variance away from 0

  it('training: batch statistics normalise; running stats update with the unbiased variance; gradcheck', () => {
    fc.assert(fc.property(bnArb, ([n, c, spatial, hasW, hasB, seed]) => {
      const rng = new Rng(seed);
      const s = sizeOf(spatial), count = n * s;
      const x = rng.normal([n, c, ...spatial], 0.5, 1.3, 'float64');
      const w = maybe(rng, hasW, c), b = maybe(rng, hasB, c);
      const rm = rng.normal([c], 0, 1, 'float64'), rv = rng.uniform([c], 0.5, 2, 'float64');
      const rm0 = Array.from(rm.data), rv0 = Array.from(rv.data);
      const y = batchNorm(x, rm, rv, w, b, { training: true, momentum: 0.25, eps: 1e-5 });
      const ref = new Array<number>(x.size);
      for (let ch = 0; ch < c; ch++) {
        const idx: number[] = [];
        for (let i = 0; i < n; i++) for (let j = 0; j < s; j++) idx.push((i * c + ch) * s + j);
        normaliseGroup(x.data, idx, 1e-5, ref);
        for (const i of idx) ref[i] = ref[i] * (w ? w.data[ch] : 1) + (b ? b.data[ch] : 0);
        const m = idx.reduce((a, i) => a + x.data[i], 0) / count;
        const unbiased = idx.reduce((a, i) => a + (x.data[i] - m) ** 2, 0) / (count - 1);
        expect(rm.data[ch]).toBeCloseTo(0.75 * rm0[ch] + 0.25 * m, 12);
        expect(rv.data[ch]).toBeCloseTo(0.75 * rv0[ch] + 0.25 * unbiased, 12);
      }
      expectClose('batchNorm train', y.data, ref, 1e-12, 1e-10);
      const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
      // running stats change on every call, but training outputs do not read them
      check(gradcheck((a, ...p) => batchNorm(a, rm, rv, w ? p[0] : null, b ? p[w ? 1 : 0] : null, { training: true }), inputs));
      check(gradcheck((a) => batchNorm(a, null, null, null, null, { training: true }), [x]));
    }), RUNS);
  });

  it('training running stats: a hand-computed example', () => {
    // channel 0 sees [1, 2, 3, 6]: mean 3, biased var 3.5, unbiased var 14/3
    // channel 1 sees [0, 0, 4, 4]: mean 2, biased var 4, unbiased var 16/3
    const x = tensor([1, 2, 0, 0, 3, 6, 4, 4], [2, 2, 2]);
    const rm = tensor([0, 1], [2]), rv = tensor([1, 1], [2]);
    const y = batchNorm(x, rm, rv, null, null, { training: true, momentum: 0.1, eps: 0 });
    expectClose('running mean', rm.data, [0.3, 0.9 + 0.2], 1e-6, 0);
    expectClose('running var', rv.data, [0.9 + 0.1 * 14 / 3, 0.9 + 0.1 * 16 / 3], 1e-6, 0);
    expectClose('normalised', y.data, [-2 / Math.sqrt(3.5), -1 / Math.sqrt(3.5), -1, -1, 0, 3 / Math.sqrt(3.5), 1, 1], 1e-6, 0);
  });

  it('eval: running statistics normalise and are not updated; gradcheck', () => {
    fc.assert(fc.property(bnArb, ([n, c, spatial, hasW, hasB, seed]) => {
      const rng = new Rng(seed);
      const s = sizeOf(spatial);
      const x = rng.normal([n, c, ...spatial], 0.5, 1.3, 'float64');
      const w = maybe(rng, hasW, c), b = maybe(rng, hasB, c);
      const rm = rng.normal([c], 0, 1, 'float64'), rv = rng.uniform([c], 0.5, 2, 'float64');
      const rm0 = Array.from(rm.data), rv0 = Array.from(rv.data);
      const y = batchNorm(x, rm, rv, w, b, { eps: 1e-3 });
      const ref = Array.from(x.data, (v, i) => {
        const ch = Math.floor(i / s) % c;
        return ((v - rm0[ch]) / Math.sqrt(rv0[ch] + 1e-3)) * (w ? w.data[ch] : 1) + (b ? b.data[ch] : 0);
      });
      expectClose('batchNorm eval', y.data, ref, 1e-12, 1e-10);
      expect(Array.from(rm.data)).toEqual(rm0);
      expect(Array.from(rv.data)).toEqual(rv0);
      const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
      check(gradcheck((a, ...p) => batchNorm(a, rm, rv, w ? p[0] : null, b ? p[w ? 1 : 0] : null, { eps: 1e-3 }), inputs));
    }), RUNS);
  });

  it('refuses to train on one value per channel, and to write frozen running stats', () => {
    expect(() => batchNorm(tensor([1, 2], [1, 2]), null, null, null, null, { training: true })).toThrow(/more than 1 value/);
    const rm = tensor([0, 0], [2]).freeze();
    expect(() => batchNorm(tensor([1, 2, 3, 4], [2, 2]), rm, null, null, null, { training: true })).toThrow(/frozen/);
  });
});

describe('float32 path', () => {
  it('layerNorm, groupNorm and batchNorm agree with float64', () => {
    const rng = new Rng(11);
    const x = rng.normal([2, 6, 5, 3], 0, 1, 'float64');
    const w = rng.normal([6], 1, 0.3, 'float64'), b = rng.normal([6], 0, 0.3, 'float64');
    const wl = rng.normal([3], 1, 0.3, 'float64'), bl = rng.normal([3], 0, 0.3, 'float64');
    const tol = { atol: 2e-5, rtol: 2e-4 };
    expectF32Agrees('layerNorm', (a, ww, bb) => layerNorm(a, 3, ww, bb), [x, wl, bl], tol);
    expectF32Agrees('layerNorm no affine', (a) => layerNorm(a, 3), [x], tol);
    expectF32Agrees('groupNorm', (a, ww, bb) => groupNorm(a, 3, ww, bb), [x, w, b], tol);
    expectF32Agrees('batchNorm', (a, ww, bb) => batchNorm(a, null, null, ww, bb, { training: true }), [x, w, b], tol);
  });
});
