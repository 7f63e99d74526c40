// Broadcasting machinery shared by the binary ops: a strided N-d walk that maps every output index
// to its two input offsets, and sumToShape, which undoes a broadcast in the backward pass.
import { empty, type Tensor, type DType } from '../../tensor/tensor.ts';
import { broadcastShapes, broadcastStrides, sameShape, sizeOf, type Shape } from '../../tensor/shape.ts';
import { K } from '../../kernels/index.ts';

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

/** Sum g (of a broadcast shape) back down to `shape`. Returns g itself when no reduction is needed. */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const out = empty(shape, g.dtype);
  const full = g.shape;
  const src = g.data, dst = out.data;
  const st = broadcastStrides(shape, full);
  // Fast path: shape is a suffix of full (bias-like): sum over leading rows with the kernel.
  const off = full.length - shape.length;
  if (shape.every((d, i) => d === full[off + i])) {
    K.reduceSum(src, dst, 1, sizeOf(full.slice(0, off)), out.size);
    return out;
  }
  walk(full, st, st, (i, io) => { dst[io] += src[i]; });
  return out;
}
