// Loss functions with PyTorch semantics, each a fused forward/backward (sums in float64):
// mseLoss, smoothL1Loss, cosineSimilarity, crossEntropy (class indices, label smoothing,
// ignoreIndex) and gaussianKL (the VAE prior term). Not here: diffusion/flow losses and the
// REPA-family alignment losses (they compose these in methods/ and diffusion/).
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape, normAxis, sameShape, sizeOf, type Shape } from '../../tensor/shape.ts';
import { record } from '../tape.ts';
import { isMetaArray } from '../../kernels/meta.ts';
import { resultDtype } from './broadcast.ts';
import { logSoftmaxRows } from './softmax.ts';

export type LossReduction = 'mean' | 'sum' | 'none';

function checkReduction(r: string, what: string): void {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new Error(`${what}: reduction must be 'mean', 'sum' or 'none', got '${r}'`);
}

/**
 * Output for per-item losses: the items themselves ('none', shaped `shape`), their sum, or their
 * sum / denom ('mean'). Returns the output and, for the backward, the gradient factor of item i.
 */
function reduceItems(items: Float64Array, shape: Shape, reduction: LossReduction, denom: number, like: Tensor) {
  if (reduction === 'none') {
    const out = empty(shape, like.dtype);
    out.data.set(items);
    return { out, factor: (g: Tensor) => (i: number) => g.data[i] };
  }
  let s = 0;
  for (let i = 0; i < items.length; i++) s += items[i];
  const scale = reduction === 'mean' ? 1 / denom : 1;
  const out = empty([], like.dtype);
  out.data[0] = s * scale;
  return { out, factor: (g: Tensor) => { const v = g.data[0] * scale; return () => v; } };
}

/** Elementwise loss of d = pred - target with derivative dl; pred and target have the same shape. */
function pointwise(
  name: string, pred: Tensor, target: Tensor, reduction: LossReduction,
  l: (d: number) => number, dl: (d: number) => number,
): Tensor {
  resultDtype(pred, target);
  checkReduction(reduction, name);
  if (!sameShape(pred.shape, target.shape)) throw new Error(`${name}: pred ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} differ`);
  const n = pred.size, p = pred.data, t = target.data;
  // Shape-only tensors (kernels/meta.ts): no per-element work, and no n-long float64 buffer either.
  const m = isMetaArray(p) || isMetaArray(t) ? 0 : n;
  const items = new Float64Array(m);
  for (let i = 0; i < m; i++) items[i] = l(p[i] - t[i]);
  const { out, factor } = reduceItems(items, pred.shape, reduction, n, pred);
  return record(name, [pred, target], out, (g) => {
    const f = factor(g);
    const dp = empty(pred.shape, pred.dtype);
    for (let i = 0; i < m; i++) dp.data[i] = f(i) * dl(p[i] - t[i]);
    let dt: Tensor | null = null;
    if (target.requiresGrad) {
      dt = empty(target.shape, target.dtype);
      for (let i = 0; i < m; i++) dt.data[i] = -dp.data[i];
    }
    return [pred.requiresGrad ? dp : null, dt];
  });
}

/** Squared error (pred - target)^2, averaged ('mean', default), summed, or per element ('none'). Same shapes. */
export function mseLoss(pred: Tensor, target: Tensor, reduction: LossReduction = 'mean'): Tensor {
  return pointwise('mseLoss', pred, target, reduction, (d) => d * d, (d) => 2 * d);
}

/**
 * torch's smooth_l1_loss: with d = pred - target, 0.5 d^2 / beta where |d| < beta, else
 * |d| - 0.5 beta; beta = 0 is the L1 loss. Same shapes.
 */
export function smoothL1Loss(pred: Tensor, target: Tensor, beta = 1, reduction: LossReduction = 'mean'): Tensor {
  if (!(beta >= 0)) throw new Error(`smoothL1Loss: beta must be >= 0, got ${beta}`);
  return pointwise(
    'smoothL1Loss', pred, target, reduction,
    (d) => (Math.abs(d) < beta ? (0.5 * d * d) / beta : Math.abs(d) - 0.5 * beta),
    (d) => (Math.abs(d) < beta ? d / beta : Math.sign(d)),
  );
}

/**
 * Cosine similarity along `axis` (default last): a.b / (max(|a|, eps) * max(|b|, eps)), the
 * definition of torch >= 2.0 (eps clamps each norm). a and b have the same shape; the result
 * drops `axis`. A clamped norm is a constant for the gradient.
 */
export function cosineSimilarity(a: Tensor, b: Tensor, axis = -1, eps = 1e-8): Tensor {
  resultDtype(a, b);
  if (!sameShape(a.shape, b.shape)) throw new Error(`cosineSimilarity: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ`);
  const ax = normAxis(axis, a.ndim);
  const len = a.ndim === 0 ? 1 : a.shape[ax];
  const outer = sizeOf(a.shape.slice(0, ax)), inner = sizeOf(a.shape.slice(ax + 1));
  const rows = outer * inner;
  const xa = a.data, xb = b.data;
  // per output row: clamped norms, cosine, and whether each norm was clamped
  const na = new Float64Array(rows), nb = new Float64Array(rows), cos = new Float64Array(rows);
  const ca = new Uint8Array(rows), cb = new Uint8Array(rows);
  const out = empty(a.shape.filter((_, i) => i !== ax), a.dtype);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const r = o * inner + i, base = o * len * inner + i;
      let s = 0, aa = 0, bb = 0;
      for (let j = 0; j < len; j++) {
        const u = xa[base + j * inner], v = xb[base + j * inner];
        s += u * v; aa += u * u; bb += v * v;
      }
      const la = Math.sqrt(aa), lb = Math.sqrt(bb);
      ca[r] = la > eps ? 0 : 1; cb[r] = lb > eps ? 0 : 1;
      na[r] = Math.max(la, eps); nb[r] = Math.max(lb, eps);
      cos[r] = s / (na[r] * nb[r]);
      out.data[r] = cos[r];
    }
  }
  return record('cosineSimilarity', [a, b], out, (g) => {
    // d cos / d a = b / (na nb) - cos * a / na^2 (second term absent when na is clamped)
    const grad = (x: Tensor, y: ArrayLike<number>, nx: Float64Array, ny: Float64Array, cx: Uint8Array): Tensor => {
      const d = empty(x.shape, x.dtype);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const r = o * inner + i, base = o * len * inner + i;
          const gy = g.data[r] / (nx[r] * ny[r]), gx = cx[r] ? 0 : (g.data[r] * cos[r]) / (nx[r] * nx[r]);
          for (let j = 0; j < len; j++) {
            const k = base + j * inner;
            d.data[k] = gy * y[k] - gx * x.data[k];
          }
        }
      }
      return d;
    };
    return [a.requiresGrad ? grad(a, xb, na, nb, ca) : null, b.requiresGrad ? grad(b, xa, nb, na, cb) : null];
  });
}

export interface CrossEntropyOptions {
  /** Mix the one-hot target with the uniform distribution: q = (1 - s) onehot + s / C. Default 0. */
  labelSmoothing?: number;
  reduction?: LossReduction;
  /** Rows whose target equals this contribute nothing (and 'mean' does not count them). Default -100. */
  ignoreIndex?: number;
}

/**
 * torch's cross_entropy with class-index targets. logits (N, C); target (N) as integer-valued
 * floats or an Int32Array / number[]. Row loss = -sum_c q_c log softmax(logits)_c with
 * q = (1 - s) onehot(target) + s / C. 'mean' divides by the number of rows not ignored
 * (NaN when all are), 'sum' adds them, 'none' returns (N) with 0 for ignored rows.
 */
export function crossEntropy(logits: Tensor, target: Tensor | Int32Array | readonly number[], opts: CrossEntropyOptions = {}): Tensor {
  const s = opts.labelSmoothing ?? 0, reduction = opts.reduction ?? 'mean', ignore = opts.ignoreIndex ?? -100;
  checkReduction(reduction, 'crossEntropy');
  if (!(s >= 0 && s <= 1)) throw new Error(`crossEntropy: labelSmoothing must be in [0, 1], got ${s}`);
  if (logits.ndim !== 2) throw new Error(`crossEntropy: logits must be (N, C), got ${fmtShape(logits.shape)}`);
  const [n, c] = logits.shape;
  const tv: ArrayLike<number> = Array.isArray(target) || target instanceof Int32Array ? (target as ArrayLike<number>) : (target as Tensor).data;
  if (tv.length !== n) throw new Error(`crossEntropy: ${tv.length} targets for ${n} rows`);
  const y = new Int32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const t = tv[i];
    if (t === ignore) { y[i] = -1; continue; }
    if (!Number.isInteger(t) || t < 0 || t >= c) throw new Error(`crossEntropy: target[${i}] = ${t} is not a class index in [0, ${c})`);
    y[i] = t;
    count++;
  }
  const logp = empty([n, c], logits.dtype); // (N, C)
  logSoftmaxRows(logits.data, logp.data, n, c);
  const items = new Float64Array(n);
  const shapeOnly = isMetaArray(logp.data); // kernels/meta.ts: count nothing, compute nothing
  for (let i = 0; i < (shapeOnly ? 0 : n); i++) {
    if (y[i] < 0) continue;
    const row = i * c;
    let all = 0;
    for (let j = 0; j < c; j++) all += logp.data[row + j];
    items[i] = -((1 - s) * logp.data[row + y[i]] + (s / c) * all);
  }
  const { out, factor } = reduceItems(items, [n], reduction, count, logits);
  return record('crossEntropy', [logits], out, (g) => {
    // d row / d logits = softmax - q
    const f = factor(g);
    const d = empty([n, c], logits.dtype);
    for (let i = 0; i < (shapeOnly ? 0 : n); i++) {
      if (y[i] < 0) continue;
      const gi = f(i), row = i * c;
      for (let j = 0; j < c; j++) d.data[row + j] = gi * (Math.exp(logp.data[row + j]) - s / c);
      d.data[row + y[i]] -= gi * (1 - s);
    }
    return [d];
  });
}

/**
 * KL(N(mean, exp(logvar)) || N(0, I)) of a diagonal Gaussian per sample: dim 0 is the batch and
 * the per-element terms 0.5 (mean^2 + exp(logvar) - 1 - logvar) are summed over every other dim.
 * 'mean' (default) averages the per-sample KL over the batch, 'sum' adds it, 'none' returns (B).
 */
export function gaussianKL(mean: Tensor, logvar: Tensor, reduction: LossReduction = 'mean'): Tensor {
  resultDtype(mean, logvar);
  checkReduction(reduction, 'gaussianKL');
  if (!sameShape(mean.shape, logvar.shape) || mean.ndim < 1) {
    throw new Error(`gaussianKL: mean ${fmtShape(mean.shape)} and logvar ${fmtShape(logvar.shape)} must have one shape (B, ...)`);
  }
  const bsz = mean.shape[0], per = bsz === 0 ? 0 : mean.size / bsz;
  const mu = mean.data, lv = logvar.data;
  const items = new Float64Array(bsz);
  for (let b = 0; b < bsz; b++) {
    let k = 0;
    for (let i = b * per; i < (b + 1) * per; i++) k += mu[i] * mu[i] + Math.exp(lv[i]) - 1 - lv[i];
    items[b] = 0.5 * k;
  }
  const { out, factor } = reduceItems(items, [bsz], reduction, bsz, mean);
  return record('gaussianKL', [mean, logvar], out, (g) => {
    const f = factor(g);
    const dm = mean.requiresGrad ? empty(mean.shape, mean.dtype) : null;
    const dl = logvar.requiresGrad ? empty(logvar.shape, logvar.dtype) : null;
    for (let b = 0; b < bsz; b++) {
      const gb = f(b);
      for (let i = b * per; i < (b + 1) * per; i++) {
        if (dm) dm.data[i] = gb * mu[i];
        if (dl) dl.data[i] = gb * 0.5 * (Math.exp(lv[i]) - 1);
      }
    }
    return [dm, dl];
  });
}
