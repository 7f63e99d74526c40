// Parity of the native SGEMM (native/src/gemm*.cc) with the TypeScript reference
// (src/kernels/js/gemm.ts run on float64 copies) on every SIMD path this CPU has (avx512, avx2,
// scalar, switched with the addon's setIsa): random shapes with fast-check (sizes off the tile
// multiples, size-1 dims, all transposes, padded leading dims, batches, alpha/beta, bias, each
// activation), blocked/threaded sizes, k = 0, and argument errors. Thread safety and determinism
// across JS threads are in gemm-threads.test.ts.
//
// Tolerance, per element, relative to S = |alpha| sum_p |a_ip||b_pj| + |beta c_ij| + |bias_j|:
//   |native - ref| <= (1.2 (k + 2) 2^-23 + 4e-7) S
// (k+2 float32 roundings, twice the usual gamma bound; x1.2 for activation slopes up to ~1.13;
// 4e-7 for the epilogue's erf/exp approximations).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { gemm as refGemm } from '../../src/kernels/js/gemm.ts';
import { loadAddon, type NativeAddon } from '../../src/kernels/native.ts';
import { fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const best = addon?.isa();
const paths: Isa[] = addon ? ISAS.slice(ISAS.indexOf(best as Isa)) : [];

interface Case {
  transA: boolean; transB: boolean; m: number; n: number; k: number;
  padA: number; padB: number; padC: number; batch: number; gapA: number; gapB: number; gapC: number;
  alpha: number; beta: number; bias: boolean; act: number; seed: number;
}

/** Runs one case natively and on the float64 reference; throws with the first values on failure. */
function check(nat: NativeAddon, c: Case): void {
  const { transA, transB, m, n, k, batch } = c;
  const lda = (transA ? m : k) + c.padA, ldb = (transB ? k : n) + c.padB, ldc = n + c.padC;
  const sizeA = (transA ? k : m) * lda, sizeB = (transB ? n : k) * ldb, sizeC = m * ldc;
  const strideA = sizeA + c.gapA, strideB = sizeB + c.gapB, strideC = sizeC + c.gapC;
  const a = fillRandom(new Float32Array(Math.max(1, (batch - 1) * strideA + sizeA)), c.seed);
  const b = fillRandom(new Float32Array(Math.max(1, (batch - 1) * strideB + sizeB)), c.seed + 1);
  const c0 = fillRandom(new Float32Array(Math.max(1, (batch - 1) * strideC + sizeC)), c.seed + 2);
  if (c.beta === 0) c0.fill(Number.NaN); // beta = 0 must overwrite, never read, C
  const bias = c.bias ? fillRandom(new Float32Array(n), c.seed + 3) : null;

  const got = c0.slice();
  nat.gemm(transA, transB, m, n, k, c.alpha, a, lda, strideA, b, ldb, strideB, c.beta, got, ldc,
    strideC, batch, bias, c.act);

  const want = Float64Array.from(c0);
  const args = { transA, transB, m, n, k, lda, ldb, ldc, alpha: c.alpha, beta: c.beta, batch, strideA, strideB, strideC };
  refGemm({ ...args, a: Float64Array.from(a), b: Float64Array.from(b), c: want, bias: bias && Float64Array.from(bias), act: c.act as 0 });
  // S = |alpha| |A||B| + |beta C| + |bias|, by the same reference on absolute values.
  const scale = Float64Array.from(c0, (v) => (c.beta === 0 ? 0 : Math.abs(v)));
  refGemm({ ...args, alpha: Math.abs(c.alpha), beta: Math.abs(c.beta), a: Float64Array.from(a, Math.abs),
    b: Float64Array.from(b, Math.abs), c: scale, bias: bias && Float64Array.from(bias, Math.abs), act: 0 });

  const rel = 1.2 * (k + 2) * 2 ** -23 + 4e-7;
  let maxDiff = 0, worst = -1, bad = -1;
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const idx = bi * strideC + i * ldc + j;
        const diff = Math.abs(got[idx] - want[idx]);
        if (!(diff <= rel * scale[idx] + 1e-30) && bad < 0) bad = idx;
        if (!(diff <= maxDiff)) { maxDiff = diff; worst = idx; }
      }
    }
  }
  // Padding between rows and batches must be untouched.
  for (let idx = 0; idx < got.length; idx++) {
    const off = idx % strideC, inside = Math.floor(idx / strideC) < batch && off < sizeC && off % ldc < n;
    if (!inside && !Object.is(got[idx], c0[idx])) throw new Error(`C padding written at [${idx}]: ${JSON.stringify(c)}`);
  }
  if (bad >= 0) {
    const first = (x: ArrayLike<number>) => Array.from({ length: Math.min(5, n) }, (_, j) => x[j].toPrecision(7)).join(', ');
    throw new Error(
      `gemm mismatch ${JSON.stringify(c)}: max diff ${maxDiff} at [${worst}] (${got[worst]} vs ref ${want[worst]}, ` +
      `tol ${rel * scale[worst]}); first bad [${bad}] ${got[bad]} vs ${want[bad]}\n  got: ${first(got)}\n  ref: ${first(want)}`,
    );
  }
}

const dim = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 70 }));
const caseArb: fc.Arbitrary<Case> = fc.record({
  transA: fc.boolean(), transB: fc.boolean(), m: dim, n: dim, k: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 90 })),
  padA: fc.integer({ min: 0, max: 3 }), padB: fc.integer({ min: 0, max: 3 }), padC: fc.integer({ min: 0, max: 3 }),
  batch: fc.integer({ min: 1, max: 3 }), gapA: fc.integer({ min: 0, max: 5 }), gapB: fc.integer({ min: 0, max: 5 }),
  gapC: fc.integer({ min: 0, max: 5 }),
  alpha: fc.constantFrom(1, -0.75, 2.5), beta: fc.constantFrom(0, 1, 0.5),
  bias: fc.boolean(), act: fc.integer({ min: 0, max: 4 }), seed: fc.integer({ min: 1, max: 1e6 }),
});

const base: Omit<Case, 'm' | 'n' | 'k' | 'transA' | 'transB'> = {
  padA: 1, padB: 2, padC: 3, batch: 1, gapA: 0, gapB: 0, gapC: 0, alpha: 1, beta: 0, bias: true, act: 0, seed: 7,
};

describe.skipIf(!addon)(`native gemm vs the TypeScript reference${addon ? '' : ` (skipped: ${reason})`}`, () => {
  for (const isa of paths) {
    describe(`isa ${isa}`, () => {
      const run = (fn: (nat: NativeAddon) => void) => () => {
        const nat = addon!;
        nat.setIsa(isa);
        try { fn(nat); } finally { nat.setIsa(best!); }
      };

      it('random small shapes, all transposes, batches, alpha/beta, bias, activations', run((nat) => {
        fc.assert(fc.property(caseArb, (c) => { check(nat, c); }), { seed: 4242, numRuns: 150 });
      }));

      it('blocked and threaded sizes: several k slices, row blocks, edge tiles', run((nat) => {
        const shapes: [number, number, number][] = [[301, 97, 530], [45, 390, 257], [130, 70, 700]];
        let i = 0;
        for (const [m, n, k] of shapes) {
          for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
            check(nat, { ...base, m, n, k, transA, transB, beta: i % 2 ? 0.5 : 0, act: i % 5, alpha: i % 3 ? 1 : -1.5, seed: 100 + i });
            i++;
          }
        }
      }));

      it('batches of small matrices (one task per matrix) and of large ones', run((nat) => {
        check(nat, { ...base, m: 40, n: 33, k: 50, transA: false, transB: true, batch: 24, gapA: 3, gapB: 1, gapC: 2, act: 3, seed: 11 });
        check(nat, { ...base, m: 150, n: 120, k: 90, transA: true, transB: false, batch: 3, gapC: 5, beta: 1, act: 4, seed: 12 });
      }));

      it('k = 0 gives act(beta C + bias); m or n = 0 writes nothing', run((nat) => {
        check(nat, { ...base, m: 5, n: 19, k: 0, transA: false, transB: false, beta: 0.5, act: 2, seed: 13 });
        check(nat, { ...base, m: 5, n: 19, k: 0, transA: true, transB: true, beta: 0, act: 4, seed: 14 });
        const c = new Float32Array([1, 2, 3]);
        nat.gemm(false, false, 0, 3, 4, 1, new Float32Array(0), 4, 0, new Float32Array(12), 3, 0, 0, c, 3, 0, 1, null, 1);
        nat.gemm(false, false, 1, 0, 4, 1, new Float32Array(4), 4, 0, new Float32Array(0), 0, 0, 0, c, 0, 0, 1, null, 1);
        expect(Array.from(c)).toEqual([1, 2, 3]);
      }));
    });
  }

  it('activations in the epilogue follow the reference over a wide input range', () => {
    // One column of ones times a column of inputs: C = x exactly, so only the activation differs.
    const xs = Float32Array.from({ length: 401 }, (_, i) => -20 + i * 0.1);
    for (const isa of paths) {
      addon!.setIsa(isa);
      for (let act = 1; act <= 4; act++) {
        const got = new Float32Array(xs.length);
        addon!.gemm(false, false, xs.length, 1, 1, 1, xs, 1, 0, new Float32Array([1]), 1, 0, 0, got, 1, 0, 1, null, act);
        const want = new Float64Array(xs.length);
        refGemm({ transA: false, transB: false, m: xs.length, n: 1, k: 1, a: Float64Array.from(xs), lda: 1, b: new Float64Array([1]), ldb: 1, c: want, ldc: 1, act: act as 1 });
        for (let i = 0; i < xs.length; i++) {
          const tol = 4e-7 * Math.abs(xs[i]) + 2 ** -24 * Math.abs(want[i]) + 1e-30;
          if (!(Math.abs(got[i] - want[i]) <= tol)) {
            throw new Error(`isa ${isa} act ${act}: x=${xs[i]} got ${got[i]} want ${want[i]} (diff ${Math.abs(got[i] - want[i])}, tol ${tol})`);
          }
        }
      }
    }
    addon!.setIsa(best!);
  });

  it('bad arguments throw a TypeError naming the argument', () => {
    const nat = addon!;
    const A = new Float32Array(12), B = new Float32Array(12), C = new Float32Array(9);
    const call = (over: Record<number, unknown>) => () => {
      const args: unknown[] = [false, false, 3, 3, 4, 1, A, 4, 0, B, 3, 0, 0, C, 3, 0, 1, null, 0];
      for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
      (nat.gemm as (...a: unknown[]) => void)(...args);
    };
    expect(call({})).not.toThrow();
    expect(call({ 6: new Float64Array(12) })).toThrow(new TypeError("gemm: argument 'a' must be a Float32Array"));
    expect(call({ 9: new SharedArrayBuffer(48) })).toThrow(/argument 'b' must be a Float32Array/);
    expect(call({ 13: new Float32Array(8) })).toThrow(/argument 'c' is too short: has 8 elements, needs 9/);
    expect(call({ 7: 3 })).toThrow(/argument 'lda' is smaller/);
    expect(call({ 2: -1 })).toThrow(/argument 'm' must be a non-negative integer/);
    expect(call({ 4: 2.5 })).toThrow(/argument 'k' must be a non-negative integer/);
    expect(call({ 0: 1 })).toThrow(/argument 'transA' must be a boolean/);
    expect(call({ 18: 5 })).toThrow(/argument 'act' must be an activation code/);
    expect(call({ 17: new Float32Array(2) })).toThrow(/argument 'bias' is too short/);
    expect(call({ 16: 2, 8: 12 })).toThrow(/argument 'a' is too short: has 12 elements, needs 24/);
    expect(() => nat.setIsa('sse9' as 'avx2')).toThrow(TypeError);
  });
});
