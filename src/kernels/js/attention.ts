// TypeScript reference for fused scaled-dot-product attention, forward and backward.
// This is the slow, obviously-correct contract for the native flash-attention kernels: plain
// loops, every sum accumulated in float64. It is not blocked or tiled, and it materialises one
// row of logits (N) at a time, never the N x N matrix. With `causal`, query row i sums over keys
// j <= i only (the masked logits are -inf, so their probabilities are exactly 0). With `bf16`,
// every operand of a product (q, k, p, v forward; q, k, v, dO, p, dS backward) is rounded to bf16
// first (bf16.ts, round to nearest even), the contract of the bf16 attention kernel; the sums stay
// float64 here, so the native kernel's fp32 sums match within a tolerance, not bit for bit.
import type { FArray } from '../types.ts';
import { roundBf16 } from './bf16.ts';

const same = (x: number): number => x;

/**
 * out = softmax(q k^T * scale) v; lse = log-sum-exp of the scaled logits per query row.
 * q, k, v, out: (BH, N, D); lse: (BH, N). causal: row i sees keys j <= i.
 */
export function attentionForward(
  q: FArray, k: FArray, v: FArray, out: FArray, lse: FArray,
  bh: number, n: number, d: number, scale: number, causal = false, bf16 = false,
): void {
  const r = bf16 ? roundBf16 : same; // a product's operand
  const s = new Float64Array(n); // (N) logits of one query row
  const acc = new Float64Array(d); // (D) one output row
  for (let h = 0; h < bh; h++) {
    const base = h * n * d;
    for (let i = 0; i < n; i++) {
      const qi = base + i * d;
      const jEnd = causal ? i + 1 : n; // keys this query sees
      let max = -Infinity;
      for (let j = 0; j < jEnd; j++) {
        const kj = base + j * d;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += r(q[qi + c]) * r(k[kj + c]);
        s[j] = dot * scale;
        if (s[j] > max) max = s[j];
      }
      let sum = 0;
      for (let j = 0; j < jEnd; j++) {
        s[j] = Math.exp(s[j] - max);
        sum += s[j];
      }
      acc.fill(0);
      for (let j = 0; j < jEnd; j++) {
        const p = r(s[j] / sum);
        const vj = base + j * d;
        for (let c = 0; c < d; c++) acc[c] += p * r(v[vj + c]);
      }
      for (let c = 0; c < d; c++) out[qi + c] = acc[c];
      lse[h * n + i] = max + Math.log(sum);
    }
  }
}

/**
 * Backward from the saved lse: P = exp(q k^T * scale - lse) is recomputed row by row.
 * dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(dO * O)); dQ = scale dS K; dK = scale dS^T Q.
 * dq, dk, dv: (BH, N, D), overwritten. causal: as the forward (P_ij = 0 for j > i).
 */
export function attentionBackward(
  q: FArray, k: FArray, v: FArray, out: FArray, lse: FArray, dout: FArray,
  dq: FArray, dk: FArray, dv: FArray,
  bh: number, n: number, d: number, scale: number, causal = false, bf16 = false,
): void {
  const r = bf16 ? roundBf16 : same; // a product's operand
  const p = new Float64Array(n); // (N) probabilities of one query row
  const dqi = new Float64Array(d); // (D)
  const dkAcc = new Float64Array(n * d); // (N, D) of one head, summed over query rows
  const dvAcc = new Float64Array(n * d); // (N, D)
  for (let h = 0; h < bh; h++) {
    const base = h * n * d;
    dkAcc.fill(0);
    dvAcc.fill(0);
    for (let i = 0; i < n; i++) {
      const qi = base + i * d;
      const l = lse[h * n + i];
      const jEnd = causal ? i + 1 : n; // keys this query sees
      // delta = sum_j P_ij dP_ij = dO_i . O_i
      let delta = 0;
      for (let c = 0; c < d; c++) delta += dout[qi + c] * out[qi + c];
      for (let j = 0; j < jEnd; j++) {
        const kj = base + j * d;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += r(q[qi + c]) * r(k[kj + c]);
        p[j] = Math.exp(dot * scale - l);
      }
      dqi.fill(0);
      for (let j = 0; j < jEnd; j++) {
        const kj = base + j * d;
        let dp = 0;
        for (let c = 0; c < d; c++) dp += r(dout[qi + c]) * r(v[kj + c]);
        const ds = r(p[j] * (dp - delta) * scale), pj = r(p[j]);
        const o = j * d;
        for (let c = 0; c < d; c++) {
          dvAcc[o + c] += pj * r(dout[qi + c]);
          dkAcc[o + c] += ds * r(q[qi + c]);
          dqi[c] += ds * r(k[kj + c]);
        }
      }
      for (let c = 0; c < d; c++) dq[qi + c] = dqi[c];
    }
    for (let t = 0; t < n * d; t++) {
      dk[base + t] = dkAcc[t];
      dv[base + t] = dvAcc[t];
    }
  }
}
