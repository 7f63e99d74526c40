import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck } from '../../src/autograd/index.ts';
import { scaledDotProductAttention, qkvAttention } from '../../src/autograd/ops/attention.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees } from './agreeF32.ts';

const seedArb = fc.integer({ min: 0, max: 10_000 });
const RUNS = { numRuns: 15, seed: 3 };
const dimArb = fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }));

/** softmax(q k^T * scale) v for one head, plain loops; read(t, i, c) gives row i, column c of t. */
function naiveHead(read: (t: 0 | 1 | 2, i: number, c: number) => number, n: number, d: number, scale: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += read(0, i, c) * read(1, j, c);
      return s * scale;
    });
    const m = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - m));
    const z = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < d; c++) {
      let acc = 0;
      for (let j = 0; j < n; j++) acc += (e[j] / z) * read(2, j, c);
      out.push(acc);
    }
  }
  return out;
}

describe('scaledDotProductAttention', () => {
  it('matches explicit softmax(QK^T scale)V and passes gradcheck for q, k, v', () => {
    fc.assert(fc.property(dimArb, seedArb, fc.boolean(), ([b, h, n, d], seed, customScale) => {
      const rng = new Rng(seed);
      const [q, k, v] = [0, 1, 2].map(() => rng.normal([b, h, n, d], 0, 1, 'float64'));
      const scale = customScale ? 0.7 : undefined;
      const y = scaledDotProductAttention(q, k, v, scale);
      const ref: number[] = [];
      for (let head = 0; head < b * h; head++) {
        const base = head * n * d;
        const ts = [q, k, v];
        ref.push(...naiveHead((t, i, c) => ts[t].data[base + i * d + c], n, d, scale ?? 1 / Math.sqrt(d)));
      }
      expectClose('sdpa', y.data, ref, 1e-12, 1e-10);
      const r = gradcheck((a, bb, c) => scaledDotProductAttention(a, bb, c, scale), [q, k, v]);
      expect(r.ok, r.message).toBe(true);
    }), RUNS);
  });

  it('causal: passes gradcheck for q, k, v (finite differences through the masked kernel)', () => {
    fc.assert(fc.property(dimArb, seedArb, fc.boolean(), ([b, h, n, d], seed, customScale) => {
      const rng = new Rng(seed);
      const [q, k, v] = [0, 1, 2].map(() => rng.normal([b, h, n, d], 0, 1, 'float64'));
      const scale = customScale ? 0.7 : undefined;
      const r = gradcheck((a, bb, c) => scaledDotProductAttention(a, bb, c, scale, { causal: true }), [q, k, v]);
      expect(r.ok, r.message).toBe(true);
      // the first query sees only key 0: its output is v_0 whatever q and k are
      const y = scaledDotProductAttention(q, k, v, scale, { causal: true });
      for (let head = 0; head < b * h; head++) {
        expectClose('row 0 = v_0', y.data.subarray(head * n * d, head * n * d + d), v.data.subarray(head * n * d, head * n * d + d), 1e-15, 0);
      }
    }), RUNS);
  });

  it('one tensor as q, k and v accumulates all three gradients', () => {
    const x = new Rng(1).normal([1, 2, 4, 3], 0, 1, 'float64');
    const r = gradcheck((a) => scaledDotProductAttention(a, a, a), [x]);
    expect(r.ok, r.message).toBe(true);
  });

  it('rejects mismatched shapes', () => {
    const rng = new Rng(0);
    expect(() => scaledDotProductAttention(rng.normal([1, 2, 3]), rng.normal([1, 2, 3]), rng.normal([1, 3, 3]))).toThrow(/share one/);
  });
});

describe('qkvAttention', () => {
  it('reads qkv as reshape(B,N,3,H,D).permute(2,0,3,1,4) and merges heads; gradcheck', () => {
    fc.assert(fc.property(dimArb, seedArb, ([b, heads, n, d], seed) => {
      const rng = new Rng(seed);
      const qkv = rng.normal([b, n, 3 * heads * d], 0, 1, 'float64');
      const y = qkvAttention(qkv, heads);
      expect(y.shape).toEqual([b, n, heads * d]);
      const ref = new Array<number>(y.size);
      for (let bi = 0; bi < b; bi++) {
        for (let h = 0; h < heads; h++) {
          const head = naiveHead((t, i, c) => qkv.data[(bi * n + i) * 3 * heads * d + (t * heads + h) * d + c], n, d, 1 / Math.sqrt(d));
          for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) ref[(bi * n + i) * heads * d + h * d + c] = head[i * d + c];
        }
      }
      expectClose('qkvAttention', y.data, ref, 1e-12, 1e-10);
      const r = gradcheck((a) => qkvAttention(a, heads), [qkv]);
      expect(r.ok, r.message).toBe(true);
    }), { numRuns: 10, seed: 5 });
  });
});

describe('float32 path', () => {
  it('sdpa and qkvAttention agree with float64', () => {
    const rng = new Rng(9);
    const [q, k, v] = [0, 1, 2].map(() => rng.normal([2, 3, 17, 8], 0, 1, 'float64'));
    expectF32Agrees('sdpa', (a, b, c) => scaledDotProductAttention(a, b, c), [q, k, v], { atol: 1e-5, rtol: 1e-4 });
    expectF32Agrees('qkvAttention', (a) => qkvAttention(a, 2), [rng.normal([2, 9, 3 * 2 * 16], 0, 1, 'float64')], { atol: 1e-5, rtol: 1e-4 });
  });
});
