// The AVX-512 "ops" struct for gemm_vecmath.h's activation templates, shared by the fp32
// (gemm_avx512.cc) and bf16 (gemm_avx512bf16.cc) kernels so both apply bias and activation in
// their stores with the same instructions. Include it inside an AVX-512 target region, in an
// anonymous namespace (internal linkage per file, as gemm_pack.h's templates), after
// <immintrin.h> and gemm_vecmath.h.
#pragma once

struct O {
  using T = __m512;
  static T set1(float v) { return _mm512_set1_ps(v); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm512_fnmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T neg(T a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(int(0x80000000u)))); }
  static T abs(T a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
  static T round(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2(T n) {  // 2^n for integral n in [-126, 127]
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_castsi512_ps(e);
  }
  static T copysign(T mag, T sign) {
    __m512i s = _mm512_and_si512(_mm512_castps_si512(sign), _mm512_set1_epi32(int(0x80000000u)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(abs(mag)), s));
  }
};

/** One row's two output vectors of a 14x32 tile, finished in registers and stored through masks
 *  m0, m1: C = act(alpha acc + beta C + bias), the operations of the epilogue pass in that order.
 *  bias0/bias1: the row's bias vectors (zero lanes past cols) when hasBias. */
inline void StoreRow(float* c, __m512 acc0, __m512 acc1, __mmask16 m0, __mmask16 m1, __m512 alpha,
                     __m512 beta, bool readC, bool hasBias, __m512 bias0, __m512 bias1, int act) {
  __m512 r0 = _mm512_mul_ps(alpha, acc0), r1 = _mm512_mul_ps(alpha, acc1);
  if (readC) {
    r0 = _mm512_fmadd_ps(alpha, acc0, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m0, c)));
    r1 = _mm512_fmadd_ps(alpha, acc1, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m1, c + 16)));
  }
  if (hasBias) {
    // The barrier keeps the compiler from contracting alpha * acc + bias into one FMA (C++ allows
    // it by default, -ffp-contract=fast): the epilogue pass rounds the product first.
    __asm__("" : "+v"(r0), "+v"(r1));
    r0 = _mm512_add_ps(r0, bias0);
    r1 = _mm512_add_ps(r1, bias1);
  }
  if (act != 0) {
    r0 = dfx::vecmath::Activate<O>(act, r0);
    r1 = dfx::vecmath::Activate<O>(act, r1);
  }
  _mm512_mask_storeu_ps(c, m0, r0);
  _mm512_mask_storeu_ps(c + 16, m1, r1);
}

/** A whole 14x32 tile (rows and columns full), no activation: C = alpha acc + beta C (+ bias),
 *  unmasked, as StoreRow computes it. */
template <int kMR>
inline void StoreTile(float* c, int64_t ldc, const __m512* acc0, const __m512* acc1, __m512 alpha,
                      __m512 beta, bool readC, const float* bias) {
  const bool hasBias = bias != nullptr;
  const __m512 bias0 = hasBias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 bias1 = hasBias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    float* cr = c + r * ldc;
    __m512 r0 = _mm512_mul_ps(alpha, acc0[r]), r1 = _mm512_mul_ps(alpha, acc1[r]);
    if (readC) {
      r0 = _mm512_fmadd_ps(alpha, acc0[r], _mm512_mul_ps(beta, _mm512_loadu_ps(cr)));
      r1 = _mm512_fmadd_ps(alpha, acc1[r], _mm512_mul_ps(beta, _mm512_loadu_ps(cr + 16)));
    }
    if (hasBias) {
      __asm__("" : "+v"(r0), "+v"(r1));  // no contraction, as in StoreRow
      r0 = _mm512_add_ps(r0, bias0);
      r1 = _mm512_add_ps(r1, bias1);
    }
    _mm512_storeu_ps(cr, r0);
    _mm512_storeu_ps(cr + 16, r1);
  }
}
