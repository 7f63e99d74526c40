// U-REPA's token-grid resampling (src/methods/u-repa/tokens.ts): tokenDown is the 2×2 mean of
// raster-ordered tokens, tokenUp 'nearest' repeats each token over its 2×2 block and 'bilinear'
// is F.interpolate's (the PyTorch values are in the U-REPA parity fixture); finite-difference
// gradchecks of the compositions in float64; clear errors for non-square and odd grids.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { tokenDown, tokenUp } from '../../src/methods/u-repa/tokens.ts';
import { expectClose } from '../kernels/expectClose.ts';

const arb = fc.record({ B: fc.integer({ min: 1, max: 2 }), half: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 4 }), seed: fc.integer({ min: 0, max: 1e6 }) });

describe('token grid resampling', () => {
  it('tokenDown: the mean of each 2×2 block of the raster grid', () => {
    fc.assert(fc.property(arb, ({ B, half, C, seed }) => {
      const g = 2 * half;
      const x = new Rng(seed).normal([B, g * g, C], 0, 1, 'float64');
      const y = tokenDown(x);
      expect(y.shape).toEqual([B, half * half, C]);
      const ref: number[] = [];
      for (let b = 0; b < B; b++) for (let i = 0; i < half; i++) for (let j = 0; j < half; j++) for (let c = 0; c < C; c++) {
        let s = 0;
        for (const [di, dj] of [[0, 0], [0, 1], [1, 0], [1, 1]]) s += x.data[(b * g * g + (2 * i + di) * g + 2 * j + dj) * C + c];
        ref.push(s / 4);
      }
      expectClose('tokenDown', y.data, ref, 1e-12, 1e-12);
    }), { seed: 7, numRuns: 25 });
  });

  it('tokenUp nearest: token (i, j) of the output is token (⌊i/2⌋, ⌊j/2⌋) of the input; bilinear keeps constants and means', () => {
    fc.assert(fc.property(arb, ({ B, half, C, seed }) => {
      const x = new Rng(seed).normal([B, half * half, C], 0, 1, 'float64');
      const y = tokenUp(x, 'nearest');
      const g = 2 * half;
      expect(y.shape).toEqual([B, g * g, C]);
      const ref: number[] = [];
      for (let b = 0; b < B; b++) for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) for (let c = 0; c < C; c++) {
        ref.push(x.data[(b * half * half + Math.floor(i / 2) * half + Math.floor(j / 2)) * C + c]);
      }
      expectClose('nearest', y.data, ref, 0, 0);
      // nearest then down is the identity; bilinear reproduces a grid that is constant per sample
      expectClose('down(up(x))', tokenDown(y).data, x.data, 1e-12, 1e-12);
      const k = new Rng(seed + 1).normal([B, 1, C], 0, 1, 'float64');
      const constant = (n: number) => tensor(Array.from({ length: B * n * C }, (_, i) => k.data[Math.floor(i / (n * C)) * C + (i % C)]), [B, n, C], 'float64');
      expectClose('bilinear of a constant grid', tokenUp(constant(half * half), 'bilinear').data, constant(g * g).data, 1e-12, 1e-12);
    }), { seed: 8, numRuns: 25 });
  });

  it('gradcheck: tokenDown, tokenUp nearest and bilinear (float64 finite differences)', () => {
    for (const [B, half, C, seed] of [[1, 1, 3, 1], [2, 2, 2, 2], [1, 3, 1, 3]]) {
      const g = 2 * half;
      const big = new Rng(seed).normal([B, g * g, C], 0, 1, 'float64');
      const small = new Rng(seed + 10).normal([B, half * half, C], 0, 1, 'float64');
      for (const [name, r] of [
        ['tokenDown', gradcheck((x) => tokenDown(x), [big])],
        ['tokenUp nearest', gradcheck((x) => tokenUp(x, 'nearest'), [small])],
        ['tokenUp bilinear', gradcheck((x) => tokenUp(x, 'bilinear'), [small])],
      ] as const) expect(r.ok, `${name} ${B}×${g}²×${C}: ${r.message}`).toBe(true);
    }
  });

  it('refuses a grid that is not square, or odd when halving', () => {
    expect(() => tokenDown(new Rng(1).normal([1, 8, 2]))).toThrow(/8 tokens are not a square grid/);
    expect(() => tokenDown(new Rng(1).normal([1, 9, 2]))).toThrow(/3×3 has an odd side/);
    expect(() => tokenUp(new Rng(1).normal([2, 4]), 'nearest')).toThrow(/expected tokens \(B, T, C\)/);
  });
});
