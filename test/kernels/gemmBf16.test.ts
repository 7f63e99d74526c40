// bf16: the TypeScript reference of fp32 -> bf16 rounding (src/kernels/js/bf16.ts) against an
// independent nearest-value definition, and the native bf16 conversion and GEMM
// (native/src/gemm_bf16.cc, gemm_avx512bf16.cc) on every path this CPU has: VDPBF16PS
// ('avx512bf16', when CPUID has AVX512_BF16) and the emulation on avx512 / avx2 / scalar
// (setBf16Dot(false) + setIsa, as DIFFACTOR_BF16=emulate / DIFFACTOR_ISA choose at start-up).
//
// What is checked, and the bounds:
//   - conversion: bit-for-bit equal to the TS reference on every path (random bit patterns, every
//     special class, ties at every exponent);
//   - GEMM with alpha = 1 and no activation: bit-for-bit equal to the TS reference gemmBf16 (its
//     sums in VDPBF16PS order) on every path, so the paths equal each other too; the data keeps
//     partial sums out of the fp32 denormal range (where VDPBF16PS flushes to zero);
//   - GEMM with any alpha, beta, bias, activation: within (1.2 (k + 2) 2^-23 + 4e-7) S of the float64
//     GEMM of the bf16-rounded inputs, S = |alpha| |A||B| + |beta C| + |bias| on rounded inputs
//     (the fp32 GEMM test's bound: k + 2 fp32 roundings, x2, x1.2 for activation slopes, 4e-7 for
//     the erf/exp approximations);
//   - against our fp32 GEMM on the bf16-rounded inputs (same exact products, sums in other
//     orders): within 2 (k + 2) 2^-24 S (each side within (k + 2) 2^-24 S of the exact sum).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { gemm as refGemm } from '../../src/kernels/js/gemm.ts';
import {
  bf16Bits, bf16Value, bf16Slices, gemmBf16 as refBf16, gemmBf16Scale, roundBf16, roundBf16Array,
} from '../../src/kernels/js/bf16.ts';
import { loadAddon, type NativeAddon } from '../../src/kernels/native.ts';
import { fillRandom } from './expectClose.ts';

const { addon, reason } = loadAddon();
const ISAS = ['avx512', 'avx2', 'scalar'] as const;
type Isa = (typeof ISAS)[number];
const hasBf16 = typeof addon?.gemmBf16 === 'function';
const best = addon?.isa() as Isa | undefined;

/** Every bf16 path: VDPBF16PS first when the CPU has it, then the emulation per ISA. */
interface Path { name: string; isa: Isa; dot: boolean }
function bf16Paths(nat: NativeAddon): Path[] {
  const out: Path[] = [];
  nat.setIsa(best!);
  let dot = false;
  try { dot = nat.setBf16Dot!(true) === 'avx512bf16'; } catch { dot = false; }
  if (dot) out.push({ name: 'avx512bf16', isa: 'avx512', dot: true });
  for (const isa of ISAS.slice(ISAS.indexOf(best!))) out.push({ name: `emulated on ${isa}`, isa, dot: false });
  return out;
}
function onPath<T>(nat: NativeAddon, p: Path, fn: () => T): T {
  nat.setIsa(p.isa);
  if (p.dot) nat.setBf16Dot!(true); else nat.setBf16Dot!(false);
  try {
    return fn();
  } finally {
    nat.setIsa(best!);
    try { nat.setBf16Dot!(true); } catch { /* no AVX512_BF16: stays emulated */ }
  }
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const fromBits = (u: number): number => { u32[0] = u >>> 0; return f32[0]; };
const hex = (h: number): string => `0x${h.toString(16).padStart(4, '0')}`;

/**
 * The bf16 nearest to an fp32 x by the definition (no bit tricks): x's two bf16 neighbours
 * toward and away from zero, the nearer one, a tie to the even pattern, past the largest
 * finite bf16 to infinity; denormals to signed zero, NaN quieted, as the hardware does.
 */
function nearestBf16(u: number): number {
  const x = fromBits(u), sign = u >>> 31;
  if (Number.isNaN(x)) return ((u >>> 16) | 0x40) & 0xffff;
  if (!Number.isFinite(x)) return u >>> 16;
  if (Math.abs(x) < 2 ** -126) return sign << 15;
  const ax = Math.abs(x), e = Math.floor(Math.log2(ax));
  const exp = (2 ** e <= ax ? (2 ** (e + 1) <= ax ? e + 1 : e) : e - 1); // guard log2 rounding
  const ulp = 2 ** (exp - 7);
  const lo = Math.floor(ax / ulp) * ulp, hi = lo + ulp;
  const loPattern = (sign << 15) | (bf16Bits(lo) & 0x7fff); // lo is a bf16: exact pattern
  let pick: 'lo' | 'hi';
  if (ax - lo < hi - ax) pick = 'lo';
  else if (ax - lo > hi - ax) pick = 'hi';
  else pick = (loPattern & 1) === 0 ? 'lo' : 'hi';
  if (pick === 'lo') return loPattern;
  if (hi >= 2 ** 128) return (sign << 15) | 0x7f80;
  return (sign << 15) | (bf16Bits(hi) & 0x7fff);
}

/** Random fp32 bit patterns, weighted toward specials and exact ties. */
function bitPatterns(count: number, seed: number): Uint32Array {
  const out = new Uint32Array(count);
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s; };
  for (let i = 0; i < count; i++) {
    const r = next();
    switch (i % 8) {
      case 0: out[i] = (r & 0xffff0000) | 0x8000; break; // exact tie
      case 1: out[i] = (r & 0x807fffff) | (next() % 2 === 0 ? 0 : 0x7f800000); break; // denormal / NaN / inf
      case 2: out[i] = (r & 0x8000ffff) | 0x7f7f0000; break; // near the top: overflow to inf
      default: out[i] = r;
    }
  }
  return out;
}

const SPECIALS: [string, number, number][] = [
  ['+0', 0x00000000, 0x0000], ['-0', 0x80000000, 0x8000], ['1', 0x3f800000, 0x3f80],
  ['1 + 2^-8 (tie, even below)', 0x3f808000, 0x3f80], ['1 + 3 2^-8 (tie, even above)', 0x3f818000, 0x3f82],
  ['just above a tie', 0x3f808001, 0x3f81], ['smallest normal', 0x00800000, 0x0080],
  ['largest denormal', 0x007fffff, 0x0000], ['-smallest denormal', 0x80000001, 0x8000],
  ['largest fp32 (overflows)', 0x7f7fffff, 0x7f80], ['largest bf16', 0x7f7f0000, 0x7f7f],
  ['+inf', 0x7f800000, 0x7f80], ['-inf', 0xff800000, 0xff80], ['signalling NaN', 0x7f800001, 0x7fc0],
  ['quiet NaN', 0x7fc00000, 0x7fc0], ['-NaN with payload', 0xffa5a5a5, 0xffe5],
  ['-1.5 2^-126 + tie', 0x80c08000, 0x80c0],
];

describe('bf16 rounding reference (src/kernels/js/bf16.ts)', () => {
  it('matches hand-checked patterns', () => {
    for (const [what, u, want] of SPECIALS) {
      expect(hex(bf16Bits(fromBits(u))), what).toBe(hex(want));
    }
  });

  it('is the nearest bf16 by definition (fast-check over fp32 bit patterns)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (u) => {
      expect(hex(bf16Bits(fromBits(u)))).toBe(hex(nearestBf16(u)));
    }), { seed: 18, numRuns: 20000 });
    for (const u of bitPatterns(20000, 5)) expect(hex(bf16Bits(fromBits(u)))).toBe(hex(nearestBf16(u)));
  });

  it('is idempotent, monotone, and within half a bf16 ulp (normal range)', () => {
    fc.assert(fc.property(fc.float({ noNaN: true, min: Math.fround(-1e38), max: Math.fround(1e38) }), fc.float({ noNaN: true, min: Math.fround(-1e38), max: Math.fround(1e38) }), (x, y) => {
      const rx = roundBf16(x);
      expect(roundBf16(rx)).toBe(rx);
      if (Math.fround(x) <= Math.fround(y)) expect(rx <= roundBf16(y)).toBe(true);
      if (Math.abs(x) >= 2 ** -126) {
        const ulp = 2 ** (Math.floor(Math.log2(Math.abs(rx === 0 ? x : rx))) - 7);
        expect(Math.abs(rx - Math.fround(x)) <= ulp / 2 * (1 + 2 ** -8)).toBe(true);
      }
    }), { seed: 19, numRuns: 5000 });
  });

  it('cuts k into even slices of at most 512 as the native driver does', () => {
    expect(bf16Slices(0)).toEqual([]);
    expect(bf16Slices(7)).toEqual([[0, 7]]);
    expect(bf16Slices(1025)).toEqual([[0, 342], [342, 684], [684, 1025]]);
    expect(bf16Slices(1100)).toEqual([[0, 368], [368, 736], [736, 1100]]);
    for (let k = 1; k < 3000; k += 37) {
      const s = bf16Slices(k);
      expect(s[s.length - 1][1]).toBe(k);
      for (const [a, b] of s) expect(b - a <= 512 && b > a && a % 2 === 0).toBe(true);
    }
  });
});

interface Case {
  transA: boolean; transB: boolean; m: number; n: number; k: number; padA: number; padB: number;
  padC: number; batch: number; alpha: number; beta: number; bias: boolean; act: number; seed: number;
}

function operands(c: Case) {
  const { transA, transB, m, n, k, batch } = c;
  const lda = (transA ? m : k) + c.padA, ldb = (transB ? k : n) + c.padB, ldc = n + c.padC;
  const sizeA = (transA ? k : m) * lda, sizeB = (transB ? n : k) * ldb, sizeC = m * ldc;
  const a = fillRandom(new Float32Array(Math.max(1, batch * sizeA)), c.seed);
  const b = fillRandom(new Float32Array(Math.max(1, batch * sizeB)), c.seed + 1);
  const c0 = fillRandom(new Float32Array(Math.max(1, batch * sizeC)), c.seed + 2);
  if (c.beta === 0) c0.fill(Number.NaN); // beta = 0 must overwrite, never read, C
  const bias = c.bias ? fillRandom(new Float32Array(n), c.seed + 3) : null;
  const args = { transA, transB, m, n, k, lda, ldb, ldc, alpha: c.alpha, beta: c.beta, batch, strideA: sizeA, strideB: sizeB, strideC: sizeC, act: c.act as 0 };
  return { a, b, c0, bias, args };
}

type Args = ReturnType<typeof operands>['args'];
function runNative(nat: NativeAddon, fn: 'gemm' | 'gemmBf16', o: Args, a: Float32Array, b: Float32Array, c0: Float32Array, bias: Float32Array | null): Float32Array {
  const got = c0.slice();
  (nat[fn] as NativeAddon['gemm'])(o.transA, o.transB, o.m, o.n, o.k, o.alpha, a, o.lda, o.strideA, b, o.ldb, o.strideB, o.beta, got, o.ldc, o.strideC, o.batch, bias, o.act);
  return got;
}

/** Bit-for-bit against the TS reference on every path (alpha 1, act none). */
function checkExact(nat: NativeAddon, paths: Path[], c: Case): void {
  const { a, b, c0, bias, args } = operands(c);
  const want = c0.slice();
  refBf16({ ...args, a, b, c: want, bias });
  for (const p of paths) {
    const got = onPath(nat, p, () => runNative(nat, 'gemmBf16', args, a, b, c0, bias));
    for (let i = 0; i < got.length; i++) {
      if (!Object.is(got[i], want[i])) {
        throw new Error(`${p.name}: C[${i}] = ${got[i]} but the reference gives ${want[i]} (${JSON.stringify(c)})`);
      }
    }
  }
}

/** Within the stated bound of the float64 GEMM of the rounded inputs (any alpha, beta, act). */
function checkBound(nat: NativeAddon, paths: Path[], c: Case): void {
  const { a, b, c0, bias, args } = operands(c);
  const ar = Float64Array.from(roundBf16Array(a)), br = Float64Array.from(roundBf16Array(b));
  const want = Float64Array.from(c0);
  refGemm({ ...args, a: ar, b: br, c: want, bias: bias && Float64Array.from(bias) });
  const scale = gemmBf16Scale({ ...args, a, b, c: c0, bias });
  const rel = 1.2 * (c.k + 2) * 2 ** -23 + 4e-7;
  for (const p of paths) {
    const got = onPath(nat, p, () => runNative(nat, 'gemmBf16', args, a, b, c0, bias));
    for (let i = 0; i < got.length; i++) {
      const inside = Math.floor(i / args.strideC) < c.batch && (i % args.strideC) % args.ldc < c.n;
      if (!inside) {
        if (!Object.is(got[i], c0[i])) throw new Error(`${p.name}: padding C[${i}] written (${JSON.stringify(c)})`);
        continue;
      }
      const d = Math.abs(got[i] - want[i]);
      if (!(d <= rel * scale[i] + 1e-30)) {
        throw new Error(`${p.name}: C[${i}] = ${got[i]}, float64 of rounded inputs ${want[i]}, diff ${d} > ${rel * scale[i]} (${JSON.stringify(c)})`);
      }
    }
  }
}

const dim = fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 60 }));
const caseArb = (exact: boolean): fc.Arbitrary<Case> => fc.record({
  transA: fc.boolean(), transB: fc.boolean(), m: dim, n: dim, k: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 80 })),
  padA: fc.integer({ min: 0, max: 3 }), padB: fc.integer({ min: 0, max: 3 }), padC: fc.integer({ min: 0, max: 3 }),
  batch: fc.integer({ min: 1, max: 2 }),
  alpha: exact ? fc.constant(1) : fc.constantFrom(1, -0.75, 2.5), beta: fc.constantFrom(0, 1, 0.5),
  bias: fc.boolean(), act: exact ? fc.constant(0) : fc.integer({ min: 0, max: 4 }), seed: fc.integer({ min: 1, max: 1e6 }),
});
const base = { padA: 1, padB: 2, padC: 3, batch: 1, alpha: 1, beta: 0, bias: true, act: 0, seed: 7 };

describe.skipIf(!hasBf16)(`native bf16 conversion and GEMM${hasBf16 ? '' : ` (skipped: ${addon ? 'addon built before gemmBf16' : reason})`}`, () => {
  const nat = addon!;
  const paths = hasBf16 ? bf16Paths(nat) : [];

  it('lists VDPBF16PS first when the CPU has it, and names each path', () => {
    expect(paths.length).toBeGreaterThanOrEqual(1);
    for (const p of paths) expect(onPath(nat, p, () => nat.bf16Path!())).toBe(p.dot ? 'avx512bf16' : p.isa);
  });

  it('bf16Round is bit-for-bit the TS reference on every path', () => {
    const u = new Uint32Array(200_003);
    u.set(bitPatterns(u.length - SPECIALS.length - 512, 99));
    SPECIALS.forEach(([, x], i) => { u[u.length - 512 - SPECIALS.length + i] = x; });
    for (let e = 0; e < 256; e++) { u[u.length - 512 + 2 * e] = (e << 23) | 0x8000; u[u.length - 511 + 2 * e] = (e << 23) | 0x18000; }
    const x = new Float32Array(u.buffer);
    const want = Uint16Array.from(x, bf16Bits);
    for (const p of paths) {
      const got = new Uint16Array(x.length);
      onPath(nat, p, () => nat.bf16Round!(x, got));
      for (let i = 0; i < x.length; i++) {
        if (got[i] !== want[i]) throw new Error(`${p.name}: bf16(0x${u[i].toString(16)}) = ${hex(got[i])}, reference ${hex(want[i])}`);
      }
    }
  });

  it('GEMM packs through the same rounding: A times I and I times B give bf16(A), bf16(B) (ties, denormals to zero, large values)', () => {
    const k = 37, m = 19, n = 23;
    const specials = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8 + 2 ** -20), 1e-39, -1e-39, 2 ** -126, 3.3e38, -3.3e38, 0, -0, 0.1, 1 / 3];
    const fill = (len: number, seed: number) => {
      const v = fillRandom(new Float32Array(len), seed, -4, 4);
      for (let i = 0; i < len; i += 3) v[i] = specials[(i / 3) % specials.length];
      return v;
    };
    for (const p of paths) {
      for (const trans of [false, true]) {
        const A = fill(m * k, 3), I = new Float32Array(k * k);
        for (let i = 0; i < k; i++) I[i * k + i] = 1;
        const C = new Float32Array(m * k);
        onPath(nat, p, () => nat.gemmBf16!(trans, false, m, k, k, 1, A, trans ? m : k, 0, I, k, 0, 0, C, k, 0, 1, null, 0));
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < k; j++) {
            const want = bf16Value(bf16Bits(trans ? A[j * m + i] : A[i * k + j]));
            if (C[i * k + j] !== want) throw new Error(`${p.name} A trans=${trans}: C[${i},${j}] ${C[i * k + j]} != bf16(A) ${want}`);
          }
        }
        const B = fill(k * n, 4), C2 = new Float32Array(k * n);
        onPath(nat, p, () => nat.gemmBf16!(false, trans, k, n, k, 1, I, k, 0, B, trans ? k : n, 0, 0, C2, n, 0, 1, null, 0));
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < n; j++) {
            const want = bf16Value(bf16Bits(trans ? B[j * k + i] : B[i * n + j]));
            if (C2[i * n + j] !== want) throw new Error(`${p.name} B trans=${trans}: C[${i},${j}] ${C2[i * n + j]} != bf16(B) ${want}`);
          }
        }
      }
    }
  });

  it('alpha 1, no activation: bit-for-bit the reference on every path (random shapes, transposes, pads, batches, beta, bias)', () => {
    fc.assert(fc.property(caseArb(true), (c) => { checkExact(nat, paths, c); }), { seed: 1818, numRuns: 60 });
  });

  it('bit-for-bit over several k slices (odd k, odd last slice), threaded sizes and tiles off the edges', () => {
    const shapes: [number, number, number][] = [[33, 17, 1100], [29, 40, 1025], [160, 50, 530], [45, 70, 257], [15, 33, 31]];
    let i = 0;
    for (const [m, n, k] of shapes) {
      for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        checkExact(nat, paths, { ...base, m, n, k, transA, transB, beta: i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : 0.5, bias: i % 2 === 0, seed: 200 + i });
        i++;
      }
    }
  });

  it('any alpha, beta, bias, activation: within (1.2 (k + 2) 2^-23 + 4e-7) S of the float64 GEMM of rounded inputs', () => {
    fc.assert(fc.property(caseArb(false), (c) => { checkBound(nat, paths, c); }), { seed: 1819, numRuns: 60 });
    checkBound(nat, paths, { ...base, m: 130, n: 70, k: 700, transA: true, transB: false, alpha: -1.5, beta: 0.5, act: 2, seed: 31 });
  });

  it('within 2 (k + 2) 2^-24 S of our fp32 GEMM on bf16-rounded inputs (DiT-like shape)', () => {
    const c: Case = { ...base, padA: 0, padB: 0, padC: 0, bias: false, m: 256, n: 192, k: 576, transA: false, transB: true, seed: 41 };
    const { a, b, c0, args } = operands(c);
    const fp32 = runNative(nat, 'gemm', args, roundBf16Array(a), roundBf16Array(b), c0, null);
    const scale = gemmBf16Scale({ ...args, a, b, c: c0, bias: null });
    const bound = 2 * (c.k + 2) * 2 ** -24;
    for (const p of paths) {
      const got = onPath(nat, p, () => runNative(nat, 'gemmBf16', args, a, b, c0, null));
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        const r = Math.abs(got[i] - fp32[i]) / scale[i];
        if (!(r <= bound)) throw new Error(`${p.name}: C[${i}] ${got[i]} vs fp32 ${fp32[i]}: ${r} S > ${bound} S`);
        worst = Math.max(worst, r);
      }
      expect(worst).toBeGreaterThan(0); // the two sum in different orders: not the same numbers
    }
  });

  it('k = 0 gives act(beta C + bias); m or n = 0 writes nothing', () => {
    for (const p of paths) {
      const c = new Float32Array([1, -2, 3]);
      onPath(nat, p, () => nat.gemmBf16!(false, false, 1, 3, 0, 1, new Float32Array(0), 0, 0, new Float32Array(0), 3, 0, 0.5, c, 3, 0, 1, new Float32Array([1, 1, 1]), 1));
      expect(Array.from(c)).toEqual([1.5, 0, 2.5]);
      const d = new Float32Array([7]);
      onPath(nat, p, () => nat.gemmBf16!(false, false, 0, 1, 4, 1, new Float32Array(0), 4, 0, new Float32Array(4), 1, 0, 0, d, 1, 0, 1, null, 0));
      expect(d[0]).toBe(7);
    }
  });

  it('bad arguments throw errors naming gemmBf16 / bf16Round and the argument', () => {
    const A = new Float32Array(12), B = new Float32Array(12), C = new Float32Array(9);
    const call = (over: Record<number, unknown>) => () => {
      const args: unknown[] = [false, false, 3, 3, 4, 1, A, 4, 0, B, 3, 0, 0, C, 3, 0, 1, null, 0];
      for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
      (nat.gemmBf16 as (...a: unknown[]) => void)(...args);
    };
    expect(call({})).not.toThrow();
    expect(call({ 6: new Float64Array(12) })).toThrow(new TypeError("gemmBf16: argument 'a' must be a Float32Array"));
    expect(call({ 7: 3 })).toThrow(/gemmBf16: argument 'lda' is smaller/);
    expect(call({ 13: new Float32Array(8) })).toThrow(/gemmBf16: argument 'c' is too short: has 8 elements, needs 9/);
    expect(() => nat.bf16Round!(new Float32Array(4), new Uint32Array(4) as unknown as Uint16Array)).toThrow(/bf16Round: argument 'dst' must be a Uint16Array/);
    expect(() => nat.bf16Round!(new Float32Array(4), new Uint16Array(3))).toThrow(/bf16Round: argument 'dst' is shorter than src/);
  });
});
