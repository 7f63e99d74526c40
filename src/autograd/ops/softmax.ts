// softmax and logSoftmax over any axis, max-subtracted so large logits do not overflow. Rows of the
// last axis go straight to the kernels; another axis is transposed to last in a private copy
// ((outer, len, inner) <-> (outer, inner, len)) and back. Not here: attention's fused softmax,
// cross-entropy (losses.ts, which reuses logSoftmaxRows).
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { normAxis, sizeOf } from '../../tensor/shape.ts';
import { K, type FArray } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { isMetaArray } from '../../kernels/meta.ts';

/** dst (outer, q, p) = src (outer, p, q) transposed per outer block. */
function swapLast(src: FArray, dst: FArray, outer: number, p: number, q: number): void {
  for (let o = 0; o < outer; o++) {
    const base = o * p * q;
    for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) dst[base + j * p + i] = src[base + i * q + j];
  }
}

/** log-softmax of each row: y = x - max - log(sum exp(x - max)), sums in float64. x, y: (rows, cols). */
export function logSoftmaxRows(x: FArray, y: FArray, rows: number, cols: number): void {
  if (isMetaArray(y)) return; // shape-only (kernels/meta.ts)
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c] > mx) mx = x[o + c];
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[o + c] - mx);
    const lse = mx + Math.log(s);
    for (let c = 0; c < cols; c++) y[o + c] = x[o + c] - lse;
  }
}

/** dx = dy - exp(y) * sum(dy) per row, y the log-softmax. */
function logSoftmaxRowsBackward(y: FArray, dy: FArray, dx: FArray, rows: number, cols: number): void {
  if (isMetaArray(dx)) return;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += dy[o + c];
    for (let c = 0; c < cols; c++) dx[o + c] = dy[o + c] - Math.exp(y[o + c]) * s;
  }
}

type RowFn = (x: FArray, y: FArray, rows: number, cols: number) => void;
type RowBack = (y: FArray, dy: FArray, dx: FArray, rows: number, cols: number) => void;

/** Apply a row op along `axis`; the backward receives the output in the same row layout. */
function alongAxis(name: string, x: Tensor, axis: number, fwd: RowFn, bwd: RowBack): Tensor {
  const ax = normAxis(axis, x.ndim);
  const len = x.ndim === 0 ? 1 : x.shape[ax];
  const outer = sizeOf(x.shape.slice(0, ax)), inner = sizeOf(x.shape.slice(ax + 1));
  const rows = outer * inner;
  const out = empty(x.shape, x.dtype);
  if (inner === 1) {
    fwd(x.data, out.data, rows, len);
    return record(name, [x], out, (g) => {
      const dx = empty(x.shape, x.dtype);
      bwd(out.data, g.data, dx.data, rows, len);
      return [dx];
    });
  }
  const xt = empty([rows * len], x.dtype), yt = empty([rows * len], x.dtype); // (outer, inner, len)
  swapLast(x.data, xt.data, outer, len, inner);
  fwd(xt.data, yt.data, rows, len);
  swapLast(yt.data, out.data, outer, inner, len);
  return record(name, [x], out, (g) => {
    const gt = empty([rows * len], x.dtype), dt = empty([rows * len], x.dtype);
    swapLast(g.data, gt.data, outer, len, inner);
    bwd(yt.data, gt.data, dt.data, rows, len);
    const dx = empty(x.shape, x.dtype);
    swapLast(dt.data, dx.data, outer, inner, len);
    return [dx];
  });
}

/** softmax(x) along `axis` (default last, negative allowed), like torch.softmax. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('softmax', x, axis, K.softmaxForward, K.softmaxBackward);
}

/** log(softmax(x)) along `axis`, computed as x - logsumexp(x) (stable for large logits). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis('logSoftmax', x, axis, logSoftmaxRows, logSoftmaxRowsBackward);
}
