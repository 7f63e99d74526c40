// TypeScript reference reductions: sum over a middle axis (bias gradients, token means) and the
// sum of squares (gradient-norm clipping). Sums in float64, in index order.
import type { FArray } from '../types.ts';

/** x: (outer, len, inner) -> out: (outer, inner), summed over len. */
export function reduceSum(x: FArray, out: FArray, outer: number, len: number, inner: number): void {
  const acc = new Float64Array(inner); // (inner)
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let l = 0; l < len; l++) {
      const base = (o * len + l) * inner;
      for (let i = 0; i < inner; i++) acc[i] += x[base + i];
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
}

/** sum_i x[i]^2 over x[0..len). */
export function sumSquares(x: FArray, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i++) s += x[i] * x[i];
  return s;
}
