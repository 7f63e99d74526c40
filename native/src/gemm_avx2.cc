// AVX2 GEMM pieces: a 6x16 register-blocked FMA micro-kernel (12 ymm accumulators; bias and
// activation applied in its store), packing and the vectorised bias+activation epilogue (k == 0). Compiled for avx2+fma by the target pragma below and
// only called after cpu.cc found those features. The blocking driver is in gemm.cc.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

#include "gemm_pack.h"
#include "gemm_vecmath.h"

namespace dfx {
namespace {

struct Tag {};
constexpr int kMR = 6;
constexpr int kNR = 16;

struct O {
  using T = __m256;
  static T set1(float v) { return _mm256_set1_ps(v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T fnma(T a, T b, T c) { return _mm256_fnmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T neg(T a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.f)); }
  static T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), a); }
  static T round(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2(T n) {  // 2^n for integral n in [-126, 127]
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_castsi256_ps(e);
  }
  static T copysign(T mag, T sign) {
    return _mm256_or_ps(abs(mag), _mm256_and_ps(sign, _mm256_set1_ps(-0.f)));
  }
};

inline __m256i TailMask(int64_t n) {
  const int v = n >= 8 ? 8 : (n <= 0 ? 0 : int(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void Micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
           float beta, int rows, int cols, const float* bias, int act) {
  __m256 acc0[kMR], acc1[kMR];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    _mm_prefetch(reinterpret_cast<const char*>(a + 16 * kMR), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    a += kMR;
    b += kNR;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const bool readC = beta != 0.f, hasBias = bias != nullptr;
  if (rows == kMR && cols == kNR && act == kActNone) {
    const __m256 bias0 = hasBias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    const __m256 bias1 = hasBias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      float* cr = c + r * ldc;
      __m256 r0 = _mm256_mul_ps(va, acc0[r]), r1 = _mm256_mul_ps(va, acc1[r]);
      if (readC) {
        r0 = _mm256_fmadd_ps(va, acc0[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr)));
        r1 = _mm256_fmadd_ps(va, acc1[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)));
      }
      if (hasBias) {
        __asm__("" : "+x"(r0), "+x"(r1));  // no contraction of alpha * acc + bias
        r0 = _mm256_add_ps(r0, bias0);
        r1 = _mm256_add_ps(r1, bias1);
      }
      _mm256_storeu_ps(cr, r0);
      _mm256_storeu_ps(cr + 8, r1);
    }
    return;
  }
  // Edge tiles, bias, activation: C = act(alpha acc + beta C + bias) in registers, in the order
  // of Epilogue's pass over a stored C, then one masked store.
  const __m256i m0 = TailMask(cols), m1 = TailMask(cols - 8);
  const __m256 bias0 = hasBias ? _mm256_maskload_ps(bias, m0) : _mm256_setzero_ps();
  const __m256 bias1 = hasBias ? _mm256_maskload_ps(bias + 8, m1) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    if (r >= rows) break;
    float* cr = c + r * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc0[r]), r1 = _mm256_mul_ps(va, acc1[r]);
    if (readC) {
      r0 = _mm256_fmadd_ps(va, acc0[r], _mm256_mul_ps(vb, _mm256_maskload_ps(cr, m0)));
      r1 = _mm256_fmadd_ps(va, acc1[r], _mm256_mul_ps(vb, _mm256_maskload_ps(cr + 8, m1)));
    }
    if (hasBias) {
      __asm__("" : "+x"(r0), "+x"(r1));  // no contraction of alpha * acc + bias (see gemm_avx512_ops.h)
      r0 = _mm256_add_ps(r0, bias0);
      r1 = _mm256_add_ps(r1, bias1);
    }
    if (act != kActNone) {
      r0 = vecmath::Activate<O>(act, r0);
      r1 = vecmath::Activate<O>(act, r1);
    }
    _mm256_maskstore_ps(cr, m0, r0);
    _mm256_maskstore_ps(cr + 8, m1, r1);
  }
}

void Epilogue(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* bias, int act) {
  for (int64_t i = 0; i < rows; ++i) {
    float* cr = c + i * ldc;
    for (int64_t j = 0; j < cols; j += 8) {
      const __m256i m = TailMask(cols - j);
      __m256 v = _mm256_maskload_ps(cr + j, m);
      if (bias != nullptr) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, m));
      v = vecmath::Activate<O>(act, v);
      _mm256_maskstore_ps(cr + j, m, v);
    }
  }
}

// Transposes 8 rows of 8 floats in registers: on return r[c] holds column c.
inline void Transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// Row-major A (the common case) packs by transposing full 6-row panels 8 columns at a time.
void PackA(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out) {
  if (trans || kc < 8) return gemm_pack::PackA<Tag, kMR>(a, lda, trans, mc, kc, out);
  const int64_t fullRows = mc / kMR * kMR, kc8 = kc / 8 * 8;
  const __m256i six = TailMask(kMR);
  for (int64_t i = 0; i < fullRows; i += kMR, out += kMR * kc) {
    const float* src = a + i * lda;
    for (int64_t p = 0; p < kc8; p += 8) {
      __m256 r[8];
#pragma GCC unroll 6
      for (int q = 0; q < kMR; ++q) r[q] = _mm256_loadu_ps(src + q * lda + p);
      r[6] = r[7] = _mm256_setzero_ps();
      Transpose8(r);
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) _mm256_maskstore_ps(out + (p + q) * kMR, six, r[q]);
    }
    for (int64_t p = kc8; p < kc; ++p) {
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
// Outside the target region: building the table runs no AVX2 code.
const GemmKernel& GemmKernelAvx2() {
  static const GemmKernel k{"avx2", kMR, kNR, 256, kMR * 64, 4096, PackA, PackB, Micro, Epilogue};
  return k;
}
}  // namespace dfx
