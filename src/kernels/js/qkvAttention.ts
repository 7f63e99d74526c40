// TypeScript reference for attention on timm's packed qkv layout: gathers q, k, v of every head
// out of (B, N, 3, H, D) into (B*H, N, D), runs the attention reference (attention.ts), and
// scatters the result back into (B, N, H, D) (forward) or (B, N, 3, H, D) (backward). It is the
// composite permute/slice/attention/permute written as copies; the math lives in attention.ts
// (precision 'bf16': its bf16 variant, every product's operands rounded to bf16).
import type { FArray } from '../types.ts';
import { attentionBackward, attentionForward } from './attention.ts';

const like = (a: FArray, n: number): FArray => (a instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));

/**
 * Copies between (B, N, parts, H, D) at part `s` and (B, H, N, D). toHeads: packed -> heads;
 * otherwise heads -> packed (other parts untouched).
 */
function moveHeads(packed: FArray, parts: number, s: number, heads: FArray, b: number, n: number, h: number, d: number, toHeads: boolean): void {
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      for (let t = 0; t < n; t++) {
        const p = ((bi * n + t) * parts + s) * h * d + hi * d; // (b, t, s, h, :)
        const q = ((bi * h + hi) * n + t) * d; // (b, h, t, :)
        if (toHeads) for (let c = 0; c < d; c++) heads[q + c] = packed[p + c];
        else for (let c = 0; c < d; c++) packed[p + c] = heads[q + c];
      }
    }
  }
}

/** qkv (B, N, 3, H, D) -> out (B, N, H, D), lse (B, H, N). */
export function qkvAttentionForward(
  qkv: FArray, out: FArray, lse: FArray, b: number, n: number, h: number, d: number, scale: number,
  precision: 'fp32' | 'bf16' = 'fp32',
): void {
  const len = b * h * n * d;
  const [q, k, v, o] = [0, 1, 2, 3].map(() => like(qkv, len)); // (B, H, N, D)
  moveHeads(qkv, 3, 0, q, b, n, h, d, true);
  moveHeads(qkv, 3, 1, k, b, n, h, d, true);
  moveHeads(qkv, 3, 2, v, b, n, h, d, true);
  attentionForward(q, k, v, o, lse, b * h, n, d, scale, false, precision === 'bf16');
  moveHeads(out, 1, 0, o, b, n, h, d, false);
}

/** dqkv (B, N, 3, H, D) from dout (B, N, H, D). */
export function qkvAttentionBackward(
  qkv: FArray, out: FArray, lse: FArray, dout: FArray, dqkv: FArray,
  b: number, n: number, h: number, d: number, scale: number, precision: 'fp32' | 'bf16' = 'fp32',
): void {
  const len = b * h * n * d;
  const [q, k, v, o, dO, dq, dk, dv] = [0, 1, 2, 3, 4, 5, 6, 7].map(() => like(qkv, len)); // (B, H, N, D)
  moveHeads(qkv, 3, 0, q, b, n, h, d, true);
  moveHeads(qkv, 3, 1, k, b, n, h, d, true);
  moveHeads(qkv, 3, 2, v, b, n, h, d, true);
  moveHeads(out, 1, 0, o, b, n, h, d, true);
  moveHeads(dout, 1, 0, dO, b, n, h, d, true);
  attentionBackward(q, k, v, o, lse, dO, dq, dk, dv, b * h, n, d, scale, false, precision === 'bf16');
  moveHeads(dqkv, 3, 0, dq, b, n, h, d, false);
  moveHeads(dqkv, 3, 1, dk, b, n, h, d, false);
  moveHeads(dqkv, 3, 2, dv, b, n, h, d, false);
}
