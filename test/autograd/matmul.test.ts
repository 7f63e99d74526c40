// matmul / bmm / linear: forwards against a naive triple loop written here (with its own batch
// broadcasting), gradchecks over random shapes, and the float32 path against float64.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, matmul, bmm, linear, backward } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees, ravel, unravel } from './agreeF32.ts';

/** torch.matmul by definition: promote 1-D operands, broadcast batch dims right-aligned, triple loop. */
function naiveMatmul(a: Tensor, b: Tensor): { shape: number[]; data: number[] } {
  const sa = a.ndim === 1 ? [1, ...a.shape] : [...a.shape];
  const sb = b.ndim === 1 ? [...b.shape, 1] : [...b.shape];
  const m = sa[sa.length - 2], k = sa[sa.length - 1], n = sb[sb.length - 1];
  const ba = sa.slice(0, -2), bb = sb.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nb; i++) {
    const da = ba[ba.length - nb + i] ?? 1, db = bb[bb.length - nb + i] ?? 1;
    batch.push(Math.max(da, db));
  }
  const nBatch = batch.reduce((p, q) => p * q, 1);
  const data: number[] = [];
  for (let t = 0; t < nBatch; t++) {
    const idx = unravel(t, batch);
    const pick = (bs: number[]) => idx.slice(nb - bs.length).map((v, i) => (bs[i] === 1 ? 0 : v));
    const oa = ravel(pick(ba), ba) * m * k, ob = ravel(pick(bb), bb) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[oa + i * k + p] * b.data[ob + p * n + j];
        data.push(s);
      }
    }
  }
  const shape = [...batch, ...(a.ndim > 1 ? [m] : []), ...(b.ndim > 1 ? [n] : [])];
  return { shape, data };
}

// Two operand shapes for matmul: a common batch shape, each operand keeping a suffix of it with
// some dims set to 1 (broadcast), and 1-D operands when an operand has no batch.
const dim = fc.integer({ min: 1, max: 4 });
const matmulShapes = fc
  .record({
    batch: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
    dropA: fc.nat(3), dropB: fc.nat(3),
    onesA: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    onesB: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    m: dim, k: dim, n: dim, vecA: fc.boolean(), vecB: fc.boolean(),
  })
  .map(({ batch, dropA, dropB, onesA, onesB, m, k, n, vecA, vecB }) => {
    const bA = batch.slice(Math.min(dropA, batch.length)).map((d, i) => (onesA[i] ? 1 : d));
    const bB = batch.slice(Math.min(dropB, batch.length)).map((d, i) => (onesB[i] ? 1 : d));
    const sa = bA.length === 0 && vecA ? [k] : [...bA, m, k];
    const sb = bB.length === 0 && vecB ? [k] : [...bB, k, n];
    return [sa, sb] as const;
  });

describe('matmul', () => {
  it('matches a naive triple loop (batch broadcasting, 1-D operands)', () => {
    fc.assert(
      fc.property(matmulShapes, fc.integer({ min: 0, max: 1000 }), ([sa, sb], seed) => {
        const rng = new Rng(seed);
        const a = rng.normal(sa, 0, 1, 'float64'), b = rng.normal(sb, 0, 1, 'float64');
        const y = matmul(a, b);
        const ref = naiveMatmul(a, b);
        expect(y.shape).toEqual(ref.shape);
        expectClose(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, y.data, ref.data, 1e-12, 1e-12);
      }),
      { numRuns: 150, seed: 2 },
    );
  });

  it('gradcheck over random shapes', () => {
    fc.assert(
      fc.property(matmulShapes, fc.integer({ min: 0, max: 1000 }), ([sa, sb], seed) => {
        const rng = new Rng(seed);
        const r = gradcheck(matmul, [rng.normal(sa, 0, 1, 'float64'), rng.normal(sb, 0, 1, 'float64')]);
        expect(r.ok, `${JSON.stringify(sa)} @ ${JSON.stringify(sb)}: ${r.message}`).toBe(true);
      }),
      { numRuns: 60, seed: 3 },
    );
  });

  it('shape rules: 1-D @ 1-D is a 0-d dot; mismatched inner dims and unbroadcastable batches throw', () => {
    const d = matmul(tensor([1, 2, 3]), tensor([4, 5, 6]));
    expect(d.shape).toEqual([]);
    expect(d.item()).toBe(32);
    expect(() => matmul(tensor([1, 2, 3]), tensor([1, 2]))).toThrow(/inner dims/);
    expect(() => matmul(new Rng(1).normal([2, 3, 4]), new Rng(1).normal([3, 4, 5]))).toThrow(/broadcast/);
  });

  it('zero-size dims give zeros of the right shape (k = 0) or empty results', () => {
    const y = matmul(new Rng(1).normal([2, 3, 0]), new Rng(2).normal([0, 4]));
    expect(y.shape).toEqual([2, 3, 4]);
    expect(y.toArray().every((v) => v === 0)).toBe(true);
    expect(matmul(new Rng(1).normal([0, 3, 2]), new Rng(2).normal([2, 4])).shape).toEqual([0, 3, 4]);
  });

  it('a broadcast operand receives the sum of its gradients', () => {
    // w (2,2) shared by both batch entries of x (2,2,1): dL/dw = sum_b g_b x_b^T
    const w = tensor([1, 2, 3, 4], [2, 2]).requireGrad();
    const x = tensor([1, 2, 3, 4], [2, 2, 1]);
    const y = matmul(w, x);
    backward([[y, tensor([1, 1, 1, 1], [2, 2, 1])]]);
    expect(w.grad!.toArray()).toEqual([1 + 3, 2 + 4, 1 + 3, 2 + 4]);
  });

  it('float32 path agrees with float64 (sizes off the SIMD widths)', () => {
    const rng = new Rng(5);
    const cases: [number[], number[]][] = [[[17, 33], [33, 19]], [[3, 9, 21], [21, 5]], [[2, 1, 7, 18], [3, 18, 13]], [[2, 11, 6], [6]], [[6], [2, 6, 9]]];
    for (const [sa, sb] of cases) {
      expectF32Agrees(`matmul ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, matmul, [rng.normal(sa, 0, 1, 'float64'), rng.normal(sb, 0, 1, 'float64')], { atol: 1e-4, rtol: 1e-4 });
    }
  });
});

describe('bmm', () => {
  it('is matmul of equal batches and rejects other shapes', () => {
    const rng = new Rng(9);
    const a = rng.normal([3, 2, 4], 0, 1, 'float64'), b = rng.normal([3, 4, 5], 0, 1, 'float64');
    expectClose('bmm', bmm(a, b).data, naiveMatmul(a, b).data, 1e-12, 1e-12);
    const r = gradcheck(bmm, [a, b]);
    expect(r.ok, r.message).toBe(true);
    expect(() => bmm(a, rng.normal([1, 4, 5], 0, 1, 'float64'))).toThrow(/same B/);
    expect(() => bmm(rng.normal([2, 4], 0, 1, 'float64'), rng.normal([4, 5], 0, 1, 'float64'))).toThrow(/bmm/);
  });
});

describe('linear', () => {
  const linShapes = fc.record({
    lead: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
    inF: fc.integer({ min: 1, max: 6 }), outF: fc.integer({ min: 1, max: 6 }), withBias: fc.boolean(),
  });

  it('forward is x W^T + b by a naive loop; gradcheck over random shapes', () => {
    fc.assert(
      fc.property(linShapes, fc.integer({ min: 0, max: 1000 }), ({ lead, inF, outF, withBias }, seed) => {
        const rng = new Rng(seed);
        const x = rng.normal([...lead, inF], 0, 1, 'float64');
        const w = rng.normal([outF, inF], 0, 1, 'float64');
        const b = rng.normal([outF], 0, 1, 'float64');
        const y = linear(x, w, withBias ? b : null);
        expect(y.shape).toEqual([...lead, outF]);
        const rows = x.size / inF, ref: number[] = [];
        for (let r = 0; r < rows; r++) {
          for (let o = 0; o < outF; o++) {
            let s = withBias ? b.data[o] : 0;
            for (let i = 0; i < inF; i++) s += x.data[r * inF + i] * w.data[o * inF + i];
            ref.push(s);
          }
        }
        expectClose('linear', y.data, ref, 1e-12, 1e-12);
        const r = withBias ? gradcheck((p, q, c) => linear(p, q, c), [x, w, b]) : gradcheck((p, q) => linear(p, q), [x, w]);
        expect(r.ok, r.message).toBe(true);
      }),
      { numRuns: 40, seed: 4 },
    );
  });

  it('rejects a weight that does not fit', () => {
    expect(() => linear(new Rng(1).normal([2, 3]), new Rng(1).normal([4, 5]))).toThrow(/in_features/);
    expect(() => linear(new Rng(1).normal([2, 3]), new Rng(1).normal([4, 3]), new Rng(1).normal([3]))).toThrow(/bias/);
  });

  it('float32 path agrees with float64', () => {
    const rng = new Rng(6);
    expectF32Agrees('linear', (x, w, b) => linear(x, w, b), [rng.normal([3, 7, 37], 0, 1, 'float64'), rng.normal([21, 37], 0, 1, 'float64'), rng.normal([21], 0, 1, 'float64')], { atol: 1e-4, rtol: 1e-4 });
  });
});
