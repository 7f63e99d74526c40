// TypeScript reference for DiT's adaLN modulation y = x * (1 + scale) + shift, forward and
// backward, with shift and scale broadcast over the token axis. Sums in float64.
import type { FArray } from '../types.ts';

/** x, y: (B, N, C); shift, scale: (B, C). */
export function modulateForward(
  x: FArray, shift: FArray, scale: FArray, y: FArray, b: number, n: number, c: number,
): void {
  for (let bi = 0; bi < b; bi++) {
    for (let t = 0; t < n; t++) {
      const o = (bi * n + t) * c;
      for (let j = 0; j < c; j++) y[o + j] = x[o + j] * (1 + scale[bi * c + j]) + shift[bi * c + j];
    }
  }
}

/** dx = dy * (1 + scale); dshift = sum_N dy; dscale = sum_N dy * x. All overwritten. */
export function modulateBackward(
  dy: FArray, x: FArray, scale: FArray, dx: FArray, dshift: FArray, dscale: FArray,
  b: number, n: number, c: number,
): void {
  const dsh = new Float64Array(c); // (C) of one batch element
  const dsc = new Float64Array(c); // (C)
  for (let bi = 0; bi < b; bi++) {
    dsh.fill(0);
    dsc.fill(0);
    for (let t = 0; t < n; t++) {
      const o = (bi * n + t) * c;
      for (let j = 0; j < c; j++) {
        dx[o + j] = dy[o + j] * (1 + scale[bi * c + j]);
        dsh[j] += dy[o + j];
        dsc[j] += dy[o + j] * x[o + j];
      }
    }
    for (let j = 0; j < c; j++) {
      dshift[bi * c + j] = dsh[j];
      dscale[bi * c + j] = dsc[j];
    }
  }
}
