// Matrix products: matmul (PyTorch semantics: 1-D operands, batch dims that broadcast), bmm, and
// linear (y = x W^T + b with PyTorch's (out, in) weight). Every product is a K.gemm call; the
// transposes of the backward are gemm flags, never copies. Not here: attention (its own fused
// kernel), convolutions, elementwise arithmetic.
// Mixed precision: setLinearPrecision('bf16') makes linear's three products (y, dx, dW) read
// their float32 operands as bf16 (fp32 sums, fp32 results; the stored weights stay fp32); the
// same thread flag sends qkvAttention to its bf16 kernels (ops/attention.ts).
import { uninit, zeros, type Tensor } from '../../tensor/tensor.ts';
import { broadcastShapes, broadcastStrides, fmtShape, sizeOf, type Shape } from '../../tensor/shape.ts';
import { K, type FArray } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { resultDtype, walk } from './broadcast.ts';

/** How linear's products read float32 operands on this thread: 'fp32' (default) or 'bf16'. */
let linearPrecision: 'fp32' | 'bf16' = 'fp32';

/** Sets this thread's linear precision (train.precision); returns the previous one. */
export function setLinearPrecision(p: 'fp32' | 'bf16'): 'fp32' | 'bf16' {
  if (p !== 'fp32' && p !== 'bf16') throw new Error(`setLinearPrecision: expected 'fp32' or 'bf16', got '${String(p)}'`);
  const prev = linearPrecision;
  linearPrecision = p;
  return prev;
}

export function getLinearPrecision(): 'fp32' | 'bf16' {
  return linearPrecision;
}

/** Runs fn (synchronous) with this thread's linear precision set to p, then restores it. */
export function withLinearPrecision<T>(p: 'fp32' | 'bf16', fn: () => T): T {
  const prev = setLinearPrecision(p);
  try { return fn(); } finally { linearPrecision = prev; }
}

/** One operand of a batch of products: matrix j lives at data[idx[j] * size ...], leading dim ld. */
interface Operand { data: FArray; idx: ArrayLike<number>; size: number; ld: number; trans: boolean }

/** An operand that is one matrix. */
const single = (data: FArray, ld: number, trans = false): Operand => ({ data, idx: [0], size: 0, ld, trans });

/** The common step of idx (0 for a repeated matrix), or null when idx is not an arithmetic progression. */
function stepOf(idx: ArrayLike<number>): number | null {
  if (idx.length < 2) return 0;
  const s = idx[1] - idx[0];
  for (let i = 2; i < idx.length; i++) if (idx[i] - idx[i - 1] !== s) return null;
  return s;
}

/**
 * C[c.idx[j]] (+)= op(A[a.idx[j]]) @ op(B[b.idx[j]]) for j < count; C is (m, n), zero on entry.
 * One strided gemm when the layout allows; otherwise one gemm per product over subarray views,
 * accumulating (beta = 1) when several products land on the same C (a broadcast operand's gradient).
 */
function gemmBatches(m: number, n: number, k: number, a: Operand, b: Operand, c: Omit<Operand, 'trans'>, precision: 'fp32' | 'bf16' = 'fp32', rowSumsA?: FArray): void {
  const count = c.idx.length;
  if (count === 0 || m === 0 || n === 0 || k === 0) return; // C stays zero
  const sa = stepOf(a.idx), sb = stepOf(b.idx), sc = stepOf(c.idx);
  const base = { transA: a.trans, transB: b.trans, m, n, k, lda: a.ld, ldb: b.ld, ldc: c.ld, precision };
  if (rowSumsA && count !== 1) throw new Error('gemmBatches: rowSumsA needs a single product');
  if (sa !== null && sb !== null && sc !== null && (sc > 0 || count === 1)) {
    K.gemm({
      ...base, rowSumsA,
      a: a.data.subarray(a.idx[0] * a.size), b: b.data.subarray(b.idx[0] * b.size), c: c.data.subarray(c.idx[0] * c.size),
      batch: count, strideA: sa * a.size, strideB: sb * b.size, strideC: sc * c.size,
    });
    return;
  }
  const view = (o: { data: FArray; size: number }, i: number) => o.data.subarray(i * o.size, (i + 1) * o.size);
  const accumulate = sc === null || sc === 0;
  for (let j = 0; j < count; j++) {
    K.gemm({ ...base, a: view(a, a.idx[j]), b: view(b, b.idx[j]), c: view(c, c.idx[j]), beta: accumulate ? 1 : 0 });
  }
}

/**
 * Matrix product with torch.matmul semantics. a (..., m, k) @ b (..., k, n) -> (..., m, n) where
 * the batch dims broadcast; a 1-D a (k) is a row and a 1-D b (k) a column, and the added dim is
 * dropped from the result (1-D @ 1-D is a 0-d dot product).
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const dtype = resultDtype(a, b);
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: operands need at least 1 dim, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const sa: Shape = a.ndim === 1 ? [1, a.shape[0]] : a.shape; // (..., m, k)
  const sb: Shape = b.ndim === 1 ? [b.shape[0], 1] : b.shape; // (..., k, n)
  const m = sa[sa.length - 2], k = sa[sa.length - 1], n = sb[sb.length - 1];
  if (sb[sb.length - 2] !== k) {
    throw new Error(`matmul: inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${k} vs ${sb[sb.length - 2]})`);
  }
  const batchA = sa.slice(0, -2), batchB = sb.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB);
  const out = zeros([...batch, ...(a.ndim > 1 ? [m] : []), ...(b.ndim > 1 ? [n] : [])], dtype);
  const count = sizeOf(batch);

  // b has no batch of its own: fold a's batch into its rows, one (count*m, k) @ (k, n) product.
  if (sizeOf(batchB) === 1 && sizeOf(batchA) === count) {
    const rows = count * m;
    gemmBatches(rows, n, k, single(a.data, k), single(b.data, n), single(out.data, n));
    return record('matmul', [a, b], out, (g) => [
      // dA (count*m, k) = dC (count*m, n) @ B^T
      a.requiresGrad ? withGrad(a, (da) => gemmBatches(rows, k, n, single(g.data, n), single(b.data, n, true), single(da, k))) : null,
      // dB (k, n) = A^T (k, count*m) @ dC (count*m, n)
      b.requiresGrad ? withGrad(b, (db) => gemmBatches(k, n, rows, single(a.data, k, true), single(g.data, n), single(db, n))) : null,
    ]);
  }

  // General case: which matrix of a and of b feeds output matrix j (broadcast dims repeat one).
  const ia = new Int32Array(count), ib = new Int32Array(count), ic = new Int32Array(count);
  walk(batch, broadcastStrides(batchA, batch), broadcastStrides(batchB, batch), (j, ja, jb) => {
    ia[j] = ja; ib[j] = jb; ic[j] = j;
  });
  const mk = m * k, kn = k * n, mn = m * n;
  gemmBatches(m, n, k, { data: a.data, idx: ia, size: mk, ld: k, trans: false }, { data: b.data, idx: ib, size: kn, ld: n, trans: false }, { data: out.data, idx: ic, size: mn, ld: n });
  return record('matmul', [a, b], out, (g) => [
    // dA[ia] += dC @ B^T: (m, n) @ (n, k)
    a.requiresGrad ? withGrad(a, (da) => gemmBatches(m, k, n, { data: g.data, idx: ic, size: mn, ld: n, trans: false }, { data: b.data, idx: ib, size: kn, ld: n, trans: true }, { data: da, idx: ia, size: mk, ld: k })) : null,
    // dB[ib] += A^T @ dC: (k, m) @ (m, n)
    b.requiresGrad ? withGrad(b, (db) => gemmBatches(k, n, m, { data: a.data, idx: ia, size: mk, ld: k, trans: true }, { data: g.data, idx: ic, size: mn, ld: n, trans: false }, { data: db, idx: ib, size: kn, ld: n })) : null,
  ]);
}

/**
 * A gradient shaped like x, filled by fill. Zero on entry unless `overwrites` (fill writes every
 * element: one gemm with beta 0 and no empty dim), which skips the pool buffer's zero-fill.
 */
function withGrad(x: Tensor, fill: (d: FArray) => void, overwrites = false): Tensor {
  const d = overwrites ? uninit(x.shape, x.dtype) : zeros(x.shape, x.dtype);
  fill(d.data);
  return d;
}

/** Batched matrix product of two 3-D tensors with equal batch: (B, m, k) @ (B, k, n) -> (B, m, n). No broadcasting. */
export function bmm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0]) {
    throw new Error(`bmm: expected (B, m, k) and (B, k, n) with the same B, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  return matmul(a, b);
}

/**
 * Affine map with PyTorch's nn.Linear layout: x (..., in), weight (out, in), bias (out) or none;
 * y (..., out) = x W^T + b. One gemm (W read transposed, bias added in its epilogue).
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const dtype = resultDtype(x, weight);
  if (bias) resultDtype(x, bias);
  if (weight.ndim !== 2) throw new Error(`linear: weight must be (out, in), got ${fmtShape(weight.shape)}`);
  const [outF, inF] = weight.shape;
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`linear: input ${fmtShape(x.shape)} does not end in in_features ${inF} (weight ${fmtShape(weight.shape)})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) throw new Error(`linear: bias must be (${outF}), got ${fmtShape(bias.shape)}`);
  const rowsOf = x.shape.slice(0, -1);
  const rows = sizeOf(rowsOf);
  // bf16 only for float32 (float64 is the gradcheck path); read once: the backward uses the same.
  const precision = dtype === 'float32' ? linearPrecision : 'fp32';
  const full = rows > 0 && outF > 0 && inF > 0; // every product below runs and overwrites its output
  const y = full ? uninit([...rowsOf, outF], dtype) : zeros([...rowsOf, outF], dtype); // (rows, out)
  if (inF === 0) {
    if (bias) for (let r = 0; r < rows; r++) y.data.set(bias.data, r * outF);
  } else if (rows > 0 && outF > 0) {
    K.gemm({ transA: false, transB: true, m: rows, n: outF, k: inF, a: x.data, lda: inF, b: weight.data, ldb: inF, c: y.data, ldc: outF, bias: bias?.data ?? null, precision });
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record('linear', inputs, y, (g) => {
    // db (out) = sum of dy over rows: summed by the dW product as it reads dy (rowSumsA, the same
    // numbers as reduceSum's strided sum), or by reduceSum when that product does not run or when
    // out is 1 (reduceSum then sums in 8 interleaved lanes).
    const db = bias?.requiresGrad ? uninit(bias.shape, bias.dtype) : null;
    const dbInGemm = !!db && weight.requiresGrad && full && outF > 1;
    const grads: (Tensor | null)[] = [
      // dx (rows, in) = dy (rows, out) @ W (out, in)
      x.requiresGrad ? withGrad(x, (dx) => gemmBatches(rows, inF, outF, single(g.data, outF), single(weight.data, inF), single(dx, inF), precision), full) : null,
      // dW (out, in) = dy^T (out, rows) @ x (rows, in)
      weight.requiresGrad ? withGrad(weight, (dw) => gemmBatches(outF, inF, rows, single(g.data, outF, true), single(x.data, inF), single(dw, inF), precision, dbInGemm ? db!.data : undefined), full) : null,
    ];
    if (db && !dbInGemm) K.reduceSum(g.data, db.data, 1, rows, outF);
    if (bias) grads.push(db);
    return grads;
  });
}
