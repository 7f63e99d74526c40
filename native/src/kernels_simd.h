// Thin SIMD vector types for the non-GEMM kernels (attention, norms, elementwise, reductions,
// optimisers) and the pattern that compiles one generic kernel body per instruction set.
//
// A kernel body is a template over V (Avx512, Avx2 or Scalar below) that uses V::T and the V::
// operations. DFX_ISA_VARIANTS(Body, Params) stamps out three entry points; the AVX ones carry
// __attribute__((target(...), flatten)), so the whole generic body (and its plain scalar loops,
// which GCC then auto-vectorises for that ISA) is compiled inside a function that has the ISA
// enabled. The Scalar variant is compiled for the baseline x86-64 target. Nothing here needs
// -march=native, and only the variant that cpu.h's ActiveIsa() names is ever called.
//
// It holds no kernels and no threading. exp is a Cephes-style polynomial (about 2 ulp) on the
// AVX paths and std::exp on the scalar path, all with the same clamps.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "cpu.h"

// The generic bodies pass __m512 by value between inlined helpers; GCC warns that the ABI would
// differ if they were ever called out of line without AVX-512, which flatten prevents.
#pragma GCC diagnostic ignored "-Wpsabi"
// GCC 12 flags _mm512_undefined_ps() inside its own AVX-512 intrinsics (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define DFX_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define DFX_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace dfx {
namespace simd {

// exp(x) clamps: below kExpLo the result is flushed to 0, above kExpHi it saturates at
// exp(kExpHi) (~1.6e38), so 2^n never leaves the normal range. NaN propagates.
constexpr float kExpLo = -87.0f;
constexpr float kExpHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

struct Avx512 {
  using T = __m512;
  static constexpr int W = 16;
  DFX_TARGET_AVX512 static inline T zero() { return _mm512_setzero_ps(); }
  DFX_TARGET_AVX512 static inline T set1(float x) { return _mm512_set1_ps(x); }
  DFX_TARGET_AVX512 static inline T load(const float* p) { return _mm512_loadu_ps(p); }
  DFX_TARGET_AVX512 static inline void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  DFX_TARGET_AVX512 static inline T add(T a, T b) { return _mm512_add_ps(a, b); }
  DFX_TARGET_AVX512 static inline T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  DFX_TARGET_AVX512 static inline T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  DFX_TARGET_AVX512 static inline T div(T a, T b) { return _mm512_div_ps(a, b); }
  /** a * b + c */
  DFX_TARGET_AVX512 static inline T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  /** max(a, b); returns b when either is NaN (put the possibly-NaN value second). */
  DFX_TARGET_AVX512 static inline T max(T a, T b) { return _mm512_max_ps(a, b); }
  DFX_TARGET_AVX512 static inline T min(T a, T b) { return _mm512_min_ps(a, b); }
  DFX_TARGET_AVX512 static inline T sqrt(T a) { return _mm512_sqrt_ps(a); }
  DFX_TARGET_AVX512 static inline T abs(T a) { return _mm512_abs_ps(a); }
  /** x < 0 ? a : b, lane by lane. */
  DFX_TARGET_AVX512 static inline T selectNeg(T x, T a, T b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), b, a);
  }
  /** x > 0 ? a : 0, lane by lane. */
  DFX_TARGET_AVX512 static inline T selectPos(T x, T a) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), a);
  }
  DFX_TARGET_AVX512 static inline float hsum(T a) {
    __m256 s = _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  DFX_TARGET_AVX512 static inline float hmax(T a) { return _mm512_reduce_max_ps(a); }
  DFX_TARGET_AVX512 static inline T exp(T x) {
    T c = _mm512_min_ps(_mm512_set1_ps(kExpHi), _mm512_max_ps(_mm512_set1_ps(kExpLo), x));
    T n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), c);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
    T y = ExpPoly(r);
    y = _mm512_scalef_ps(y, n);
    // Flush to zero below the clamp (NaN compares false and stays NaN).
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLo), _CMP_LT_OQ), y, _mm512_setzero_ps());
  }
  DFX_TARGET_AVX512 static inline T ExpPoly(T r) {
    T p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  }
};

struct Avx2 {
  using T = __m256;
  static constexpr int W = 8;
  DFX_TARGET_AVX2 static inline T zero() { return _mm256_setzero_ps(); }
  DFX_TARGET_AVX2 static inline T set1(float x) { return _mm256_set1_ps(x); }
  DFX_TARGET_AVX2 static inline T load(const float* p) { return _mm256_loadu_ps(p); }
  DFX_TARGET_AVX2 static inline void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  DFX_TARGET_AVX2 static inline T add(T a, T b) { return _mm256_add_ps(a, b); }
  DFX_TARGET_AVX2 static inline T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  DFX_TARGET_AVX2 static inline T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  DFX_TARGET_AVX2 static inline T div(T a, T b) { return _mm256_div_ps(a, b); }
  DFX_TARGET_AVX2 static inline T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  DFX_TARGET_AVX2 static inline T max(T a, T b) { return _mm256_max_ps(a, b); }
  DFX_TARGET_AVX2 static inline T min(T a, T b) { return _mm256_min_ps(a, b); }
  DFX_TARGET_AVX2 static inline T sqrt(T a) { return _mm256_sqrt_ps(a); }
  DFX_TARGET_AVX2 static inline T abs(T a) {
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  }
  DFX_TARGET_AVX2 static inline T selectNeg(T x, T a, T b) {
    return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  }
  DFX_TARGET_AVX2 static inline T selectPos(T x, T a) {
    return _mm256_and_ps(a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
  }
  DFX_TARGET_AVX2 static inline float hsum(T a) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  DFX_TARGET_AVX2 static inline float hmax(T a) {
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  DFX_TARGET_AVX2 static inline T exp(T x) {
    T c = _mm256_min_ps(_mm256_set1_ps(kExpHi), _mm256_max_ps(_mm256_set1_ps(kExpLo), x));
    T n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), c);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    T p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    T y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n built in the exponent field; n is in [-126, 127] after the clamp.
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_LT_OQ), y);
  }
};

struct Scalar {
  using T = float;
  static constexpr int W = 1;
  static inline T zero() { return 0.0f; }
  static inline T set1(float x) { return x; }
  static inline T load(const float* p) { return *p; }
  static inline void store(float* p, T v) { *p = v; }
  static inline T add(T a, T b) { return a + b; }
  static inline T sub(T a, T b) { return a - b; }
  static inline T mul(T a, T b) { return a * b; }
  static inline T div(T a, T b) { return a / b; }
  static inline T fma(T a, T b, T c) { return a * b + c; }
  static inline T max(T a, T b) { return a > b ? a : b; }
  static inline T min(T a, T b) { return a < b ? a : b; }
  static inline T sqrt(T a) { return std::sqrt(a); }
  static inline T abs(T a) { return std::fabs(a); }
  static inline T selectNeg(T x, T a, T b) { return x < 0.0f ? a : b; }
  static inline T selectPos(T x, T a) { return x > 0.0f ? a : 0.0f; }
  static inline float hsum(T a) { return a; }
  static inline float hmax(T a) { return a; }
  // Same clamps as the vector paths (NaN passes through both comparisons).
  static inline T exp(T x) { return x < kExpLo ? 0.0f : std::exp(x > kExpHi ? kExpHi : x); }
};

/** 1 / (1 + exp(-x)). */
template <class V>
inline typename V::T Sigmoid(typename V::T x) {
  return V::div(V::set1(1.0f), V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), x))));
}

/** s = sigmoid(x) and c = 1 - s, with c = exp(-x) s so it keeps its precision as s -> 1. */
template <class V>
inline void SigmoidPair(typename V::T x, typename V::T* s, typename V::T* c) {
  const typename V::T e = V::exp(V::sub(V::zero(), x));
  *s = V::div(V::set1(1.0f), V::add(V::set1(1.0f), e));
  *c = V::mul(e, *s);
}

/**
 * Phi(x) = 0.5 erfc(-x / sqrt 2), the standard normal CDF, with relative error ~1e-7 in both
 * tails (Numerical Recipes' erfcc, fractional error < 1.2e-7, on |x|/sqrt2; no 1+erf cancellation).
 */
template <class V>
inline typename V::T NormalCdf(typename V::T x) {
  using T = typename V::T;
  T z = V::mul(V::abs(x), V::set1(0.70710678118654752f));
  T t = V::div(V::set1(1.0f), V::fma(V::set1(0.5f), z, V::set1(1.0f)));
  T p = V::set1(0.17087277f);
  p = V::fma(p, t, V::set1(-0.82215223f));
  p = V::fma(p, t, V::set1(1.48851587f));
  p = V::fma(p, t, V::set1(-1.13520398f));
  p = V::fma(p, t, V::set1(0.27886807f));
  p = V::fma(p, t, V::set1(-0.18628806f));
  p = V::fma(p, t, V::set1(0.09678418f));
  p = V::fma(p, t, V::set1(0.37409196f));
  p = V::fma(p, t, V::set1(1.00002368f));
  p = V::fma(p, t, V::set1(-1.26551223f));
  // z^2 as 0.5 x^2: squaring the rounded z would double its rounding error (~1e-7 relative on an
  // exponent up to ~40, i.e. a few 1e-6 relative on the result in the far tail).
  const T zz = V::mul(V::set1(0.5f), V::mul(x, x));
  T half_erfc = V::mul(V::mul(V::set1(0.5f), t), V::exp(V::sub(p, zz)));
  return V::selectNeg(x, half_erfc, V::sub(V::set1(1.0f), half_erfc));
}

}  // namespace simd

/** Picks one of the three compiled variants of a kernel body for the active ISA. */
template <class F>
inline F PickIsa(F avx512, F avx2, F scalar) {
  switch (ActiveIsa()) {
    case Isa::Avx512: return avx512;
    case Isa::Avx2: return avx2;
    default: return scalar;
  }
}

}  // namespace dfx

// Defines NameAvx512 / NameAvx2 / NameScalar(const Params&, int64_t task) from the template
// Name<V>(const Params&, int64_t task), and NameFor() returning the one for the active ISA.
#define DFX_ISA_VARIANTS(Name, Params)                                                          \
  DFX_TARGET_AVX512 __attribute__((flatten)) static void Name##Avx512(const Params& p, int64_t t) { \
    Name<::dfx::simd::Avx512>(p, t);                                                            \
  }                                                                                             \
  DFX_TARGET_AVX2 __attribute__((flatten)) static void Name##Avx2(const Params& p, int64_t t) {  \
    Name<::dfx::simd::Avx2>(p, t);                                                              \
  }                                                                                             \
  static void Name##Scalar(const Params& p, int64_t t) { Name<::dfx::simd::Scalar>(p, t); }      \
  static inline void (*Name##For())(const Params&, int64_t) {                                   \
    return ::dfx::PickIsa<void (*)(const Params&, int64_t)>(Name##Avx512, Name##Avx2, Name##Scalar); \
  }
