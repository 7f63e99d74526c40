// TypeScript reference for the two fused adaLN-Zero kernels of a DiT/SiT block: the gated residual
// out = x + gate * y, and layer norm (no affine) followed by modulate. Per-(B, C) sums in float64.
// They answer to the composites (modulate.ts, layernorm.ts, broadcast mul + add); not vectorised.
import type { FArray } from '../types.ts';

/** x, y, out: (B, N, C); gate: (B, C). out may be x. */
export function gatedResidualForward(x: FArray, gate: FArray, y: FArray, out: FArray, b: number, n: number, c: number): void {
  for (let bi = 0; bi < b; bi++) {
    const g = bi * c;
    for (let t = 0; t < n; t++) {
      const o = (bi * n + t) * c;
      for (let j = 0; j < c; j++) out[o + j] = x[o + j] + gate[g + j] * y[o + j];
    }
  }
}

/** dy = dout * gate; dgate = sum_N dout * y. Both overwritten. */
export function gatedResidualBackward(
  dout: FArray, gate: FArray, y: FArray, dy: FArray, dgate: FArray, b: number, n: number, c: number,
): void {
  const acc = new Float64Array(c); // (C) of one batch element
  for (let bi = 0; bi < b; bi++) {
    const g = bi * c;
    acc.fill(0);
    for (let t = 0; t < n; t++) {
      const o = (bi * n + t) * c;
      for (let j = 0; j < c; j++) {
        dy[o + j] = dout[o + j] * gate[g + j];
        acc[j] += dout[o + j] * y[o + j];
      }
    }
    for (let j = 0; j < c; j++) dgate[g + j] = acc[j];
  }
}

/** y = xhat * (1 + scale) + shift, xhat = (x - mean) * rstd per token row; mean/rstd (B*N) saved. */
export function layerNormModulateForward(
  x: FArray, shift: FArray, scale: FArray, y: FArray, mean: FArray, rstd: FArray,
  b: number, n: number, c: number, eps: number,
): void {
  for (let bi = 0; bi < b; bi++) {
    const g = bi * c;
    for (let t = 0; t < n; t++) {
      const r = bi * n + t, o = r * c;
      let m = 0;
      for (let j = 0; j < c; j++) m += x[o + j];
      m /= c;
      let v = 0;
      for (let j = 0; j < c; j++) v += (x[o + j] - m) * (x[o + j] - m);
      const s = 1 / Math.sqrt(v / c + eps);
      for (let j = 0; j < c; j++) y[o + j] = (x[o + j] - m) * s * (1 + scale[g + j]) + shift[g + j];
      mean[r] = m;
      rstd[r] = s;
    }
  }
}

/**
 * With dn = dy * (1 + scale): dx = rstd * (dn - mean_C(dn) - xhat * mean_C(dn * xhat)),
 * dshift = sum_N dy, dscale = sum_N dy * xhat. All overwritten.
 */
export function layerNormModulateBackward(
  dy: FArray, x: FArray, scale: FArray, mean: FArray, rstd: FArray,
  dx: FArray, dshift: FArray, dscale: FArray, b: number, n: number, c: number,
): void {
  const dsh = new Float64Array(c), dsc = new Float64Array(c); // (C) of one batch element
  for (let bi = 0; bi < b; bi++) {
    const g = bi * c;
    dsh.fill(0);
    dsc.fill(0);
    for (let t = 0; t < n; t++) {
      const r = bi * n + t, o = r * c, m = mean[r], s = rstd[r];
      let dnMean = 0, dnhMean = 0;
      for (let j = 0; j < c; j++) {
        const h = (x[o + j] - m) * s, dn = dy[o + j] * (1 + scale[g + j]);
        dnMean += dn;
        dnhMean += dn * h;
        dsh[j] += dy[o + j];
        dsc[j] += dy[o + j] * h;
      }
      dnMean /= c;
      dnhMean /= c;
      for (let j = 0; j < c; j++) {
        const h = (x[o + j] - m) * s, dn = dy[o + j] * (1 + scale[g + j]);
        dx[o + j] = (dn - dnMean - h * dnhMean) * s;
      }
    }
    for (let j = 0; j < c; j++) {
      dshift[g + j] = dsh[j];
      dscale[g + j] = dsc[j];
    }
  }
}
