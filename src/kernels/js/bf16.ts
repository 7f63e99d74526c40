// TypeScript reference of bfloat16 rounding and of the bf16 GEMM (bf16 inputs, fp32 products
// and sums, fp32 C): the contract of native/src/gemm_bf16.cc and gemm_avx512bf16.cc. Slow and
// plain; no bit tricks beyond the definition.
//
// fp32 -> bf16 as the hardware converts (Intel SDM vol. 2, VCVTNE2PS2BF16, "convert_fp32_to_
// bfloat16"; MXCSR is not consulted):
//   - zero and denormal inputs give a signed zero (denormals are treated as zero, DAZ);
//   - +-inf stays +-inf;
//   - a NaN keeps its sign and top 7 payload bits and gets the quiet bit (bf16 bit 6) set;
//   - normal numbers round to nearest, ties to even, overflowing to +-inf.
// (bf16: 1 sign, 8 exponent, 7 fraction bits = the top 16 bits of an fp32. Checked against
// VCVTNE2PS2BF16 on an AVX512_BF16 CPU over all 2^32 inputs; see native/src/bf16.h.)
//
// The GEMM's sums follow VDPBF16PS (Intel SDM vol. 2, "VDPBF16PS"): per output, k is taken in
// pairs (2q, 2q+1) and the accumulator takes acc = fma(a[2q+1], b[2q+1], acc), then
// acc = fma(a[2q], b[2q], acc), each an fp32 FMA rounded to nearest even (a bf16 x bf16 product
// is exact in fp32). k is summed in slices of at most BF16_KC_MAX steps, cut as the native
// driver cuts them (equal slices rounded up to even), each slice from zero, then stored as
// C = alpha * acc + beta * C for the first slice and C = alpha * acc + C after it, with
// act(C + bias) last. Every value here is an fp32 (Math.fround); a sum of two fp32 computed in
// float64 and then rounded to fp32 is the correctly rounded fp32 sum (53 >= 2 * 24 + 2), so each
// fma above is exact as written.
import { Act, type GemmArgs } from '../types.ts';
import { applyAct } from './activations.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bf16 bit pattern (0..0xffff) of x rounded to fp32 first. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = u >>> 31, exp = (u >>> 23) & 0xff, frac = u & 0x7fffff;
  if (exp === 0) return sign << 15; // zero or denormal: signed zero
  if (exp === 0xff) return frac === 0 ? u >>> 16 : (u >>> 16) | 0x40; // inf; NaN made quiet
  // Normal: keep the top 16 bits, round on the 16 dropped ones, ties to an even kept part.
  const kept = u >>> 16, dropped = u & 0xffff;
  const up = dropped > 0x8000 || (dropped === 0x8000 && (kept & 1) === 1);
  return (kept + (up ? 1 : 0)) & 0xffff; // a carry into the exponent is right (up to inf)
}

/** The number a bf16 bit pattern stands for. */
export function bf16Value(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** x rounded to bf16 (as a number). */
export function roundBf16(x: number): number {
  return bf16Value(bf16Bits(x));
}

/** dst[i] = bf16Bits(src[i]). */
export function toBf16(src: ArrayLike<number>, dst: Uint16Array): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = bf16Bits(src[i]);
  return dst;
}

/** A Float32Array copy of x with every element rounded to bf16. */
export function roundBf16Array(x: ArrayLike<number>): Float32Array {
  return Float32Array.from(x, roundBf16);
}

/** The native bf16 GEMM's k slice length (kBf16KcMax in native/src/bf16.h). */
export const BF16_KC_MAX = 512;

/** The slices [start, end) of k as the native driver cuts them for the bf16 kernels. */
export function bf16Slices(k: number, kcMax = BF16_KC_MAX): [number, number][] {
  if (k === 0) return [];
  const step = Math.ceil(Math.ceil(k / Math.ceil(k / kcMax)) / 2) * 2;
  const out: [number, number][] = [];
  for (let s = 0; s < k; s += step) out.push([s, Math.min(k, s + step)]);
  return out;
}

/**
 * C[i] = act(alpha op(bf16(A[i])) op(bf16(B[i])) + beta C[i] + bias) in fp32, summed as the
 * header says. With alpha = 1 every rounding here is the native kernels' (all paths); with other
 * alpha the store's fma rounds once natively and twice here (alpha acc is not exact in fp32).
 */
export function gemmBf16(g: GemmArgs): void {
  const { transA, transB, m, n, k, a, lda, b, ldb, c, ldc } = g;
  const alpha = Math.fround(g.alpha ?? 1), beta = Math.fround(g.beta ?? 0);
  const batch = g.batch ?? 1;
  const sA = g.strideA ?? 0, sB = g.strideB ?? 0, sC = g.strideC ?? 0;
  const bias = g.bias ?? null;
  const act = g.act ?? Act.none;
  const fr = Math.fround;
  const opA = (o: number, i: number, p: number): number => roundBf16(transA ? a[o + p * lda + i] : a[o + i * lda + p]);
  const opB = (o: number, p: number, j: number): number => roundBf16(transB ? b[o + j * ldb + p] : b[o + p * ldb + j]);
  const slices = bf16Slices(k);
  for (let bi = 0; bi < batch; bi++) {
    const oA = bi * sA, oB = bi * sB, oC = bi * sC;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const ci = oC + i * ldc + j;
        let cv = beta === 0 ? 0 : fr(c[ci]);
        slices.forEach(([s, e], si) => {
          let acc = 0;
          for (let p = s; p < e; p += 2) {
            if (p + 1 < e) acc = fr(acc + opA(oA, i, p + 1) * opB(oB, p + 1, j));
            else acc = fr(acc + 0); // the zero pad of an odd slice (turns -0 into +0, as natively)
            acc = fr(acc + opA(oA, i, p) * opB(oB, p, j));
          }
          const betaNow = si === 0 ? beta : 1;
          cv = betaNow === 0 ? fr(alpha * acc) : fr(fr(alpha * acc) + fr(betaNow * cv));
        });
        if (k === 0) cv = beta === 0 ? 0 : fr(beta * cv);
        if (bias) cv = fr(cv + bias[j]);
        c[ci] = act === Act.none ? cv : applyAct(act, cv);
      }
    }
  }
}

/** S = |alpha| |op(bf16 A)| |op(bf16 B)| + |beta C| + |bias|, in float64: the scale of a sum's rounding error. */
export function gemmBf16Scale(g: GemmArgs): Float64Array {
  const out = Float64Array.from(g.c, (v) => ((g.beta ?? 0) === 0 ? 0 : Math.abs(v)));
  const { transA, transB, m, n, k, a, lda, b, ldb, ldc } = g;
  const batch = g.batch ?? 1, sA = g.strideA ?? 0, sB = g.strideB ?? 0, sC = g.strideC ?? 0;
  const alpha = Math.abs(g.alpha ?? 1), beta = Math.abs(g.beta ?? 0);
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const x = transA ? a[bi * sA + p * lda + i] : a[bi * sA + i * lda + p];
          const y = transB ? b[bi * sB + j * ldb + p] : b[bi * sB + p * ldb + j];
          s += Math.abs(roundBf16(x) * roundBf16(y));
        }
        const ci = bi * sC + i * ldc + j;
        out[ci] = alpha * s + beta * out[ci] + (g.bias ? Math.abs(g.bias[j]) : 0);
      }
    }
  }
  return out;
}
