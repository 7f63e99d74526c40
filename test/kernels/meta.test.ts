// Meta execution (src/kernels/meta.ts): shape-only tensors through the real models and ops, with
// kernels that count. Checked here: a meta model has the real model's parameters (names, shapes,
// count); the counted FLOPs of linear, batched matmul and attention equal their closed forms; the
// real path is untouched before and after a meta run; a meta build of SiT-XL/2 allocates nothing.
import { describe, expect, it } from 'vitest';
import { fc, test as ftest } from '@fast-check/vitest';
import { MetaF32, newCounters, withMeta, type MetaCounters } from '../../src/kernels/meta.ts';
import { createSiT } from '../../src/models/sit.ts';
import { sitPreset } from '../../src/models/presets.ts';
import { conv2d, crossEntropy, groupNorm, linear, logSoftmax, matmul, mseLoss, permute, qkvAttention, slice, sum as sum1, upsampleNearest } from '../../src/autograd/ops/index.ts';
import { leakyRelu } from '../../src/autograd/ops/leakyRelu.ts';
import { backward } from '../../src/autograd/tape.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { empty } from '../../src/tensor/tensor.ts';
import { sitParamCount } from '../../src/models/config.ts';
import { Rng } from '../../src/tensor/rng.ts';

const sum = (c: MetaCounters, kind: string, f: 'flops' | 'macs' | 'bytes' = 'macs'): number =>
  [...c.by].filter(([k]) => k.endsWith(`|${kind}`)).reduce((s, [, v]) => s + v[f], 0);

describe('meta execution', () => {
  it('a meta SiT has the real SiT\'s parameter names, shapes and count', () => {
    const config = sitPreset('SiT-T/2');
    const real = createSiT(config, 0);
    const m = withMeta(newCounters(), () => createSiT(config, 0));
    const shapes = (x: typeof real) => x.namedParameters().map(([n, t]) => `${n}:${t.shape.join('x')}`);
    expect(shapes(m)).toEqual(shapes(real));
    const count = (x: typeof real) => x.parameters().reduce((s, t) => s + t.size, 0);
    expect(count(m)).toBe(count(real));
    expect(count(m)).toBe(sitParamCount(config));
    expect(m.parameters().every((t) => t.data instanceof MetaF32 && t.data.byteLength === 0)).toBe(true);
  });

  it('SiT-XL/2 builds shape-only: 675M parameters, no storage', () => {
    const before = process.memoryUsage().rss;
    const m = withMeta(newCounters(), () => createSiT(sitPreset('SiT-XL/2'), 0));
    expect(m.parameters().reduce((s, t) => s + t.size, 0)).toBe(sitParamCount(sitPreset('SiT-XL/2')));
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 2 ** 20); // 2.7 GB if it allocated
  });

  ftest.prop([fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.boolean()], { numRuns: 40 })(
    'linear (rows, in) → (rows, out): rows·in·out MACs forward, twice that backward',
    (rows, inF, outF, bias) => {
      const c = newCounters();
      withMeta(c, () => {
        const x = empty([rows, inF]).requireGrad(), w = empty([outF, inF]).requireGrad(), b = bias ? empty([outF]).requireGrad() : null;
        const y = linear(x, w, b);
        expect(y.shape).toEqual([rows, outF]);
        expect(sum(c, 'gemm')).toBe(rows * inF * outF);
        expect(sum(c, 'gemm', 'flops')).toBe(2 * rows * inF * outF + (bias ? rows * outF : 0));
      });
    });

  ftest.prop([fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 32 })], { numRuns: 40 })(
    'matmul (B, m, k) @ (B, k, n): B·m·k·n MACs', (b, m, k, n) => {
      const c = newCounters();
      withMeta(c, () => {
        const y = matmul(empty([b, m, k]), empty([b, k, n]));
        expect(y.shape).toEqual([b, m, n]);
      });
      expect(sum(c, 'gemm')).toBe(b * m * k * n);
    });

  ftest.prop([fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 32 })], { numRuns: 40 })(
    'attention on packed qkv (B, N, 3HD): 2·B·H·N²·D MACs forward (QKᵀ and PV)', (b, n, h, d) => {
      const c = newCounters();
      withMeta(c, () => {
        const y = qkvAttention(empty([b, n, 3 * h * d]), h);
        expect(y.shape).toEqual([b, n, h * d]);
      });
      expect(sum(c, 'attention')).toBe(2 * b * h * n * n * d);
    });

  ftest.prop([fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 3 })], { numRuns: 20 })(
    'ops whose TypeScript loops meta mode skips (conv2d, groupNorm, upsampleNearest, leakyRelu) give the real shapes, forward and backward',
    (n, g, side, k) => {
      const c = 2 * g;
      const chain = (x: Tensor, w: Tensor, gw: Tensor) => sum1(leakyRelu(upsampleNearest(groupNorm(conv2d(x, w, gw, { padding: 1 }), g, gw, gw), 2), 0.2));
      const real = (() => {
        const rng = new Rng(k);
        const x = rng.normal([n, c, side, side]).requireGrad(), w = rng.normal([c, c, 3, 3]).requireGrad(), gw = rng.normal([c]).requireGrad();
        backward(chain(x, w, gw));
        return [x, w, gw].map((t) => t.grad!.shape);
      })();
      const counters = newCounters();
      const shapes = withMeta(counters, () => {
        const x = empty([n, c, side, side]).requireGrad(), w = empty([c, c, 3, 3]).requireGrad(), gw = empty([c]).requireGrad();
        backward(chain(x, w, gw));
        return [x, w, gw].map((t) => t.grad!.shape);
      });
      expect(shapes).toEqual(real);
      expect(sum(counters, 'gemm')).toBe(n * c * side * side * c * 9 * 3); // conv forward, dx and dW
    });

  it('the real path is untouched: numbers before and after a meta run agree', () => {
    const rng = new Rng(1);
    const x = rng.normal([3, 5]), w = rng.normal([4, 5]);
    const y1 = Array.from(linear(x, w).data);
    withMeta(newCounters(), () => linear(empty([3, 5]), empty([4, 5])));
    const y2 = linear(x, w);
    expect(y2.data).toBeInstanceOf(Float32Array);
    expect(y2.data).not.toBeInstanceOf(MetaF32);
    expect(Array.from(y2.data)).toEqual(y1);
  });

  // 2^34 logical elements: a per-element TypeScript loop would run for minutes and an n-long float64
  // buffer (128 GB) cannot be allocated, so these pass only if the ops skip both on shape-only data
  // (DiGIT's paper-scale logits, 4096 × 256 × 8192, made `simulate` take minutes before).
  it('the TypeScript loops outside the kernels (permute, slice, losses, log-softmax) do nothing on shape-only tensors', () => {
    withMeta(newCounters(), () => {
      const big = (shape: number[]) => { const t = empty(shape); t.requiresGrad = true; return t; };
      const a = big([2 ** 17, 2 ** 17]);
      expect(permute(a, [1, 0]).shape).toEqual([2 ** 17, 2 ** 17]);
      expect(slice(a, 1, 1).shape).toEqual([2 ** 17, 2 ** 17 - 1]);
      const mse = mseLoss(a, big([2 ** 17, 2 ** 17]));
      backward(mse);
      expect(mse.shape).toEqual([]);
      const logits = big([2 ** 20, 2 ** 14]);
      const ce = crossEntropy(logits, new Int32Array(2 ** 20), { labelSmoothing: 0.1 });
      backward(ce);
      expect(logSoftmax(logits, -1).shape).toEqual([2 ** 20, 2 ** 14]);
    });
  });
});
