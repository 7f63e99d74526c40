// AVX-512 BF16 GEMM pieces: a 14x32 register-blocked VDPBF16PS micro-kernel (28 zmm fp32
// accumulators; per k pair, two B vectors of 16 columns x 2 bf16 and one broadcast bf16 pair of A
// per row), and packing that converts fp32 to bf16 with VCVTNE2PS2BF16 while it packs.
// Compiled for avx512f/bw/vl + avx512bf16 by the target pragma below (the per-file equivalent of
// -mavx512bf16, as gemm_avx512.cc does for AVX-512F) and only called after cpu.cc found
// AVX512_BF16 (gemm_bf16.cc chooses). The blocking driver is gemm.cc's, with kAlign 2 and 2-byte
// elements.
//
// Packed layouts (u32 = one bf16 pair: low half k even, high half k odd; k padded with zero to
// even): A panel [k pair][MR rows], B panel [k pair][NR columns].
// VDPBF16PS (Intel SDM vol. 2): per fp32 lane j, acc += a.hi * b.hi, then acc += a.lo * b.lo, each
// step one fp32 FMA rounded to nearest even, with DAZ on inputs and FTZ on results, MXCSR
// ignored. Checked on this CPU (Zen 4) against that order, bit-for-bit, on 3.2M random lanes; the
// emulation paths in gemm_bf16.cc reproduce the order.
// Tuning: 14x32 (the fp32 kernel's tile) leaves 2 zmm for B and 2 for broadcasts; see
// docs/performance.md (bf16 GEMM) for the measured rates.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "bf16.h"
#include "gemm.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")

#include "gemm_vecmath.h"

namespace dfx {
namespace {

#include "gemm_avx512_ops.h"

constexpr int kMR = 14;
constexpr int kNR = 32;

inline __mmask16 TailMask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

inline uint32_t Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
// One packed pair from two fp32 values (hi: the odd k).
inline uint32_t Pair(float lo, float hi) {
  return uint32_t(Bf16Bits(Bits(lo))) | (uint32_t(Bf16Bits(Bits(hi))) << 16);
}

// 32 bf16 [even 0..15 | odd 0..15] -> 16 pairs (even c, odd c).
inline __m512i Interleave(__m512i v) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, v);
}
// Converts 16 even-k and 16 odd-k floats to 16 pairs.
inline __m512i Pairs(__m512 even, __m512 odd) {
  return Interleave(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(odd, even)));
}

// kc: k steps of the panels (even); a, b: packed pairs (see the layouts above).
void Micro(int64_t kc, const float* aF, const float* bF, float* c, int64_t ldc, float alpha,
           float beta, int rows, int cols, const float* bias, int act) {
  const int32_t* a = reinterpret_cast<const int32_t*>(aF);
  const __m512i* b = reinterpret_cast<const __m512i*>(bF);
  __m512 acc0[kMR], acc1[kMR];
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p += 2) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_si512(b));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_load_si512(b + 1));
    _mm_prefetch(reinterpret_cast<const char*>(a + 8 * kMR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < kMR; ++r) {
      const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(a[r]));
      acc0[r] = _mm512_dpbf16_ps(acc0[r], b0, av);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], b1, av);
    }
    a += kMR;
    b += 2;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  // The store of gemm_avx512.cc's fp32 kernel (gemm_avx512_ops.h): the same bits for the same sums.
  const bool readC = beta != 0.f, hasBias = bias != nullptr;
  if (rows == kMR && cols == kNR && act == 0) return StoreTile<kMR>(c, ldc, acc0, acc1, va, vb, readC, bias);
  const __mmask16 m0 = TailMask(cols), m1 = TailMask(cols - 16);
  const __m512 bias0 = hasBias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = hasBias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 14
  for (int r = 0; r < kMR; ++r) {
    if (r < rows) StoreRow(c + r * ldc, acc0[r], acc1[r], m0, m1, va, vb, readC, hasBias, bias0, bias1, act);
  }
}

// Transposes 16 rows of 16 dwords in registers: on return r[c] holds column c.
inline void Transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
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

// 32 contiguous floats (k p..p+31 of one row/column stream) -> 16 pairs, natural order.
inline __m512 Row32(const float* src) {
  return reinterpret_cast<__m512>(_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + 16), _mm512_loadu_ps(src)));
}

// A: rows [0, mc) x k [0, kc) of op(A) into panels of kcPad/2 pairs x kMR rows.
void PackA(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* outF) {
  uint32_t* out = reinterpret_cast<uint32_t*>(outF);
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t i = 0; i < mc; i += kMR, out += kMR * pairs) {
    const int rows = mc - i < kMR ? int(mc - i) : kMR;
    if (trans) {  // op(A)(i + r, p) = a[p * lda + i + r]: rows 2q, 2q+1 of `rows` floats each
      const __mmask16 m = TailMask(rows);
      for (int64_t q = 0; q < pairs; ++q) {
        const __m512 even = _mm512_maskz_loadu_ps(m, a + 2 * q * lda + i);
        const __m512 odd = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, a + (2 * q + 1) * lda + i) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(out + q * kMR, __mmask16(0x3fff), Pairs(even, odd));
      }
      continue;
    }
    // op(A)(i + r, p) = a[(i + r) * lda + p]: 32 k at a time per row, then a 16x16 dword transpose.
    const float* src = a + i * lda;
    int64_t p = 0;
    if (rows == kMR) {
      for (; p + 32 <= kc; p += 32) {
        __m512 r[16];
#pragma GCC unroll 14
        for (int q = 0; q < kMR; ++q) r[q] = Row32(src + q * lda + p);
        r[14] = r[15] = _mm512_setzero_ps();
        Transpose16(r);
#pragma GCC unroll 16
        for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(out + (p / 2 + q) * kMR, __mmask16(0x3fff), r[q]);
      }
    }
    for (int64_t q = p / 2; q < pairs; ++q) {
      for (int r = 0; r < kMR; ++r) {
        if (r >= rows) { out[q * kMR + r] = 0; continue; }
        const float* s = src + r * lda;
        out[q * kMR + r] = Pair(s[2 * q], 2 * q + 1 < kc ? s[2 * q + 1] : 0.f);
      }
    }
  }
}

// B: k [0, kc) x columns [0, nc) of op(B) into panels of kcPad/2 pairs x kNR columns.
void PackB(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* outF) {
  uint32_t* out = reinterpret_cast<uint32_t*>(outF);
  const int64_t pairs = (kc + 1) / 2;
  for (int64_t j = 0; j < nc; j += kNR, out += kNR * pairs) {
    const int cols = nc - j < kNR ? int(nc - j) : kNR;
    if (!trans) {  // op(B)(p, j + c) = b[p * ldb + j + c]: rows 2q, 2q+1, 16 columns at a time
      const __mmask16 m0 = TailMask(cols), m1 = TailMask(cols - 16);
      for (int64_t q = 0; q < pairs; ++q) {
        const float* e = b + 2 * q * ldb + j;
        const bool hasOdd = 2 * q + 1 < kc;
        const float* o = e + ldb;
        const __m512 o0 = hasOdd ? _mm512_maskz_loadu_ps(m0, o) : _mm512_setzero_ps();
        const __m512 o1 = hasOdd ? _mm512_maskz_loadu_ps(m1, o + 16) : _mm512_setzero_ps();
        _mm512_storeu_si512(out + q * kNR, Pairs(_mm512_maskz_loadu_ps(m0, e), o0));
        _mm512_storeu_si512(out + q * kNR + 16, Pairs(_mm512_maskz_loadu_ps(m1, e + 16), o1));
      }
      continue;
    }
    // op(B)(p, j + c) = b[(j + c) * ldb + p]: each column a k stream; 16 columns x 32 k, then a
    // 16x16 dword transpose.
    int64_t p = 0;
    for (; p + 32 <= kc; p += 32) {
      for (int g = 0; g < kNR; g += 16) {
        __m512 r[16];
        for (int c = 0; c < 16; ++c) {
          r[c] = g + c < cols ? Row32(b + (j + g + c) * ldb + p) : _mm512_setzero_ps();
        }
        Transpose16(r);
        for (int q = 0; q < 16; ++q) _mm512_storeu_ps(reinterpret_cast<float*>(out + (p / 2 + q) * kNR + g), r[q]);
      }
    }
    for (int64_t q = p / 2; q < pairs; ++q) {
      for (int c = 0; c < kNR; ++c) {
        if (c >= cols) { out[q * kNR + c] = 0; continue; }
        const float* s = b + (j + c) * ldb;
        out[q * kNR + c] = Pair(s[2 * q], 2 * q + 1 < kc ? s[2 * q + 1] : 0.f);
      }
    }
  }
}

}  // namespace

void ToBf16Avx512Bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(v));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
    _mm256_mask_storeu_epi16(dst + i, m, reinterpret_cast<__m256i>(v));
  }
}

}  // namespace dfx

#pragma GCC pop_options

namespace dfx {
// Outside the target region: building the table runs no AVX-512 code. The epilogue (bias and
// activation on fp32 C) is the fp32 AVX-512 kernel's.
const GemmKernel& GemmKernelAvx512Bf16() {
  static const GemmKernel k{"avx512bf16", kMR, kNR, kBf16KcMax, kMR * 36, 4096, PackA, PackB, Micro,
                            GemmKernelAvx512().epilogue, 2, 2};
  return k;
}
}  // namespace dfx
