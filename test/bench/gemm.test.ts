// Smoke test of the GEMM benchmark's plumbing (src/bench/gemm.ts): a tiny run returns one row per
// backend and shape with a positive rate, and the table pairs native with numpy per shape. It does
// not judge speed (that is docs/performance.md's job, on a quiet machine).
import { describe, it, expect } from 'vitest';
import { benchGemm, printGemmTable, type GemmResult } from '../../src/bench/gemm.ts';
import { nativeKernels } from '../../src/kernels/index.ts';
import { loadAddon } from '../../src/kernels/native.ts';

describe('benchGemm', () => {
  it('measures every requested backend on every shape', async () => {
    const bf16 = typeof loadAddon().addon?.gemmBf16 === 'function';
    const backends: ('native' | 'bf16' | 'js')[] = nativeKernels ? ['native', ...(bf16 ? ['bf16' as const] : []), 'js'] : ['js'];
    const shapes = [{ m: 17, n: 9, k: 33 }, { m: 40, n: 24, k: 8 }];
    const report = await benchGemm({ backends, shapes, json: true, quick: true, noPeer: true });
    expect(report.results.map((r) => `${r.backend} ${r.m}x${r.k}x${r.n}`).sort())
      .toEqual(backends.flatMap((b) => shapes.map((s) => `${b} ${s.m}x${s.k}x${s.n}`)).sort());
    for (const r of report.results) expect(r.gflops, JSON.stringify(r)).toBeGreaterThan(0);
  });

  it('prints one row per shape with native / numpy and bf16 / native', () => {
    const rows: GemmResult[] = [
      { m: 4, k: 5, n: 6, backend: 'native', gflops: 150 },
      { m: 4, k: 5, n: 6, backend: 'bf16', gflops: 270 },
      { m: 4, k: 5, n: 6, backend: 'numpy', gflops: 200 },
      { m: 7, k: 7, n: 7, backend: 'js', gflops: 1.25 },
    ];
    let out = '';
    printGemmTable(rows, (s) => { out += s; });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe('| 4 x 5 x 6 | 150.0 | 200.0 | 75% |  | 270.0 | 1.80x |');
    expect(lines[3]).toBe('| 7 x 7 x 7 |  |  |  | 1.3 |  |  |');
  });
});
