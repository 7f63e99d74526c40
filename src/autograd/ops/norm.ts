// Normalisation ops with PyTorch semantics: layerNorm over the last dim (the fused kernel),
// groupNorm (the same kernel over (N*G) rows of (C/G)*spatial, then a per-channel affine), and
// batchNorm (train: batch statistics and the running-stat update; eval: running statistics).
// Not here: RMSNorm or other variants; the nn.Module wrappers that own weights and buffers.
import { empty, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape, sizeOf } from '../../tensor/shape.ts';
import { K } from '../../kernels/index.ts';
import { record } from '../tape.ts';
import { isMetaArray, metaCount } from '../../kernels/meta.ts';

function checkParam(p: Tensor | null, n: number, x: Tensor, what: string): void {
  if (p === null) return;
  if (p.size !== n || p.ndim !== 1) throw new Error(`${what}: expected shape [${n}], got ${fmtShape(p.shape)}`);
  if (p.dtype !== x.dtype) throw new Error(`${what}: dtype ${p.dtype} does not match input ${x.dtype}`);
}

/**
 * F.layer_norm(x, [C], weight, bias, eps) over the last dim. x: (..., C); weight, bias: (C) or
 * null. Variance is biased; mean and 1/std are saved for the backward.
 */
export function layerNorm(x: Tensor, normalizedLastDim: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const cols = x.shape[x.ndim - 1];
  if (x.ndim === 0 || cols !== normalizedLastDim) throw new Error(`layerNorm: last dim of ${fmtShape(x.shape)} is not ${normalizedLastDim}`);
  checkParam(weight, cols, x, 'layerNorm weight');
  checkParam(bias, cols, x, 'layerNorm bias');
  const rows = cols === 0 ? 0 : x.size / cols;
  const y = empty(x.shape, x.dtype);
  const mean = empty([rows], x.dtype), rstd = empty([rows], x.dtype); // (rows)
  K.layerNormForward(x.data, weight?.data ?? null, bias?.data ?? null, y.data, mean.data, rstd.data, rows, cols, eps);
  return record('layerNorm', [x, weight, bias], y, (g) => {
    const dx = empty(x.shape, x.dtype);
    const dw = weight?.requiresGrad ? empty([cols], x.dtype) : null;
    const db = bias?.requiresGrad ? empty([cols], x.dtype) : null;
    K.layerNormBackward(g.data, x.data, weight?.data ?? null, mean.data, rstd.data, dx.data, dw?.data ?? null, db?.data ?? null, rows, cols);
    return [x.requiresGrad ? dx : null, dw, db];
  });
}

/** (N, C, S) sizes of an (N, C, *) input. */
function ncs(x: Tensor, what: string): [number, number, number] {
  if (x.ndim < 2) throw new Error(`${what}: input must be (N, C, *), got ${fmtShape(x.shape)}`);
  return [x.shape[0], x.shape[1], sizeOf(x.shape.slice(2))];
}

/**
 * F.group_norm: x (N, C, *) split into `groups` groups of C/groups channels; each (sample, group)
 * is normalised over its channels and spatial positions (biased variance), then
 * y = xhat * weight[c] + bias[c]. weight, bias: (C) or null.
 */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const [n, c, s] = ncs(x, 'groupNorm');
  if (!Number.isInteger(groups) || groups <= 0 || c % groups !== 0) throw new Error(`groupNorm: ${c} channels do not split into ${groups} groups`);
  checkParam(weight, c, x, 'groupNorm weight');
  checkParam(bias, c, x, 'groupNorm bias');
  const rows = n * groups, cols = (c / groups) * s;
  const xhat = empty(x.shape, x.dtype); // (N, C, S) normalised, before the affine
  const mean = empty([rows], x.dtype), rstd = empty([rows], x.dtype); // (N*G)
  K.layerNormForward(x.data, null, null, xhat.data, mean.data, rstd.data, rows, cols, eps);
  const affine = weight !== null || bias !== null;
  let y = xhat;
  const shapeOnly = isMetaArray(x.data); // kernels/meta.ts: count the affine loops, do not walk them
  if (affine && shapeOnly) {
    y = empty(x.shape, x.dtype);
    metaCount('elementwise', 2 * n * c * s, 2 * n * c * s);
  } else if (affine) {
    y = empty(x.shape, x.dtype);
    const yd = y.data, hd = xhat.data, w = weight?.data, b = bias?.data;
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const o = (i * c + ch) * s, wc = w ? w[ch] : 1, bc = b ? b[ch] : 0;
        for (let j = 0; j < s; j++) yd[o + j] = hd[o + j] * wc + bc;
      }
    }
  }
  return record('groupNorm', [x, weight, bias], y, (g) => {
    const gd = g.data, hd = xhat.data, w = weight?.data;
    const dw = weight?.requiresGrad ? empty([c], x.dtype) : null;
    const db = bias?.requiresGrad ? empty([c], x.dtype) : null;
    if ((dw || db) && shapeOnly) metaCount('reduce', 3 * n * c * s, 2 * n * c * s);
    else if (dw || db) {
      for (let ch = 0; ch < c; ch++) {
        let sw = 0, sb = 0;
        for (let i = 0; i < n; i++) {
          const o = (i * c + ch) * s;
          for (let j = 0; j < s; j++) { sw += gd[o + j] * hd[o + j]; sb += gd[o + j]; }
        }
        if (dw) dw.data[ch] = sw;
        if (db) db.data[ch] = sb;
      }
    }
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      let dxhat = g;
      if (w && shapeOnly) {
        dxhat = empty(x.shape, x.dtype);
        metaCount('elementwise', n * c * s, 2 * n * c * s);
      } else if (w) {
        dxhat = empty(x.shape, x.dtype);
        const d = dxhat.data;
        for (let i = 0; i < n; i++) {
          for (let ch = 0; ch < c; ch++) {
            const o = (i * c + ch) * s, wc = w[ch];
            for (let j = 0; j < s; j++) d[o + j] = gd[o + j] * wc;
          }
        }
      }
      dx = empty(x.shape, x.dtype);
      K.layerNormBackward(dxhat.data, x.data, null, mean.data, rstd.data, dx.data, null, null, rows, cols);
    }
    return [dx, dw, db];
  });
}

export interface BatchNormOptions {
  /** Batch statistics (and the running-stat update) when true; running statistics when false. */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * F.batch_norm: x (N, C, *) normalised per channel over N and the spatial positions.
 * Training: batch mean and biased variance normalise; runningMean/runningVar (C), when given, are
 * updated in place as r = (1 - momentum) r + momentum * stat with the UNBIASED variance (PyTorch).
 * Eval: the running statistics normalise. The running statistics are buffers: never
 * differentiated. weight, bias: (C) or null.
 */
export function batchNorm(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  weight: Tensor | null = null, bias: Tensor | null = null, opts: BatchNormOptions = {},
): Tensor {
  const training = opts.training ?? false, momentum = opts.momentum ?? 0.1, eps = opts.eps ?? 1e-5;
  const [n, c, s] = ncs(x, 'batchNorm');
  checkParam(weight, c, x, 'batchNorm weight');
  checkParam(bias, c, x, 'batchNorm bias');
  checkParam(runningMean, c, x, 'batchNorm runningMean');
  checkParam(runningVar, c, x, 'batchNorm runningVar');
  const count = n * s;
  const mean = new Float64Array(c), rstd = new Float64Array(c); // (C)
  if (training) {
    if (count <= 1) throw new Error(`batchNorm: expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
    runningMean?.assertWritable('batchNorm running mean update');
    runningVar?.assertWritable('batchNorm running var update');
    const xd = x.data;
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let i = 0; i < n; i++) { const o = (i * c + ch) * s; for (let j = 0; j < s; j++) sum += xd[o + j]; }
      const m = sum / count;
      let sq = 0;
      for (let i = 0; i < n; i++) { const o = (i * c + ch) * s; for (let j = 0; j < s; j++) { const d = xd[o + j] - m; sq += d * d; } }
      const v = sq / count;
      mean[ch] = m;
      rstd[ch] = 1 / Math.sqrt(v + eps);
      if (runningMean) runningMean.data[ch] = (1 - momentum) * runningMean.data[ch] + momentum * m;
      if (runningVar) runningVar.data[ch] = (1 - momentum) * runningVar.data[ch] + momentum * (sq / (count - 1));
    }
  } else {
    if (!runningMean || !runningVar) throw new Error('batchNorm: eval mode needs runningMean and runningVar');
    for (let ch = 0; ch < c; ch++) {
      mean[ch] = runningMean.data[ch];
      rstd[ch] = 1 / Math.sqrt(runningVar.data[ch] + eps);
    }
  }
  const xhat = empty(x.shape, x.dtype); // (N, C, S)
  const y = empty(x.shape, x.dtype);
  const xd = x.data, hd = xhat.data, yd = y.data, w = weight?.data, b = bias?.data;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const o = (i * c + ch) * s, m = mean[ch], r = rstd[ch], wc = w ? w[ch] : 1, bc = b ? b[ch] : 0;
      for (let j = 0; j < s; j++) {
        const h = (xd[o + j] - m) * r;
        hd[o + j] = h;
        yd[o + j] = h * wc + bc;
      }
    }
  }
  return record('batchNorm', [x, weight, bias], y, (g) => {
    const gd = g.data;
    const dw = weight?.requiresGrad ? empty([c], x.dtype) : null;
    const db = bias?.requiresGrad ? empty([c], x.dtype) : null;
    const dx = x.requiresGrad ? empty(x.shape, x.dtype) : null;
    for (let ch = 0; ch < c; ch++) {
      // sums over the channel's N*S positions of dy and dy*xhat
      let sg = 0, sgh = 0;
      for (let i = 0; i < n; i++) {
        const o = (i * c + ch) * s;
        for (let j = 0; j < s; j++) { sg += gd[o + j]; sgh += gd[o + j] * hd[o + j]; }
      }
      if (dw) dw.data[ch] = sgh;
      if (db) db.data[ch] = sg;
      if (!dx) continue;
      const wc = w ? w[ch] : 1, r = rstd[ch];
      const dd = dx.data;
      if (training) {
        // dx = w * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)): the batch stats depend on x
        const mg = sg / count, mgh = sgh / count;
        for (let i = 0; i < n; i++) {
          const o = (i * c + ch) * s;
          for (let j = 0; j < s; j++) dd[o + j] = wc * r * (gd[o + j] - mg - hd[o + j] * mgh);
        }
      } else {
        for (let i = 0; i < n; i++) {
          const o = (i * c + ch) * s;
          for (let j = 0; j < s; j++) dd[o + j] = wc * r * gd[o + j];
        }
      }
    }
    return [dx, dw, db];
  });
}
