// AVX-512 GEMM pieces: a 14x32 register-blocked FMA micro-kernel (28 zmm accumulators, A
// broadcast from the packed panel, two B vectors per k step), packing and the vectorised
// bias+activation epilogue. Compiled for avx512f/bw/vl+fma by the target pragma below and only
// called after cpu.cc found those features. The blocking driver is in gemm.cc.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma")

#include "gemm_pack.h"
#include "gemm_vecmath.h"

namespace dfx {
namespace {

struct Tag {};
constexpr int kMR = 14;
constexpr int kNR = 32;

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

inline __mmask16 TailMask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

// C(rows x cols) = alpha * acc + beta * C, through masks; acc is a 14x32 tile (row stride 32).
inline void StoreRow(float* c, __m512 acc0, __m512 acc1, int cols, __m512 alpha, __m512 beta,
                     bool readC) {
  __mmask16 m0 = TailMask(cols), m1 = TailMask(cols - 16 > 0 ? cols - 16 : 0);
  __m512 r0 = _mm512_mul_ps(alpha, acc0), r1 = _mm512_mul_ps(alpha, acc1);
  if (readC) {
    r0 = _mm512_fmadd_ps(alpha, acc0, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m0, c)));
    r1 = _mm512_fmadd_ps(alpha, acc1, _mm512_mul_ps(beta, _mm512_maskz_loadu_ps(m1, c + 16)));
  }
  _mm512_mask_storeu_ps(c, m0, r0);
  _mm512_mask_storeu_ps(c + 16, m1, r1);
}

void Micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
           float beta, int rows, int cols) {
  __m512 acc0[kMR], acc1[kMR];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(a + 8 * kMR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
    a += kMR;
    b += kNR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const bool readC = beta != 0.f;
  if (rows == kMR && cols == kNR) {
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      float* cr = c + r * ldc;
      __m512 r0 = _mm512_mul_ps(va, acc0[r]), r1 = _mm512_mul_ps(va, acc1[r]);
      if (readC) {
        r0 = _mm512_fmadd_ps(va, acc0[r], _mm512_mul_ps(vb, _mm512_loadu_ps(cr)));
        r1 = _mm512_fmadd_ps(va, acc1[r], _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16)));
      }
      _mm512_storeu_ps(cr, r0);
      _mm512_storeu_ps(cr + 16, r1);
    }
    return;
  }
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) StoreRow(c + r * ldc, acc0[r], acc1[r], cols, va, vb, readC);
  }
}

void Epilogue(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* bias, int act) {
  for (int64_t i = 0; i < rows; ++i) {
    float* cr = c + i * ldc;
    for (int64_t j = 0; j < cols; j += 16) {
      const __mmask16 m = TailMask(cols - j);
      __m512 v = _mm512_maskz_loadu_ps(m, cr + j);
      if (bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
      v = vecmath::Activate<O>(act, v);
      _mm512_mask_storeu_ps(cr + j, m, v);
    }
  }
}

// Transposes 16 rows of 16 floats in registers: on return r[c] holds column c.
inline void Transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4g + c]: rows 4g..4g+3 of columns c, c+4, c+8, c+12 (one per 128-bit lane).
  for (int g = 0; g < 4; ++g) {
    r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    t[8 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
    r[c + 8] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
    r[c + 4] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
    r[c + 12] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xDD);
  }
}

// Row-major A is the common case (activations times weights) and its packing is a transpose:
// do full 14-row panels 16 columns at a time in registers; the rest goes through the template.
void PackA(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out) {
  if (trans) {  // each k step holds up to 14 contiguous floats: one masked load and store
    for (int64_t i = 0; i < mc; i += kMR, out += kMR * kc) {
      const __mmask16 m = TailMask(mc - i < kMR ? mc - i : kMR);
      for (int64_t p = 0; p < kc; ++p) {
        _mm512_mask_storeu_ps(out + p * kMR, __mmask16(0x3fff), _mm512_maskz_loadu_ps(m, a + p * lda + i));
      }
    }
    return;
  }
  if (kc < 16) return gemm_pack::PackA<Tag, kMR>(a, lda, false, mc, kc, out);
  const int64_t fullRows = mc / kMR * kMR, kc16 = kc / 16 * 16;
  for (int64_t i = 0; i < fullRows; i += kMR, out += kMR * kc) {
    const float* src = a + i * lda;
    for (int64_t p = 0; p < kc16; p += 16) {
      __m512 r[16];
#pragma GCC unroll 14
      for (int q = 0; q < kMR; ++q) r[q] = _mm512_loadu_ps(src + q * lda + p);
      r[14] = r[15] = _mm512_setzero_ps();
      Transpose16(r);
#pragma GCC unroll 16
      for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(out + (p + q) * kMR, __mmask16(0x3fff), r[q]);
    }
    for (int64_t p = kc16; p < kc; ++p) {
      for (int q = 0; q < kMR; ++q) out[p * kMR + q] = src[q * lda + p];
    }
  }
  if (fullRows < mc) gemm_pack::PackA<Tag, kMR>(a + fullRows * lda, lda, false, mc - fullRows, kc, out);
}
void PackB(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* out) {
  gemm_pack::PackB<Tag, kNR>(b, ldb, trans, kc, nc, out);
}

}  // namespace
}  // namespace dfx

#pragma GCC pop_options

namespace dfx {
// Outside the target region: building the table runs no AVX-512 code.
const GemmKernel& GemmKernelAvx512() {
  static const GemmKernel k{"avx512", kMR, kNR, 256, kMR * 36, 4096, PackA, PackB, Micro, Epilogue};
  return k;
}
}  // namespace dfx
