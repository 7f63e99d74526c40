// GemmArgs.rowSumsA: the GEMM sums op(A)'s rows while it packs A, so a Linear's dW = dy^T x also
// gives the bias gradient without another pass over dy. The sums must be reduceSum's numbers bit
// for bit (sequential double sums per row), on every ISA and bf16 path, on one thread and on the
// pool, for row blocks split across column groups (few rows), for several k slices and for B
// too large to pack whole (more than one column range: the sums must not count twice) — against
// the TypeScript reference and the native reduceSum; C must be what the call without sums gives.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadAddon, type NativeAddon } from '../../src/kernels/native.ts';
import { gemm as jsGemm } from '../../src/kernels/js/gemm.ts';
import { reduceSum as jsReduceSum } from '../../src/kernels/js/reduce.ts';
import { fillRandom } from './expectClose.ts';
import { allPaths, onPath, type Path } from './gemmPaths.ts';

const { addon, reason } = loadAddon();

interface Case { transA: boolean; transB: boolean; m: number; n: number; k: number; seed: number }

const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer.slice(0)));

function run(nat: NativeAddon, p: Path, c: Case): void {
  const { transA, transB, m, n, k } = c;
  const lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 3;
  const a = fillRandom(new Float32Array((transA ? k : m) * lda), c.seed);
  const b = fillRandom(new Float32Array((transB ? n : k) * ldb), c.seed + 1);
  const bias = fillRandom(new Float32Array(n), c.seed + 3);
  const g = nat[p.fn] as NativeAddon['gemm'];
  const withSums = new Float32Array(m * ldc), plain = new Float32Array(m * ldc);
  const sums = new Float32Array(m).fill(Number.NaN);
  onPath(nat, p, () => {
    g(transA, transB, m, n, k, 1.5, a, lda, 0, b, ldb, 0, 0, withSums, ldc, 0, 1, bias, 0, sums);
    g(transA, transB, m, n, k, 1.5, a, lda, 0, b, ldb, 0, 0, plain, ldc, 0, 1, bias, 0);
  });
  const where = `${p.name} ${JSON.stringify(c)}`;
  expect(bits(withSums), `${where}: C with row sums = C without`).toEqual(bits(plain));
  // The TypeScript reference's sums (double, p in order).
  const ref = new Float32Array(m);
  jsGemm({ transA, transB, m, n, k, a, lda, b, ldb, c: new Float32Array(m * ldc), ldc, rowSumsA: ref });
  expect(bits(sums), `${where}: rowSumsA = the TypeScript reference's`).toEqual(bits(ref));
  // reduceSum over the stored dy (transA: A is (k, m) dense when lda = m): the bias gradient as it was computed before.
  if (transA) {
    const dense = new Float32Array(k * m);
    for (let p2 = 0; p2 < k; p2++) dense.set(a.subarray(p2 * lda, p2 * lda + m), p2 * m);
    const red = new Float32Array(m), redJs = new Float32Array(m);
    (nat.reduceSum as (x: Float32Array, o: Float32Array, outer: number, len: number, inner: number) => void)(dense, red, 1, k, m);
    jsReduceSum(dense, redJs, 1, k, m);
    if (m > 1) expect(bits(sums), `${where}: rowSumsA = native reduceSum`).toEqual(bits(red));
    expect(Array.from(sums).every((v, i) => Math.abs(v - redJs[i]) <= 1e-5 * (1 + Math.abs(redJs[i])))).toBe(true);
  }
}

const caseArb = fc.record({
  transA: fc.boolean(), transB: fc.boolean(),
  m: fc.integer({ min: 1, max: 45 }), n: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 40 }),
  seed: fc.integer({ min: 1, max: 1e6 }),
});

describe.skipIf(!addon)(`GEMM row sums of op(A)${addon ? '' : ` (skipped: ${reason})`}`, () => {
  const paths = addon ? allPaths(addon) : [];
  for (const p of paths) {
    it(`${p.name}: random small shapes and transposes (one thread)`, () => {
      fc.assert(fc.property(caseArb, (c) => run(addon!, p, c)), { numRuns: 40, seed: 7 });
    });
  }
  it('large shapes on the pool: several k slices, few rows (column groups), B packed in column ranges', () => {
    const shapes: [number, number, number][] = [
      [192, 192, 4096], // a P1 dW: threaded row blocks, 16+ k slices
      [16, 300, 700], // fewer row panels than twice the threads: the A block is packed by several tasks
      [40, 4200, 1024], // n above the column range (4096) and op(B) above the pack-all limit: two ranges (jc)
    ];
    for (const p of paths.filter((q) => q.isa === paths[0].isa)) {
      shapes.forEach(([m, n, k], i) => run(addon!, p, { transA: i !== 1, transB: false, m, n, k, seed: 90 + i }));
    }
  });
  it('n = 0 and k = 0: the sums are still written (k = 0: zeros)', () => {
    const a = fillRandom(new Float32Array(6 * 5), 3), sums = new Float32Array(5).fill(Number.NaN), ref = new Float32Array(5);
    addon!.gemm(true, false, 5, 0, 6, 1, a, 5, 0, new Float32Array(1), 1, 0, 0, new Float32Array(0), 0, 0, 1, null, 0, sums);
    jsGemm({ transA: true, transB: false, m: 5, n: 0, k: 6, a, lda: 5, b: new Float32Array(1), ldb: 1, c: new Float32Array(0), ldc: 0, rowSumsA: ref });
    expect(bits(sums)).toEqual(bits(ref));
    addon!.gemm(true, false, 5, 4, 0, 1, a, 5, 0, new Float32Array(1), 4, 0, 0, new Float32Array(20), 4, 0, 1, null, 0, sums);
    expect(Array.from(sums)).toEqual([0, 0, 0, 0, 0]);
  });
  it('bad rowSumsA is refused with its name', () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9);
    expect(() => addon!.gemm(false, false, 3, 3, 4, 1, a, 4, 0, b, 3, 0, 0, c, 3, 0, 1, null, 0, new Float32Array(2))).toThrow(/rowSumsA/);
    expect(() => addon!.gemm(false, false, 3, 3, 2, 1, a, 2, 6, b, 3, 6, 0, c, 3, 0, 2, null, 0, new Float32Array(3))).toThrow(/rowSumsA.*batch 1/);
  });
});
