// Checks the TypeScript reference kernels (src/kernels/js, except gemm and activations) against
// independent computations: naive composites written here, closed forms, and float64 central
// finite differences of each forward for each backward. It does not touch the native addon
// (parity.test.ts does).
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { attentionForward, attentionBackward } from '../../src/kernels/js/attention.ts';
import { layerNormForward, layerNormBackward } from '../../src/kernels/js/layernorm.ts';
import { softmaxForward, softmaxBackward } from '../../src/kernels/js/softmax.ts';
import { modulateForward, modulateBackward } from '../../src/kernels/js/modulate.ts';
import { reduceSum, sumSquares } from '../../src/kernels/js/reduce.ts';
import { adamw, ema } from '../../src/kernels/js/optim.ts';
import { expectClose, fillRandom, finiteDiff, dot } from './expectClose.ts';

const FD_TOL = 1e-6; // central differences with h=1e-6 in float64 are good to ~1e-9; leave room
const fcOpts = { seed: 20240611, numRuns: 12 };
const rand = (len: number, seed: number, lo = -1, hi = 1): Float64Array =>
  fillRandom(new Float64Array(len), seed, lo, hi);

describe('attention reference', () => {
  // softmax(Q K^T * scale) V through an explicit (N, N) matrix, lse without the max shift.
  function naive(q: Float64Array, k: Float64Array, v: Float64Array, bh: number, n: number, d: number, scale: number) {
    const out = new Float64Array(bh * n * d), lse = new Float64Array(bh * n);
    for (let h = 0; h < bh; h++) {
      const S = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(h * n + i) * d + c] * k[(h * n + j) * d + c];
        return Math.exp(s * scale);
      }));
      for (let i = 0; i < n; i++) {
        const z = S[i].reduce((a, b) => a + b, 0);
        lse[h * n + i] = Math.log(z);
        for (let c = 0; c < d; c++) {
          let o = 0;
          for (let j = 0; j < n; j++) o += (S[i][j] / z) * v[(h * n + j) * d + c];
          out[(h * n + i) * d + c] = o;
        }
      }
    }
    return { out, lse };
  }

  it('forward equals softmax(QK^T scale) V composed from naive loops', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 7 }),
      fc.integer({ min: 0, max: 1e6 }),
      (bh, n, d, seed) => {
        const q = rand(bh * n * d, seed, -2, 2), k = rand(bh * n * d, seed + 1, -2, 2), v = rand(bh * n * d, seed + 2);
        const scale = 1 / Math.sqrt(d);
        const out = new Float64Array(bh * n * d), lse = new Float64Array(bh * n);
        attentionForward(q, k, v, out, lse, bh, n, d, scale);
        const ref = naive(q, k, v, bh, n, d, scale);
        expectClose('attention out', out, ref.out, 1e-12, 1e-12);
        expectClose('attention lse', lse, ref.lse, 1e-12, 1e-12);
      },
    ), fcOpts);
  });

  it('forward is stable for large logits (online max shift)', () => {
    const bh = 1, n = 4, d = 2;
    const q = new Float64Array([100, 0, 0, 100, 50, 50, -100, 0]);
    const k = q.slice();
    const v = rand(n * d, 5);
    const out = new Float64Array(n * d), lse = new Float64Array(n);
    attentionForward(q, k, v, out, lse, bh, n, d, 1);
    // Row 0: logit 1e4 against key 0 dominates by 5000 (other keys); P is one-hot on key 0.
    expectClose('one-hot row', out.subarray(0, 2), v.subarray(0, 2), 1e-12, 0);
    expectClose('lse row 0', [lse[0]], [1e4], 1e-9, 0);
  });

  it('backward equals central finite differences of the forward', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 1e6 }),
      (bh, n, d, seed) => {
        const len = bh * n * d, scale = 0.7;
        const q = rand(len, seed), k = rand(len, seed + 1), v = rand(len, seed + 2), w = rand(len, seed + 3);
        const out = new Float64Array(len), lse = new Float64Array(bh * n);
        const loss = () => { attentionForward(q, k, v, out, lse, bh, n, d, scale); return dot(out, w); };
        const fq = finiteDiff(q, loss), fk = finiteDiff(k, loss), fv = finiteDiff(v, loss);
        loss();
        const dq = new Float64Array(len).fill(NaN), dk = new Float64Array(len).fill(NaN), dv = new Float64Array(len).fill(NaN);
        attentionBackward(q, k, v, out, lse, w, dq, dk, dv, bh, n, d, scale);
        expectClose('dq', dq, fq, FD_TOL, FD_TOL);
        expectClose('dk', dk, fk, FD_TOL, FD_TOL);
        expectClose('dv', dv, fv, FD_TOL, FD_TOL);
      },
    ), fcOpts);
  });
});

describe('layer norm reference', () => {
  it('forward equals the one-pass E[x^2] - E[x]^2 formula, with and without affine', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 17 }), fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
      (rows, cols, affine, seed) => {
        const x = rand(rows * cols, seed, -3, 3);
        const w = affine ? rand(cols, seed + 1) : null, b = affine ? rand(cols, seed + 2) : null;
        const eps = 1e-5;
        const y = new Float64Array(rows * cols), mean = new Float64Array(rows), rstd = new Float64Array(rows);
        layerNormForward(x, w, b, y, mean, rstd, rows, cols, eps);
        const ry = new Float64Array(rows * cols), rm = new Float64Array(rows), rs = new Float64Array(rows);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
          const m = row.reduce((a, c) => a + c, 0) / cols;
          const m2 = row.reduce((a, c) => a + c * c, 0) / cols;
          rm[r] = m;
          rs[r] = 1 / Math.sqrt(Math.max(m2 - m * m, 0) + eps);
          for (let c = 0; c < cols; c++) ry[r * cols + c] = (row[c] - m) * rs[r] * (w ? w[c] : 1) + (b ? b[c] : 0);
        }
        expectClose('ln mean', mean, rm, 1e-12, 1e-12);
        expectClose('ln rstd', rstd, rs, 1e-9, 1e-9);
        expectClose('ln y', y, ry, 1e-9, 1e-9);
      },
    ), fcOpts);
  });

  it('backward equals central finite differences (dx, dweight, dbias; null affine)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 9 }), fc.boolean(), fc.integer({ min: 0, max: 1e6 }),
      (rows, cols, affine, seed) => {
        const x = rand(rows * cols, seed, -2, 2), dy = rand(rows * cols, seed + 3);
        const w = affine ? rand(cols, seed + 1) : null, b = affine ? rand(cols, seed + 2) : null;
        const y = new Float64Array(rows * cols), mean = new Float64Array(rows), rstd = new Float64Array(rows);
        const loss = () => { layerNormForward(x, w, b, y, mean, rstd, rows, cols, 1e-5); return dot(y, dy); };
        const fx = finiteDiff(x, loss);
        const fw = w ? finiteDiff(w, loss) : null, fb = b ? finiteDiff(b, loss) : null;
        loss();
        const dx = new Float64Array(rows * cols).fill(NaN);
        const dw = w ? new Float64Array(cols).fill(NaN) : null, db = b ? new Float64Array(cols).fill(NaN) : null;
        layerNormBackward(dy, x, w, mean, rstd, dx, dw, db, rows, cols);
        expectClose('ln dx', dx, fx, FD_TOL, FD_TOL);
        if (dw && fw) expectClose('ln dweight', dw, fw, FD_TOL, FD_TOL);
        if (db && fb) expectClose('ln dbias', db, fb, FD_TOL, FD_TOL);
      },
    ), fcOpts);
  });

  it('backward without weight still writes dweight and dbias when asked', () => {
    const rows = 3, cols = 4;
    const x = rand(rows * cols, 7), dy = rand(rows * cols, 8);
    const y = new Float64Array(12), mean = new Float64Array(3), rstd = new Float64Array(3);
    layerNormForward(x, null, null, y, mean, rstd, rows, cols, 1e-5);
    const dx = new Float64Array(12), dw = new Float64Array(cols).fill(NaN), db = new Float64Array(cols).fill(NaN);
    layerNormBackward(dy, x, null, mean, rstd, dx, dw, db, rows, cols);
    const rdw = new Float64Array(cols), rdb = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      rdw[c] += dy[r * cols + c] * y[r * cols + c];
      rdb[c] += dy[r * cols + c];
    }
    expectClose('ln dweight (no weight)', dw, rdw, 1e-12, 1e-12);
    expectClose('ln dbias (no weight)', db, rdb, 1e-12, 1e-12);
  });
});

describe('softmax reference', () => {
  it('forward equals exp(x) / sum exp(x) without the max shift', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 13 }), fc.integer({ min: 0, max: 1e6 }),
      (rows, cols, seed) => {
        const x = rand(rows * cols, seed, -5, 5), y = new Float64Array(rows * cols);
        softmaxForward(x, y, rows, cols);
        const ref = new Float64Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          let z = 0;
          for (let c = 0; c < cols; c++) z += Math.exp(x[r * cols + c]);
          for (let c = 0; c < cols; c++) ref[r * cols + c] = Math.exp(x[r * cols + c]) / z;
        }
        expectClose('softmax y', y, ref, 1e-15, 1e-12);
      },
    ), fcOpts);
  });

  it('forward survives logits of 1000 (max shift)', () => {
    const y = new Float64Array(3);
    softmaxForward(new Float64Array([1000, 1000, -1000]), y, 1, 3);
    expectClose('softmax large', y, [0.5, 0.5, 0], 1e-15, 0);
  });

  it('backward equals central finite differences of the forward', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }),
      (rows, cols, seed) => {
        const x = rand(rows * cols, seed, -3, 3), w = rand(rows * cols, seed + 1), y = new Float64Array(rows * cols);
        const fx = finiteDiff(x, () => { softmaxForward(x, y, rows, cols); return dot(y, w); });
        softmaxForward(x, y, rows, cols);
        const dx = new Float64Array(rows * cols).fill(NaN);
        softmaxBackward(y, w, dx, rows, cols);
        expectClose('softmax dx', dx, fx, FD_TOL, FD_TOL);
      },
    ), fcOpts);
  });
});

describe('modulate reference', () => {
  it('forward broadcasts shift and scale over tokens', () => {
    const b = 2, n = 3, c = 2;
    const x = rand(b * n * c, 1), sh = new Float64Array([1, 2, 3, 4]), sc = new Float64Array([0, 1, -1, 0.5]);
    const y = new Float64Array(b * n * c);
    modulateForward(x, sh, sc, y, b, n, c);
    const ref = Array.from(x, (xi, i) => {
      const bi = Math.floor(i / (n * c)), j = i % c;
      return xi * (1 + sc[bi * c + j]) + sh[bi * c + j];
    });
    expectClose('modulate y', y, ref, 1e-15, 0);
  });

  it('backward equals central finite differences (dx, dshift, dscale)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1e6 }),
      (b, n, c, seed) => {
        const x = rand(b * n * c, seed), sh = rand(b * c, seed + 1), sc = rand(b * c, seed + 2), w = rand(b * n * c, seed + 3);
        const y = new Float64Array(b * n * c);
        const loss = () => { modulateForward(x, sh, sc, y, b, n, c); return dot(y, w); };
        const fx = finiteDiff(x, loss), fsh = finiteDiff(sh, loss), fsc = finiteDiff(sc, loss);
        const dx = new Float64Array(b * n * c).fill(NaN), dsh = new Float64Array(b * c).fill(NaN), dsc = new Float64Array(b * c).fill(NaN);
        modulateBackward(w, x, sc, dx, dsh, dsc, b, n, c);
        expectClose('modulate dx', dx, fx, FD_TOL, FD_TOL);
        expectClose('modulate dshift', dsh, fsh, FD_TOL, FD_TOL);
        expectClose('modulate dscale', dsc, fsc, FD_TOL, FD_TOL);
      },
    ), fcOpts);
  });
});

describe('reduce reference', () => {
  it('reduceSum equals a sum over the flat index with decoded coordinates', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1e6 }),
      (outer, len, inner, seed) => {
        const x = rand(outer * len * inner, seed), out = new Float64Array(outer * inner).fill(NaN);
        reduceSum(x, out, outer, len, inner);
        const ref = new Float64Array(outer * inner);
        x.forEach((xi, f) => {
          const o = Math.floor(f / (len * inner)), i = f % inner;
          ref[o * inner + i] += xi;
        });
        expectClose('reduceSum', out, ref, 1e-14, 1e-13);
      },
    ), fcOpts);
  });

  it('sumSquares accumulates float32 input in double', () => {
    // 1e6 squares of (1 + 2^-12): a float32 accumulator would lose the low bits.
    const n = 1_000_000, v = 1 + 2 ** -12;
    const x = new Float32Array(n).fill(v);
    expectClose('sumSquares', [sumSquares(x, n)], [n * v * v], 1e-6, 0);
    expectClose('sumSquares prefix', [sumSquares(new Float64Array([3, 4, 100]), 2)], [25], 0, 0);
  });
});

describe('optimiser reference', () => {
  it('adamw: two steps equal the closed form of bias-corrected moments', () => {
    const lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
    const p0 = [0.5, -1.5, 2, 0], g1 = [0.1, -0.3, 0, 2], g2 = [-0.2, 0.4, 1e-3, 2];
    const p = new Float64Array(p0), m = new Float64Array(4), v = new Float64Array(4);
    adamw(p, new Float64Array(g1), m, v, 4, lr, b1, b2, eps, wd, 1);
    // Step 1: m_hat = g1, v_hat = g1^2.
    const p1 = p0.map((pi, i) => pi * (1 - lr * wd) - lr * g1[i] / (Math.abs(g1[i]) + eps));
    expectClose('adamw p after step 1', p, p1, 1e-15, 1e-14);
    adamw(p, new Float64Array(g2), m, v, 4, lr, b1, b2, eps, wd, 2);
    // Step 2: m_hat = (b1 g1 + g2) / (1 + b1), v_hat = (b2 g1^2 + g2^2) / (1 + b2).
    const p2 = p1.map((pi, i) => {
      const mh = (b1 * g1[i] + g2[i]) / (1 + b1), vh = (b2 * g1[i] ** 2 + g2[i] ** 2) / (1 + b2);
      return pi * (1 - lr * wd) - lr * mh / (Math.sqrt(vh) + eps);
    });
    expectClose('adamw p after step 2', p, p2, 1e-15, 1e-13);
    expectClose('adamw m', m, g1.map((g, i) => (1 - b1) * (b1 * g + g2[i])), 1e-15, 1e-13);
    expectClose('adamw v', v, g1.map((g, i) => (1 - b2) * (b2 * g * g + g2[i] ** 2)), 1e-18, 1e-13);
  });

  it('ema: k updates towards a fixed source equal s + decay^k (t0 - s)', () => {
    const t0 = [1, -2, 3.5], s = [0.25, 4, 3.5], decay = 0.9, k = 7;
    const t = new Float64Array(t0);
    for (let i = 0; i < k; i++) ema(t, new Float64Array(s), 3, decay);
    expectClose('ema', t, t0.map((ti, i) => s[i] + decay ** k * (ti - s[i])), 1e-15, 1e-13);
  });
});
