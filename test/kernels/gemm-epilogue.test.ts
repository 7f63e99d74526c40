// The GEMM micro-kernels apply bias and activation in registers before their one store (gemm.h,
// GemmKernel::micro); before, a separate epilogue pass re-read each stored tile. The two must give
// the same bits: here, on every ISA (fp32 gemm) and every bf16 path (gemmBf16), a call with bias
// and/or activation is compared bit for bit with the same call without them followed by a k = 0
// call (beta 1, the same bias and activation), which runs the epilogue pass over the stored C
// (gemm.cc, EmptyK: 1 * C is exact). alpha != 1 catches a compiler contracting alpha * acc + bias
// into one FMA; k above the slice sizes (256 fp32, 512 bf16) checks that only the last slice adds.
import { describe, it } from 'vitest';
import fc from 'fast-check';
import { loadAddon, type NativeAddon } from '../../src/kernels/native.ts';
import { fillRandom } from './expectClose.ts';
import { allPaths, onPath, type Path } from './gemmPaths.ts';

const { addon, reason } = loadAddon();

interface Case { transA: boolean; transB: boolean; m: number; n: number; k: number; alpha: number; beta: number; bias: boolean; act: number; seed: number }

/** Fused (one call) against unfused (no bias/act, then the k = 0 epilogue pass); throws on the first differing bit. */
function check(nat: NativeAddon, p: Path, c: Case): void {
  const { transA, transB, m, n, k, alpha, beta, act } = c;
  const lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3;
  const a = fillRandom(new Float32Array((transA ? k : m) * lda), c.seed);
  const b = fillRandom(new Float32Array((transB ? n : k) * ldb), c.seed + 1);
  const c0 = fillRandom(new Float32Array(m * ldc), c.seed + 2);
  const bias = c.bias ? fillRandom(new Float32Array(n), c.seed + 3) : null;
  const g = nat[p.fn] as NativeAddon['gemm'];
  const fused = c0.slice(), split = c0.slice();
  onPath(nat, p, () => {
    g(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, fused, ldc, 0, 1, bias, act);
    g(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, split, ldc, 0, 1, null, 0);
    g(false, false, m, n, 0, 1, a, 1, 0, b, 1, 0, 1, split, ldc, 0, 1, bias, act);
  });
  const fb = new Uint32Array(fused.buffer), sb = new Uint32Array(split.buffer);
  for (let i = 0; i < fb.length; i++) {
    if (fb[i] !== sb[i]) {
      throw new Error(`${p.name} ${JSON.stringify(c)}: C[${Math.floor(i / ldc)}][${i % ldc}] fused ${fused[i]} vs epilogue pass ${split[i]}`);
    }
  }
}

const caseArb = fc.record({
  transA: fc.boolean(), transB: fc.boolean(),
  m: fc.integer({ min: 1, max: 45 }), n: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 40 }),
  alpha: fc.constantFrom(1, -0.75, 2.5, 1 / 3), beta: fc.constantFrom(0, 0.5, 1),
  bias: fc.boolean(), act: fc.integer({ min: 0, max: 4 }), seed: fc.integer({ min: 1, max: 1e6 }),
}).filter((c) => c.bias || c.act !== 0);

describe.skipIf(!addon)(`GEMM bias/activation in the store = the epilogue pass${addon ? '' : ` (skipped: ${reason})`}`, () => {
  const paths = addon ? allPaths(addon) : [];
  for (const p of paths) {
    it(`${p.name}: random small shapes, transposes, alpha/beta, bias, activations`, () => {
      fc.assert(fc.property(caseArb, (c) => check(addon!, p, c)), { numRuns: 60, seed: 42 });
    });
    it(`${p.name}: several k slices, threaded row blocks, edge tiles`, () => {
      const shapes: [number, number, number][] = [[200, 97, 600], [33, 130, 1100], [300, 64, 192]];
      shapes.forEach(([m, n, k], i) => {
        for (const act of [0, 2]) {
          check(addon!, p, { transA: i === 1, transB: i !== 1, m, n, k, alpha: i === 0 ? 2.5 : 1, beta: i === 2 ? 0.5 : 0, bias: true, act, seed: 50 + i });
        }
      });
    });
  }
});
