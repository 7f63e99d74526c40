// AVX-512 GEMM pieces: a 14x32 register-blocked FMA micro-kernel (28 zmm accumulators, A
// broadcast from the packed panel, two B vectors per k step; bias and activation applied in its
// store), packing and the vectorised bias+activation epilogue (k == 0 only). Compiled for avx512f/bw/vl+fma by the target pragma below and only
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

#include "gemm_avx512_ops.h"

inline __mmask16 TailMask(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u); }

void Micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
           float beta, int rows, int cols, const float* bias, int act) {
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
  const bool readC = beta != 0.f, hasBias = bias != nullptr;
  if (rows == kMR && cols == kNR && act == kActNone) return StoreTile<kMR>(c, ldc, acc0, acc1, va, vb, readC, bias);
  const __mmask16 m0 = TailMask(cols), m1 = TailMask(cols - 16 > 0 ? cols - 16 : 0);
  const __m512 bias0 = hasBias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = hasBias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) StoreRow(c + r * ldc, acc0[r], acc1[r], m0, m1, va, vb, readC, hasBias, bias0, bias1, act);
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
