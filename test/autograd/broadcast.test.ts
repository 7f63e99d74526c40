// The broadcasting machinery on K.binary / K.reduceSum: binaryOp and sumToShape against naive
// multi-index loops on random broadcast pairs of up to 7 dims (past the 4 strided dims one kernel
// call covers), float64 and float32, and foldDims' merging rules.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { binaryOp, foldDims, sumToShape } from '../../src/autograd/ops/broadcast.ts';
import { BinOp } from '../../src/kernels/types.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { broadcastShapes, sizeOf, type Shape } from '../../src/tensor/shape.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { ravel, unravel } from './agreeF32.ts';

/** a (up to 7 dims, sizes 1..3) and b: a suffix of a with random dims set to 1, maybe swapped. */
const pairArb = fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 7 })
  .chain((a) => fc.tuple(fc.constant(a), fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }), fc.integer({ min: 0, max: a.length }), fc.boolean()))
  .map(([a, ones, drop, swap]) => {
    const b = a.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d));
    return (swap ? [b, a] : [a, b]) as [number[], number[]];
  });

/** Offset in a tensor of `shape` of the broadcast index `idx` (of the broadcast shape). */
const at = (idx: number[], shape: Shape) => ravel(idx.slice(idx.length - shape.length).map((v, i) => (shape[i] === 1 ? 0 : v)), shape);

describe('binaryOp', () => {
  it('equals a naive broadcast loop for every op, float64 and float32', () => {
    fc.assert(fc.property(pairArb, fc.nat(1e5), ([sa, sb], seed) => {
      const rng = new Rng(seed);
      const shape = broadcastShapes(sa, sb);
      for (const dtype of ['float64', 'float32'] as const) {
        const a = rng.uniform(sa, 0.5, 2, dtype), b = rng.uniform(sb, 0.5, 2, dtype);
        for (const [name, op, f] of [['add', BinOp.add, (x: number, y: number) => x + y], ['mul', BinOp.mul, (x: number, y: number) => x * y], ['div', BinOp.div, (x: number, y: number) => x / y]] as const) {
          const out = binaryOp(op, a, b);
          expect(out.shape).toEqual(shape);
          const ref = Array.from({ length: sizeOf(shape) }, (_, i) => {
            const idx = unravel(i, shape);
            const v = f(a.data[at(idx, sa)], b.data[at(idx, sb)]);
            return dtype === 'float32' ? Math.fround(v) : v;
          });
          expectClose(`${name} ${dtype} [${sa}] [${sb}]`, out.data, ref, 0, dtype === 'float32' && name === 'div' ? 1.2e-7 : 0);
        }
      }
    }), { numRuns: 60, seed: 2 });
  });

  it('more than 4 unfoldable dims (one kernel call per leading index)', () => {
    const rng = new Rng(1);
    const a = rng.normal([2, 3, 2, 3, 2, 3], 0, 1, 'float64'), b = rng.normal([2, 1, 2, 1, 2, 1], 0, 1, 'float64');
    expect(foldDims(a.shape, [[108, 36, 18, 6, 3, 1], [4, 0, 2, 0, 1, 0]]).shape.length).toBe(6);
    const out = binaryOp(BinOp.sub, a, b);
    const ref = Array.from({ length: out.size }, (_, i) => { const idx = unravel(i, out.shape); return a.data[i] - b.data[at(idx, b.shape)]; });
    expectClose('sub 6-d', out.data, ref, 0, 0);
  });
});

describe('sumToShape', () => {
  it('equals a naive scatter-add of the broadcast gradient, float64 and float32', () => {
    fc.assert(fc.property(pairArb, fc.nat(1e5), ([sa, sb], seed) => {
      const shape = broadcastShapes(sa, sb);
      for (const dtype of ['float64', 'float32'] as const) {
        const g = new Rng(seed).normal(shape, 0, 1, dtype);
        for (const target of [sa, sb]) {
          const out = sumToShape(g, target);
          expect(out.shape).toEqual(target);
          const ref = new Float64Array(sizeOf(target));
          for (let i = 0; i < g.size; i++) ref[at(unravel(i, shape), target)] += g.data[i];
          expectClose(`sumToShape ${dtype} [${shape}] -> [${target}]`, out.data, ref, dtype === 'float32' ? 1e-5 : 1e-12, dtype === 'float32' ? 1e-5 : 1e-12);
        }
      }
    }), { numRuns: 60, seed: 3 });
  });
});

describe('foldDims', () => {
  it('merges contiguous and jointly broadcast dims, keeps mixed ones apart, drops size-1 dims', () => {
    // (B, N, C) * (B, 1, C): nothing merges across the broadcast N
    expect(foldDims([4, 5, 6], [[30, 6, 1], [6, 0, 1]])).toEqual({ shape: [4, 5, 6], strides: [[30, 6, 1], [6, 0, 1]] });
    // (B, T, D) + (1, T, D): T and D merge
    expect(foldDims([4, 5, 6], [[30, 6, 1], [0, 6, 1]])).toEqual({ shape: [4, 30], strides: [[30, 1], [0, 1]] });
    // (B, C, H, W) * (B, 1, 1, 1): C, H, W merge
    expect(foldDims([2, 3, 4, 5], [[60, 20, 5, 1], [1, 0, 0, 0]])).toEqual({ shape: [2, 60], strides: [[60, 1], [1, 0]] });
    expect(foldDims([1, 1], [[0, 0]])).toEqual({ shape: [1], strides: [[0]] });
  });
});
