// Broadcasting machinery shared by the binary ops: binaryOp (add/sub/mul/div on K.binary after
// folding the broadcast into at most 4 strided dims), mapBinary (any function, a strided N-d walk
// with a callback) and sumToShape, which undoes a broadcast in the backward pass with K.reduceSum.
import { empty, uninit, type Tensor, type DType } from '../../tensor/tensor.ts';
import { broadcastShapes, broadcastStrides, sameShape, sizeOf, stridesOf, type Shape } from '../../tensor/shape.ts';
import { K, type BinOpCode, type FArray } from '../../kernels/index.ts';

export function resultDtype(a: Tensor, b: Tensor): DType {
  if (a.dtype !== b.dtype) throw new Error(`dtype mismatch: ${a.dtype} vs ${b.dtype} (cast one explicitly)`);
  return a.dtype;
}

/** out[i] = f(a[ia], b[ib]) over the broadcast shape. */
export function mapBinary(a: Tensor, b: Tensor, f: (x: number, y: number) => number): Tensor {
  const dtype = resultDtype(a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const out = empty(shape, dtype);
  const o = out.data, x = a.data, y = b.data;
  const n = o.length;
  if (sameShape(a.shape, b.shape)) {
    for (let i = 0; i < n; i++) o[i] = f(x[i], y[i]);
  } else if (b.size === 1) {
    const yv = y[0];
    for (let i = 0; i < n; i++) o[i] = f(x[i], yv);
  } else if (a.size === 1) {
    const xv = x[0];
    for (let i = 0; i < n; i++) o[i] = f(xv, y[i]);
  } else {
    walk(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape), (i, ia, ib) => {
      o[i] = f(x[ia], y[ib]);
    });
  }
  return out;
}

/**
 * The index space `shape` read by operands with strides `strides[k]` (0 on broadcast dims), with
 * size-1 dims dropped and neighbouring dims merged wherever every operand walks them as one
 * (contiguously, or both broadcast). Always at least one dim.
 */
export function foldDims(shape: Shape, strides: readonly number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    // dim d merges into the previous kept dim p when stride_p == stride_d * n_d for every operand
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => { outStrides[k][last] = s[d]; });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [0]) };
  return { shape: outShape, strides: outStrides };
}

const pad4 = (v: number[], fill: number): number[] => [...new Array<number>(Math.max(0, 4 - v.length)).fill(fill), ...v];

/**
 * out = a op b (add, sub, mul, div) with NumPy broadcasting, through K.binary (native for
 * float32, no per-element callback). `out`, when given, must have the broadcast shape and may be a.
 */
export function binaryOp(op: BinOpCode, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  const dtype = resultDtype(a, b);
  const shape = broadcastShapes(a.shape, b.shape);
  const o = out ?? uninit(shape, dtype);
  if (o.size === 0) return o;
  const f = foldDims(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  const nd = f.shape.length;
  if (nd <= 4) {
    K.binary(op, a.data, b.data, o.data, pad4(f.shape, 1), pad4(f.strides[0], 0), pad4(f.strides[1], 0));
    return o;
  }
  // More than 4 unfoldable dims: one K.binary per index of the leading nd - 4 dims.
  const lead = f.shape.slice(0, nd - 4), inner = f.shape.slice(nd - 4), block = sizeOf(inner);
  const [sa, sb] = f.strides;
  walk(lead, sa.slice(0, nd - 4), sb.slice(0, nd - 4), (i, ia, ib) => {
    K.binary(op, a.data.subarray(ia), b.data.subarray(ib), o.data.subarray(i * block, (i + 1) * block), inner, sa.slice(nd - 4), sb.slice(nd - 4));
  });
  return o;
}

/** Visit every index of `shape` in row-major order with the matching offsets in two strided inputs. */
export function walk(shape: Shape, sa: number[], sb: number[], visit: (i: number, ia: number, ib: number) => void): void {
  const nd = shape.length;
  const n = sizeOf(shape);
  if (n === 0) return;
  if (nd === 0) { visit(0, 0, 0); return; }
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1, inner = shape[last], sal = sa[last], sbl = sb[last];
  let ia = 0, ib = 0;
  for (let i = 0; i < n; i += inner) {
    for (let j = 0; j < inner; j++) visit(i + j, ia + j * sal, ib + j * sbl);
    // advance the outer index (odometer)
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < shape[d]) break;
      ia -= sa[d] * shape[d];
      ib -= sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * Sum g (of a broadcast shape) back down to `shape`. Returns g itself when no reduction is needed.
 * The dims fold into alternating kept and summed runs; each summed run is one K.reduceSum over
 * (outer, len, inner), last run first.
 */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const full = g.shape;
  const st = broadcastStrides(shape, full);
  // Both operands' strides decide the folding: g's own (contiguous) and the target's (0 = summed).
  const f = foldDims(full, [stridesOf(full), st]);
  const out = uninit(shape, g.dtype);
  if (out.size === 0) return out;
  if (g.size === 0) { out.data.fill(0); return out; }
  const dims = [...f.shape], summed = f.strides[1].map((s, i) => s === 0 && f.shape[i] > 1);
  if (!summed.some(Boolean)) { out.data.set(g.data); return out; } // only size-1 dims differ
  let src: FArray = g.data;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (!summed[i]) continue;
    const last = summed.slice(0, i).every((r) => !r); // no summed dim left before this one
    const outer = sizeOf(dims.slice(0, i)), inner = sizeOf(dims.slice(i + 1));
    const dst: FArray = last ? out.data : uninit([outer * inner], g.dtype).data;
    K.reduceSum(src, dst, outer, dims[i], inner); // (outer, len, inner) -> (outer, inner)
    dims[i] = 1;
    src = dst;
  }
  return out;
}
