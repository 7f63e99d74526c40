import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { gradcheck, backward } from '../../src/autograd/index.ts';
import {
  permute, transpose, slice, concat, split, chunk, indexSelect, gather, expand, unsqueeze, squeeze,
} from '../../src/autograd/ops/layout.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { sizeOf } from '../../src/tensor/shape.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { expectF32Agrees, ravel, unravel } from './agreeF32.ts';

// Shapes of rank 1..4 with sizes 1..5 (size-1 dims and odd sizes are common).
const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 });
const seedArb = fc.integer({ min: 0, max: 10_000 });
const RUNS = { numRuns: 25, seed: 42 };

/** Reference: out[p] = x[src(p)] over every out position p. */
function naive(outShape: number[], x: Tensor, src: (p: number[]) => number[]): number[] {
  return Array.from({ length: sizeOf(outShape) }, (_, i) => x.data[ravel(src(unravel(i, outShape)), x.shape)]);
}

function check(r: { ok: boolean; message: string }): void {
  expect(r.ok, r.message).toBe(true);
}

describe('permute / transpose', () => {
  it('permute matches index arithmetic and passes gradcheck', () => {
    fc.assert(fc.property(shapeArb, seedArb, (shape, seed) => {
      const rng = new Rng(seed);
      const perm = Array.from(rng.permutation(shape.length));
      const x = rng.normal(shape, 0, 1, 'float64');
      const y = permute(x, perm);
      const outShape = perm.map((d) => shape[d]);
      expect(y.shape).toEqual(outShape);
      const ref = naive(outShape, x, (p) => { const q = new Array(shape.length); perm.forEach((d, i) => { q[d] = p[i]; }); return q; });
      expectClose('permute', y.data, ref, 0, 0);
      // negative dims name the same axes
      check(gradcheck((a) => permute(a, perm.map((d) => d - shape.length)), [x]));
    }), RUNS);
  });

  it('transpose swaps two dims', () => {
    fc.assert(fc.property(shapeArb.filter((s) => s.length >= 2), seedArb, (shape, seed) => {
      const rng = new Rng(seed);
      const d0 = rng.randintArray(0, shape.length, 1)[0], d1 = rng.randintArray(0, shape.length, 1)[0];
      const x = rng.normal(shape, 0, 1, 'float64');
      const outShape = [...shape];
      [outShape[d0], outShape[d1]] = [shape[d1], shape[d0]];
      const ref = naive(outShape, x, (p) => { const q = [...p]; [q[d0], q[d1]] = [p[d1], p[d0]]; return q; });
      expectClose('transpose', transpose(x, d0, d1).data, ref, 0, 0);
      check(gradcheck((a) => transpose(a, d0, d1), [x]));
    }), RUNS);
  });
});

describe('slice / concat / split / chunk', () => {
  it('slice follows Python slice semantics (negative and clamped bounds, steps)', () => {
    fc.assert(fc.property(shapeArb, seedArb, fc.integer({ min: -7, max: 7 }), fc.integer({ min: -7, max: 7 }), fc.integer({ min: 1, max: 3 }),
      (shape, seed, start, end, step) => {
        const rng = new Rng(seed);
        const axis = rng.randintArray(0, shape.length, 1)[0];
        const x = rng.normal(shape, 0, 1, 'float64');
        // Independent reference: the positions JavaScript's own range logic keeps.
        const len = shape[axis];
        const keep = Array.from({ length: len }, (_, i) => i).filter((i) => {
          const s = start < 0 ? Math.max(start + len, 0) : Math.min(start, len);
          const e = end < 0 ? Math.max(end + len, 0) : Math.min(end, len);
          return i >= s && i < e && (i - s) % step === 0;
        });
        const y = slice(x, axis - shape.length, start, end, step);
        const outShape = [...shape];
        outShape[axis] = keep.length;
        expect(y.shape).toEqual(outShape);
        expectClose('slice', y.data, naive(outShape, x, (p) => { const q = [...p]; q[axis] = keep[p[axis]]; return q; }), 0, 0);
        check(gradcheck((a) => slice(a, axis, start, end, step), [x]));
      }), RUNS);
  });

  it('concat joins along an axis; gradients reach every input', () => {
    fc.assert(fc.property(shapeArb, seedArb, fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }), (shape, seed, lens) => {
      const rng = new Rng(seed);
      const axis = rng.randintArray(0, shape.length, 1)[0];
      const xs = lens.map((l) => rng.normal(shape.map((d, i) => (i === axis ? l : d)), 0, 1, 'float64'));
      const y = concat(xs, axis);
      const outShape = shape.map((d, i) => (i === axis ? lens.reduce((a, b) => a + b, 0) : d));
      expect(y.shape).toEqual(outShape);
      const ref = Array.from({ length: y.size }, (_, i) => {
        const p = unravel(i, outShape);
        let k = 0, at = p[axis];
        while (at >= lens[k]) at -= lens[k++];
        const q = [...p];
        q[axis] = at;
        return xs[k].data[ravel(q, xs[k].shape)];
      });
      expectClose('concat', y.data, ref, 0, 0);
      check(gradcheck((...as) => concat(as, axis), xs));
    }), RUNS);
  });

  it('split by size and by sizes, and chunk, re-assemble x; each piece passes gradcheck', () => {
    fc.assert(fc.property(shapeArb, seedArb, fc.integer({ min: 1, max: 4 }), (shape, seed, size) => {
      const rng = new Rng(seed);
      const axis = rng.randintArray(0, shape.length, 1)[0];
      const len = shape[axis];
      const x = rng.normal(shape, 0, 1, 'float64');
      const bySize = split(x, size, axis);
      expect(bySize.map((p) => p.shape[axis])).toEqual(Array.from({ length: Math.ceil(len / size) }, (_, k) => Math.min(size, len - k * size)));
      expectClose('split pieces re-concatenated', concat(bySize, axis).data, x.data, 0, 0);
      const cut = rng.randintArray(0, len + 1, 1)[0];
      const bySizes = split(x, [cut, len - cut], axis);
      expectClose('split [a, b]', concat(bySizes, axis).data, x.data, 0, 0);
      const chunks = chunk(x, size, axis);
      expect(chunks.length).toBe(Math.ceil(len / Math.ceil(len / size)));
      for (let k = 0; k < bySize.length; k++) check(gradcheck((a) => split(a, size, axis)[k], [x]));
      check(gradcheck((a) => split(a, [cut, len - cut], axis)[1], [x]));
    }), RUNS);
  });

  it('split pieces all feeding one loss give a full gradient', () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7], [7]).requireGrad();
    const pieces = split(x, 3);
    for (const [k, p] of pieces.entries()) backward([[p, tensor(new Array(p.size).fill(k + 1), p.shape)]], { retainGraph: k < pieces.length - 1 });
    expect(x.grad!.toArray()).toEqual([1, 1, 1, 2, 2, 2, 3]);
  });
});

describe('indexSelect / gather', () => {
  it('indexSelect with repeated indices; the gradient accumulates duplicates', () => {
    fc.assert(fc.property(shapeArb, seedArb, fc.integer({ min: 1, max: 7 }), (shape, seed, m) => {
      const rng = new Rng(seed);
      const axis = rng.randintArray(0, shape.length, 1)[0];
      const idx = rng.randintArray(0, shape[axis], m);
      const x = rng.normal(shape, 0, 1, 'float64');
      const y = indexSelect(x, axis - shape.length, idx);
      const outShape = shape.map((d, i) => (i === axis ? m : d));
      expectClose('indexSelect', y.data, naive(outShape, x, (p) => { const q = [...p]; q[axis] = idx[p[axis]]; return q; }), 0, 0);
      check(gradcheck((a) => indexSelect(a, axis, Array.from(idx)), [x]));
    }), RUNS);
  });

  it('indexSelect counts a duplicated row twice', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [3, 2]).requireGrad();
    backward([[indexSelect(x, 0, [2, 0, 2]), tensor([1, 1, 1, 1, 1, 1], [3, 2])]]);
    expect(x.grad!.toArray()).toEqual([1, 1, 0, 0, 2, 2]);
  });

  it('gather follows torch.gather (index smaller than x on other dims, repeats)', () => {
    fc.assert(fc.property(shapeArb, seedArb, (shape, seed) => {
      const rng = new Rng(seed);
      const axis = rng.randintArray(0, shape.length, 1)[0];
      const idxShape = shape.map((d, i) => (i === axis ? rng.randintArray(1, 6, 1)[0] : rng.randintArray(1, d + 1, 1)[0]));
      const index = rng.randint(0, shape[axis], idxShape, 'float64');
      const x = rng.normal(shape, 0, 1, 'float64');
      const y = gather(x, axis, index);
      expect(y.shape).toEqual(idxShape);
      const ref = naive(idxShape, x, (p) => { const q = [...p]; q[axis] = index.data[ravel(p, idxShape)]; return q; });
      expectClose('gather', y.data, ref, 0, 0);
      check(gradcheck((a, ix) => gather(a, axis, ix), [x, index], { skip: [1] }));
      // Int32Array index with an explicit shape
      expectClose('gather Int32Array', gather(x, axis, Int32Array.from(index.data), idxShape).data, ref, 0, 0);
    }), RUNS);
  });

  it('rejects out-of-range indices', () => {
    const x = tensor([1, 2, 3, 4], [2, 2]);
    expect(() => indexSelect(x, 0, [2])).toThrow(/not an integer in \[0, 2\)/);
    expect(() => gather(x, 1, tensor([0, 2, 1, 1], [2, 2]))).toThrow(/index 2/);
  });
});

describe('expand / unsqueeze / squeeze', () => {
  it('expand repeats size-1 and leading dims; the gradient sums back', () => {
    fc.assert(fc.property(shapeArb, seedArb, fc.integer({ min: 0, max: 2 }), (target, seed, extra) => {
      const rng = new Rng(seed);
      const ones = rng.uniformArray(target.length);
      const drop = rng.randintArray(0, target.length + 1, 1)[0];
      const xShape = target.slice(drop).map((d, i) => (ones[i + drop] < 0.5 ? 1 : d));
      const full = [...Array.from({ length: extra }, () => 2), ...target];
      const x = rng.normal(xShape, 0, 1, 'float64');
      const y = expand(x, full);
      expect(y.shape).toEqual(full);
      const off = full.length - xShape.length;
      expectClose('expand', y.data, naive(full, x, (p) => p.slice(off).map((v, i) => (xShape[i] === 1 ? 0 : v))), 0, 0);
      check(gradcheck((a) => expand(a, full), [x]));
    }), RUNS);
  });

  it('expand keeps -1 dims and rejects incompatible shapes', () => {
    expect(expand(tensor([1, 2, 3], [3, 1]), [2, -1, 4]).shape).toEqual([2, 3, 4]);
    expect(() => expand(tensor([1, 2, 3], [3]), [2])).toThrow(/cannot broadcast/);
  });

  it('unsqueeze / squeeze move size-1 dims and pass the gradient through', () => {
    fc.assert(fc.property(shapeArb, seedArb, (shape, seed) => {
      const rng = new Rng(seed);
      const x = rng.normal(shape, 0, 1, 'float64');
      const d = rng.randintArray(-shape.length - 1, shape.length + 1, 1)[0];
      const u = unsqueeze(x, d);
      const at = d < 0 ? d + shape.length + 1 : d;
      expect(u.shape).toEqual([...shape.slice(0, at), 1, ...shape.slice(at)]);
      expect(squeeze(u, at).shape).toEqual(shape);
      // a listed dim that is not size 1 stays, as in PyTorch
      const big = shape.findIndex((s) => s > 1);
      if (big >= 0) expect(squeeze(x, big).shape).toEqual(shape);
      expect(squeeze(x).shape).toEqual(shape.filter((s) => s !== 1));
      check(gradcheck((a) => squeeze(unsqueeze(a, d)), [x]));
    }), RUNS);
  });
});

describe('float32 path', () => {
  it('agrees with float64 for a chain of layout ops', () => {
    const rng = new Rng(5);
    const x = rng.normal([3, 5, 4], 0, 1, 'float64');
    const y = rng.normal([3, 2, 4], 0, 1, 'float64');
    const index = rng.randint(0, 7, [4, 6, 3], 'float64');
    expectF32Agrees('layout chain', (a, b) => {
      const c = concat([a, b], 1); // (3, 7, 4)
      const t = transpose(c, 0, 2); // (4, 7, 3)
      const g = gather(t, 1, index); // (4, 6, 3)
      const s = slice(g, 1, -5, undefined, 2); // (4, 3, 3)
      const i = indexSelect(s, 0, [3, 0, 0]); // (3, 3, 3)
      return permute(expand(unsqueeze(i, 1), [2, 3, 2, 3, 3]), [4, 3, 2, 1, 0]); // (3, 3, 2, 3, 2)
    }, [x, y], { atol: 1e-6, rtol: 1e-6 });
  });
});
