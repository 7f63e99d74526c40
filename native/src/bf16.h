// bfloat16 rounding shared by every bf16 path (gemm_bf16.cc, gemm_avx512bf16.cc): the scalar
// definition of fp32 -> bf16 that the hardware instruction computes, and the bf16 GEMM's entry.
//
// Rounding (Intel SDM vol. 2, VCVTNE2PS2BF16 / VCVTNEPS2BF16, "convert_fp32_to_bfloat16"): the
// instruction ignores MXCSR and
//   - treats a denormal input as zero (DAZ): +-denormal -> +-0 (sign kept);
//   - keeps +-inf;
//   - keeps a NaN's sign and top payload bits and sets the quiet bit (bit 6 of the bf16);
//   - rounds every normal number to nearest, ties to even (an integer add of 0x7fff + lsb to the
//     fp32 bits, then the top 16 bits), overflowing to +-inf past the largest bf16.
// Checked on this machine's AVX512_BF16 (AMD EPYC, Zen 4) over all 2^32 inputs: identical to
// Bf16Bits below (and differing from the same formula without DAZ on exactly the 2 (2^23 - 1)
// denormals). The TypeScript reference is src/kernels/js/bf16.ts.
#pragma once

#include <cstdint>
#include <cstring>

#include "gemm.h"

namespace dfx {

/** The bf16 bit pattern of the fp32 with bits x (see the rules above). */
inline uint16_t Bf16Bits(uint32_t x) {
  const uint32_t abs = x & 0x7fffffffu;
  if (abs < 0x00800000u) return uint16_t((x >> 16) & 0x8000u);     // +-0, +-denormal -> +-0
  if (abs > 0x7f800000u) return uint16_t((x >> 16) | 0x0040u);     // NaN -> quiet NaN
  if (abs == 0x7f800000u) return uint16_t(x >> 16);                // +-inf
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);         // RNE
}

/** The fp32 holding the bf16 value of x (bf16 bits << 16: exact widening). */
inline float RoundBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = uint32_t(Bf16Bits(u)) << 16;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

/** C = act(alpha op(bf16(A)) op(bf16(B)) + beta C + bias) with fp32 accumulation, on the active
 *  bf16 path (gemm_bf16.cc). Arguments must be valid, as for Sgemm. */
void GemmBf16(const GemmCall& g);

/** The VDPBF16PS kernel (gemm_avx512bf16.cc); call only when HasAvx512Bf16(). */
const GemmKernel& GemmKernelAvx512Bf16();
/** dst[i] = Bf16Bits(src[i]) with VCVTNE2PS2BF16 (gemm_avx512bf16.cc); only when HasAvx512Bf16(). */
void ToBf16Avx512Bf16(const float* src, uint16_t* dst, int64_t n);

/** k steps of every bf16 kernel's slice: the same on every path, so that they sum alike. */
constexpr int64_t kBf16KcMax = 512;

}  // namespace dfx
