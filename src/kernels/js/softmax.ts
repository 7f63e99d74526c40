// TypeScript reference for row softmax, forward and backward. Max-subtracted, sums in float64.
// Not masked, not fused with attention (attention.ts does its own).
import type { FArray } from '../types.ts';

/** x, y: (rows, cols). */
export function softmaxForward(x: FArray, y: FArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c] > max) max = x[o + c];
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[o + c] - max);
    for (let c = 0; c < cols; c++) y[o + c] = Math.exp(x[o + c] - max) / sum;
  }
}

/** dx = y * (dy - sum(dy * y)) per row. y, dy, dx: (rows, cols). */
export function softmaxBackward(y: FArray, dy: FArray, dx: FArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[o + c] * y[o + c];
    for (let c = 0; c < cols; c++) dx[o + c] = y[o + c] * (dy[o + c] - dot);
  }
}
