// Panel packing for the blocked GEMM, as templates over the tile size. Each ISA file instantiates
// them inside its own target region with a Tag type from its anonymous namespace, so every copy
// has internal linkage and is compiled for that ISA only (no cross-ISA symbol merging).
// See GemmKernel::packA / packB in gemm.h for the layouts. No SIMD intrinsics here.
#pragma once

#include <cstdint>
#include <cstring>

namespace dfx {
namespace gemm_pack {

template <class Tag, int MR>
void PackA(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out) {
  for (int64_t i = 0; i < mc; i += MR, out += MR * kc) {
    const int rows = mc - i < MR ? int(mc - i) : MR;
    if (trans) {
      // op(A)(i + r, p) = a[p * lda + i + r]: each p holds `rows` contiguous floats.
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = a + p * lda + i;
        float* dst = out + p * MR;
        for (int r = 0; r < rows; ++r) dst[r] = src[r];
        for (int r = rows; r < MR; ++r) dst[r] = 0.f;
      }
    } else if (rows == MR) {
      // op(A)(i + r, p) = a[(i + r) * lda + p]: a transpose of MR row streams.
      const float* src[MR];
      for (int r = 0; r < MR; ++r) src[r] = a + (i + r) * lda;
      for (int64_t p = 0; p < kc; ++p) {
        float* dst = out + p * MR;
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) dst[r] = src[r][p];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        float* dst = out + p * MR;
        for (int r = 0; r < rows; ++r) dst[r] = a[(i + r) * lda + p];
        for (int r = rows; r < MR; ++r) dst[r] = 0.f;
      }
    }
  }
}

template <class Tag, int NR>
void PackB(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* out) {
  for (int64_t j = 0; j < nc; j += NR, out += NR * kc) {
    const int cols = nc - j < NR ? int(nc - j) : NR;
    if (!trans) {
      // op(B)(p, j + c) = b[p * ldb + j + c]: contiguous runs of `cols`.
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = b + p * ldb + j;
        float* dst = out + p * NR;
        if (cols == NR) {
          std::memcpy(dst, src, sizeof(float) * NR);
        } else {
          for (int c = 0; c < cols; ++c) dst[c] = src[c];
          for (int c = cols; c < NR; ++c) dst[c] = 0.f;
        }
      }
    } else {
      // op(B)(p, j + c) = b[(j + c) * ldb + p]: `cols` streams, transposed in blocks of 8 p's so
      // each stream is read a cache line at a time.
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        for (int c = 0; c < cols; ++c) {
          const float* src = b + (j + c) * ldb + p;
#pragma GCC unroll 8
          for (int q = 0; q < 8; ++q) out[(p + q) * NR + c] = src[q];
        }
        for (int c = cols; c < NR; ++c) {
          for (int q = 0; q < 8; ++q) out[(p + q) * NR + c] = 0.f;
        }
      }
      for (; p < kc; ++p) {
        for (int c = 0; c < cols; ++c) out[p * NR + c] = b[(j + c) * ldb + p];
        for (int c = cols; c < NR; ++c) out[p * NR + c] = 0.f;
      }
    }
  }
}

}  // namespace gemm_pack
}  // namespace dfx
