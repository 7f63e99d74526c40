// Smoke test of the attention benchmark's plumbing (src/bench/attention.ts): a tiny run returns a
// native row carrying the GEMM yardstick on the shape's qkv projection, and the table prints it.
// It does not judge speed (docs/performance.md does, measured on the machine with its load).
import { describe, expect, it } from 'vitest';
import { benchAttention, printAttentionTable, qkvGemmShape, type AttentionResult } from '../../src/bench/attention.ts';
import { nativeKernels } from '../../src/kernels/index.ts';

describe('benchAttention', () => {
  it('qkv projection GEMM of a shape: (B·N, H·D) @ (H·D, 3·H·D)', () => {
    expect(qkvGemmShape({ batch: 64, heads: 3, tokens: 64, headDim: 64 })).toEqual({ m: 4096, k: 192, n: 576 });
    expect(qkvGemmShape({ batch: 16, heads: 6, tokens: 256, headDim: 64 })).toEqual({ m: 4096, k: 384, n: 1152 });
  });

  it.skipIf(!nativeKernels)('native rows carry the GEMM rate measured in the same run and the ratio', async () => {
    const shape = { batch: 2, heads: 2, tokens: 20, headDim: 16 };
    const report = await benchAttention({ backends: ['native'], shapes: [shape], json: true, quick: true, noPeer: true });
    expect(report.results).toHaveLength(1);
    const r = report.results[0];
    expect(r.backend).toBe('native');
    expect(r.gemm).toMatchObject({ m: 40, k: 32, n: 96 });
    expect(r.gemm!.gflops).toBeGreaterThan(0);
    expect(r.gemm_ratio).toBeCloseTo(r.gflops / r.gemm!.gflops, 12);
  });

  it('prints the GEMM column on native rows only', () => {
    const rows: AttentionResult[] = [
      { batch: 1, heads: 2, tokens: 3, headDim: 4, backend: 'native', fwd_ms: 1, bwd_ms: 2, gflops: 50, gemm: { m: 3, k: 8, n: 24, gflops: 200 }, gemm_ratio: 0.25 },
      { batch: 1, heads: 2, tokens: 3, headDim: 4, backend: 'torch', fwd_ms: 3, bwd_ms: 4, gflops: 10 },
    ];
    let out = '';
    printAttentionTable(rows, (s) => { out += s; });
    const lines = out.trim().split('\n');
    expect(lines[2]).toBe('| 1 | 2 | 3 | 4 | native | 1.00 | 2.00 | 50.0 | 200.0 (3×8×24) | 0.25 |');
    expect(lines[3]).toBe('| 1 | 2 | 3 | 4 | torch | 3.00 | 4.00 | 10.0 |  |  |');
  });
});
