// TypeScript reference SGEMM/DGEMM: the slow, obviously-correct contract for the native kernel.
// Loop order i-p-j keeps the inner loop contiguous over B and C when B is not transposed; it is
// not tuned beyond that. Accumulates in the array's own precision (float64 for gradcheck).
import { Act, type GemmArgs } from '../types.ts';
import { applyAct } from './activations.ts';
import { gemmBf16 } from './bf16.ts';

/** GemmArgs.rowSumsA: Σ_p op(A)[i][p] in double, p in order (both precisions: A unrounded). */
export function rowSumsOfA(g: GemmArgs): void {
  const out = g.rowSumsA;
  if (!out) return;
  if ((g.batch ?? 1) !== 1) throw new Error('gemm: rowSumsA needs batch 1');
  for (let i = 0; i < g.m; i++) {
    let s = 0;
    for (let p = 0; p < g.k; p++) s += g.transA ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
    out[i] = s;
  }
}

export function gemm(g: GemmArgs): void {
  rowSumsOfA(g);
  if (g.precision === 'bf16') return gemmBf16(g);
  const { transA, transB, m, n, k, a, lda, b, ldb, c, ldc } = g;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const batch = g.batch ?? 1;
  const sA = g.strideA ?? 0, sB = g.strideB ?? 0, sC = g.strideC ?? 0;
  const bias = g.bias ?? null;
  const act = g.act ?? Act.none;
  const row = new Float64Array(n); // one output row, accumulated in double
  for (let bi = 0; bi < batch; bi++) {
    const oA = bi * sA, oB = bi * sB, oC = bi * sC;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const aip = transA ? a[oA + p * lda + i] : a[oA + i * lda + p];
        if (aip === 0) continue;
        if (transB) {
          for (let j = 0; j < n; j++) row[j] += aip * b[oB + j * ldb + p];
        } else {
          const base = oB + p * ldb;
          for (let j = 0; j < n; j++) row[j] += aip * b[base + j];
        }
      }
      const cBase = oC + i * ldc;
      for (let j = 0; j < n; j++) {
        let v = alpha * row[j];
        if (beta !== 0) v += beta * c[cBase + j];
        if (bias) v += bias[j];
        c[cBase + j] = act === Act.none ? v : applyAct(act, v);
      }
    }
  }
}
