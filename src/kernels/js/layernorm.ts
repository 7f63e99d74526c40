// TypeScript reference for layer norm over the last dim, forward and backward (llm.c's
// layernorm_forward/backward, with optional affine parameters). Sums in float64. Not fused with
// anything; not vectorised.
import type { FArray } from '../types.ts';

/** x, y: (rows, cols); weight, bias: (cols) or null; mean, rstd: (rows). */
export function layerNormForward(
  x: FArray, weight: FArray | null, bias: FArray | null,
  y: FArray, mean: FArray, rstd: FArray, rows: number, cols: number, eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = 0;
    for (let c = 0; c < cols; c++) m += x[o + c];
    m /= cols;
    let v = 0;
    for (let c = 0; c < cols; c++) {
      const xm = x[o + c] - m;
      v += xm * xm;
    }
    v /= cols;
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < cols; c++) {
      let n = (x[o + c] - m) * s;
      if (weight) n *= weight[c];
      if (bias) n += bias[c];
      y[o + c] = n;
    }
    mean[r] = m;
    rstd[r] = s;
  }
}

/**
 * dx = rstd * (dn - mean(dn) - n * mean(dn * n)) with n the normalised x and dn = dy * weight.
 * dweight = sum_rows dy * n, dbias = sum_rows dy (overwritten when given).
 */
export function layerNormBackward(
  dy: FArray, x: FArray, weight: FArray | null, mean: FArray, rstd: FArray,
  dx: FArray, dweight: FArray | null, dbias: FArray | null, rows: number, cols: number,
): void {
  const dw = new Float64Array(cols); // (cols)
  const db = new Float64Array(cols); // (cols)
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const m = mean[r], s = rstd[r];
    let dnMean = 0, dnNMean = 0;
    for (let c = 0; c < cols; c++) {
      const n = (x[o + c] - m) * s;
      const dn = weight ? dy[o + c] * weight[c] : dy[o + c];
      dnMean += dn;
      dnNMean += dn * n;
    }
    dnMean /= cols;
    dnNMean /= cols;
    for (let c = 0; c < cols; c++) {
      const n = (x[o + c] - m) * s;
      const dn = weight ? dy[o + c] * weight[c] : dy[o + c];
      dx[o + c] = (dn - dnMean - n * dnNMean) * s;
      dw[c] += dy[o + c] * n;
      db[c] += dy[o + c];
    }
  }
  if (dweight) for (let c = 0; c < cols; c++) dweight[c] = dw[c];
  if (dbias) for (let c = 0; c < cols; c++) dbias[c] = db[c];
}
