// Layout ops: permute/transpose, slice, concat/split/chunk, indexSelect, gather, expand, and the
// unsqueeze/squeeze views. Every op except unsqueeze/squeeze materialises a contiguous row-major
// copy (tensors are always contiguous here; there are no strided views). Backwards scatter the
// gradient back (scatter-adds where an input element feeds several outputs). Not here: reshape
// (ops/shape.ts) and broadcasting arithmetic (ops/arith.ts).
import { empty, uninit, type Tensor } from '../../tensor/tensor.ts';
import { broadcastShapes, broadcastStrides, fmtShape, normAxis, sameShape, sizeOf, stridesOf, type Shape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import { sumToShape, walk } from './broadcast.ts';
import { reshape } from './shape.ts';
import { isMetaArray } from '../../kernels/meta.ts';

/** Integer indices given as a tensor (float values that must be integers) or as an array. */
export type Indices = Int32Array | readonly number[] | Tensor;

/** Indices as an Int32Array, checked to be integers in [0, bound). */
function toIndices(idx: Indices, bound: number, what: string): Int32Array {
  const src: ArrayLike<number> = Array.isArray(idx) || idx instanceof Int32Array ? idx as ArrayLike<number> : (idx as Tensor).data;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (!Number.isInteger(v) || v < 0 || v >= bound) throw new Error(`${what}: index ${v} at position ${i} is not an integer in [0, ${bound})`);
    out[i] = v;
  }
  return out;
}

/** (outer, len, inner) sizes of x around `axis`. */
function around(shape: Shape, axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis], sizeOf(shape.slice(axis + 1))];
}

function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((d) => x.shape[d]);
  const st = stridesOf(x.shape);
  const ps = perm.map((d) => st[d]);
  const out = uninit(shape, x.dtype); // every element is written below
  const o = out.data, s = x.data, n = out.size, nd = shape.length;
  if (n === 0 || isMetaArray(o)) return out; // shape-only (kernels/meta.ts): nothing to copy
  if (nd === 0) { o[0] = s[0]; return out; }
  // walk() without its per-element callback: this copy is on the attention hot path
  const last = nd - 1, inner = shape[last], si = ps[last];
  const idx = new Array<number>(nd).fill(0);
  let ia = 0;
  for (let i = 0; i < n; i += inner) {
    for (let j = 0, a = ia; j < inner; j++, a += si) o[i + j] = s[a];
    for (let d = last - 1; d >= 0; d--) {
      ia += ps[d];
      if (++idx[d] < shape[d]) break;
      ia -= ps[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/** torch.permute: output dim i is input dim dims[i] (dims may be negative). Copies. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const nd = x.ndim;
  if (dims.length !== nd) throw new Error(`permute: ${dims.length} dims given for ${nd}-d tensor ${fmtShape(x.shape)}`);
  const perm = dims.map((d) => normAxis(d, nd));
  if (new Set(perm).size !== nd) throw new Error(`permute: dims [${dims.join(', ')}] repeat an axis`);
  const inv = new Array<number>(nd);
  perm.forEach((d, i) => { inv[d] = i; });
  return record('permute', [x], permuteRaw(x, perm), (g) => [permuteRaw(g, inv)]);
}

/** torch.transpose: swap dims d0 and d1. Copies. */
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  const a = normAxis(d0, x.ndim), b = normAxis(d1, x.ndim);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/**
 * x[..., start:end:step, ...] along `axis` with Python slice semantics: negative start/end count
 * from the end, out-of-range bounds clamp, step > 0. end defaults to the dim size. Copies.
 */
export function slice(x: Tensor, axis: number, start = 0, end?: number, step = 1): Tensor {
  const ax = normAxis(axis, x.ndim);
  const [outer, len, inner] = around(x.shape, ax);
  if (!Number.isInteger(step) || step <= 0) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + len : v, 0), len);
  const s = clamp(start), e = clamp(end ?? len);
  const count = e > s ? Math.ceil((e - s) / step) : 0;
  const shape = [...x.shape];
  shape[ax] = count;
  const out = empty(shape, x.dtype);
  const o = out.data, src = x.data;
  for (let b = 0; b < (isMetaArray(o) ? 0 : outer); b++) {
    for (let j = 0; j < count; j++) {
      const from = (b * len + s + j * step) * inner, to = (b * count + j) * inner;
      for (let i = 0; i < inner; i++) o[to + i] = src[from + i];
    }
  }
  return record('slice', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype); // zero-filled
    const d = dx.data, gd = g.data;
    for (let b = 0; b < (isMetaArray(d) ? 0 : outer); b++) {
      for (let j = 0; j < count; j++) {
        const to = (b * len + s + j * step) * inner, from = (b * count + j) * inner;
        for (let i = 0; i < inner; i++) d[to + i] = gd[from + i];
      }
    }
    return [dx];
  });
}

/** torch.cat: join tensors along `axis`; all other dims must match. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const first = xs[0];
  const ax = normAxis(axis, first.ndim);
  for (const x of xs) {
    const ok = x.ndim === first.ndim && x.dtype === first.dtype && x.shape.every((d, i) => i === ax || d === first.shape[i]);
    if (!ok) throw new Error(`concat: ${fmtShape(x.shape)} ${x.dtype} does not fit ${fmtShape(first.shape)} ${first.dtype} along axis ${ax}`);
  }
  const [outer, , inner] = around(first.shape, ax);
  const lens = xs.map((x) => x.shape[ax]);
  const total = lens.reduce((a, b) => a + b, 0);
  const shape = [...first.shape];
  shape[ax] = total;
  const out = empty(shape, first.dtype);
  const o = out.data;
  for (let b = 0; b < outer; b++) {
    let off = 0;
    xs.forEach((x, k) => {
      const block = lens[k] * inner;
      o.set(x.data.subarray(b * block, (b + 1) * block), (b * total + off) * inner);
      off += lens[k];
    });
  }
  return record('concat', xs, out, (g) => {
    let off = 0;
    return xs.map((x, k) => {
      const start = off;
      off += lens[k];
      if (!x.requiresGrad) return null;
      const dx = empty(x.shape, x.dtype);
      const block = lens[k] * inner;
      for (let b = 0; b < outer; b++) {
        const from = (b * total + start) * inner;
        dx.data.set(g.data.subarray(from, from + block), b * block);
      }
      return dx;
    });
  });
}

/**
 * torch.split: a number is the size of each piece (the last may be smaller); an array gives the
 * size of every piece and must sum to the dim. Pieces are copies.
 */
export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, x.ndim);
  const len = x.shape[ax];
  let parts: number[];
  if (typeof sizes === 'number') {
    if (!Number.isInteger(sizes) || sizes <= 0) throw new Error(`split: piece size must be a positive integer, got ${sizes}`);
    parts = [];
    for (let s = 0; s < len; s += sizes) parts.push(Math.min(sizes, len - s));
    if (parts.length === 0) parts.push(0);
  } else {
    parts = [...sizes];
    const sum = parts.reduce((a, b) => a + b, 0);
    if (sum !== len || parts.some((p) => !Number.isInteger(p) || p < 0)) {
      throw new Error(`split: sizes [${parts.join(', ')}] do not sum to dim ${ax} of ${fmtShape(x.shape)}`);
    }
  }
  let off = 0;
  return parts.map((p) => {
    const piece = slice(x, ax, off, off + p);
    off += p;
    return piece;
  });
}

/** torch.chunk: `chunks` pieces of size ceil(len / chunks) (fewer when len is small). */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  const len = x.shape[normAxis(axis, x.ndim)];
  if (!Number.isInteger(chunks) || chunks <= 0) throw new Error(`chunk: chunks must be a positive integer, got ${chunks}`);
  return split(x, Math.max(Math.ceil(len / chunks), 1), axis);
}

/** torch.index_select: out takes x's slices at `indices` along `axis`; repeats allowed. */
export function indexSelect(x: Tensor, axis: number, indices: Indices): Tensor {
  const ax = normAxis(axis, x.ndim);
  const [outer, len, inner] = around(x.shape, ax);
  const idx = toIndices(indices, len, 'indexSelect');
  const m = idx.length;
  const shape = [...x.shape];
  shape[ax] = m;
  const out = empty(shape, x.dtype);
  const o = out.data, src = x.data;
  for (let b = 0; b < outer; b++) {
    for (let j = 0; j < m; j++) {
      const from = (b * len + idx[j]) * inner;
      o.set(src.subarray(from, from + inner), (b * m + j) * inner);
    }
  }
  return record('indexSelect', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype);
    const d = dx.data, gd = g.data;
    for (let b = 0; b < (isMetaArray(d) ? 0 : outer); b++) {
      for (let j = 0; j < m; j++) {
        const to = (b * len + idx[j]) * inner, from = (b * m + j) * inner;
        for (let i = 0; i < inner; i++) d[to + i] += gd[from + i];
      }
    }
    return [dx];
  });
}

/**
 * torch.gather: out[p] = x[p with p[axis] replaced by index[p]]. index has x's rank and a shape
 * no larger than x's on the other dims; out has index's shape. An Int32Array/array index needs
 * `indexShape`, unless it is x's shape with only the `axis` dim changed (then it is inferred).
 */
export function gather(x: Tensor, axis: number, index: Indices, indexShape?: Shape): Tensor {
  const ax = normAxis(axis, x.ndim);
  let shape: Shape;
  if (indexShape) shape = indexShape;
  else if (!(Array.isArray(index) || index instanceof Int32Array)) shape = (index as Tensor).shape;
  else {
    const rest = sizeOf(x.shape) / Math.max(x.shape[ax], 1);
    const n = (index as ArrayLike<number>).length;
    if (rest === 0 || n % rest !== 0) throw new Error(`gather: cannot infer the shape of ${n} indices for ${fmtShape(x.shape)} axis ${ax}; pass indexShape`);
    shape = x.shape.map((d, i) => (i === ax ? n / rest : d));
  }
  if (shape.length !== x.ndim || shape.some((d, i) => i !== ax && d > x.shape[i])) {
    throw new Error(`gather: index shape ${fmtShape(shape)} does not fit ${fmtShape(x.shape)} at axis ${ax}`);
  }
  const idx = toIndices(index, x.shape[ax], 'gather');
  if (idx.length !== sizeOf(shape)) throw new Error(`gather: ${idx.length} indices for index shape ${fmtShape(shape)}`);
  const xs = stridesOf(x.shape);
  const axStride = xs[ax];
  const base = xs.map((s, i) => (i === ax ? 0 : s)); // offset of p in x with p[axis] = 0
  const out = empty(shape, x.dtype);
  const o = out.data, src = x.data;
  walk(shape, base, base, (i, ia) => { o[i] = src[ia + idx[i] * axStride]; });
  return record('gather', [x], out, (g) => {
    const dx = empty(x.shape, x.dtype);
    const d = dx.data, gd = g.data;
    walk(shape, base, base, (i, ia) => { d[ia + idx[i] * axStride] += gd[i]; });
    return [dx];
  });
}

/**
 * torch.expand / numpy broadcast_to: repeat size-1 dims (and add leading dims) up to `shape`;
 * -1 keeps the input's size. Copies; the gradient sums back over the repeated dims.
 */
export function expand(x: Tensor, shape: Shape): Tensor {
  const off = shape.length - x.ndim;
  if (off < 0) throw new Error(`expand: target ${fmtShape(shape)} has fewer dims than ${fmtShape(x.shape)}`);
  const target = shape.map((d, i) => (d === -1 && i >= off ? x.shape[i - off] : d));
  if (!sameShape(broadcastShapes(x.shape, target), target)) {
    throw new Error(`expand: ${fmtShape(x.shape)} cannot broadcast to ${fmtShape(shape)}`);
  }
  const st = broadcastStrides(x.shape, target);
  const out = empty(target, x.dtype);
  const o = out.data, src = x.data;
  walk(target, st, st, (i, ia) => { o[i] = src[ia]; });
  return record('expand', [x], out, (g) => [sumToShape(g, x.shape)]);
}

export const broadcastTo = expand;

/** torch.unsqueeze: insert a size-1 dim at `dim` (in [-ndim-1, ndim]). A view. */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normAxis(dim, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

/**
 * torch.squeeze: drop size-1 dims — all of them, or those among `dims` (a listed dim that is not
 * size 1 is left alone, as in PyTorch). A view.
 */
export function squeeze(x: Tensor, dims?: number | readonly number[]): Tensor {
  const pick = dims === undefined ? null : new Set((typeof dims === 'number' ? [dims] : dims).map((d) => normAxis(d, x.ndim)));
  return reshape(x, x.shape.filter((d, i) => d !== 1 || (pick !== null && !pick.has(i))));
}
