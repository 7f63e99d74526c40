// Portable GEMM pieces for CPUs without AVX2+FMA: a 4x8 register tile in plain C++ (the compiler
// may use baseline SSE2), packing and the scalar bias+activation epilogue using the same
// activation formulas as the SIMD paths. The blocking driver is in gemm.cc.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "gemm.h"
#include "gemm_pack.h"
#include "gemm_vecmath.h"

namespace dfx {
namespace {

struct Tag {};
constexpr int kMR = 4;
constexpr int kNR = 8;

struct O {
  using T = float;
  static T set1(float v) { return v; }
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T fma(T a, T b, T c) { return a * b + c; }  // unfused: no FMA unit on this path
  static T fnma(T a, T b, T c) { return c - a * b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static T min(T a, T b) { return a < b ? a : b; }
  static T neg(T a) { return -a; }
  static T abs(T a) { return std::fabs(a); }
  static T round(T a) { return std::nearbyint(a); }
  static T pow2(T n) {  // 2^n for integral n in [-126, 127]
    const uint32_t bits = uint32_t(int32_t(n) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static T copysign(T mag, T sign) { return std::copysign(mag, sign); }
};

void Micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
           float beta, int rows, int cols, const float* bias, int act) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < kMR; ++r) {
      const float av = a[r];
      for (int j = 0; j < kNR; ++j) acc[r][j] += av * b[j];
    }
    a += kMR;
    b += kNR;
  }
  for (int r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < cols; ++j) {
      float v = beta != 0.f ? alpha * acc[r][j] + beta * cr[j] : alpha * acc[r][j];
      if (bias != nullptr) v += bias[j];  // then the activation: Epilogue's order
      cr[j] = act != kActNone ? vecmath::Activate<O>(act, v) : v;
    }
  }
}

void Epilogue(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* bias, int act) {
  for (int64_t i = 0; i < rows; ++i) {
    float* cr = c + i * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      float v = cr[j];
      if (bias != nullptr) v += bias[j];
      cr[j] = vecmath::Activate<O>(act, v);
    }
  }
}

void PackA(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out) {
  gemm_pack::PackA<Tag, kMR>(a, lda, trans, mc, kc, out);
}
void PackB(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* out) {
  gemm_pack::PackB<Tag, kNR>(b, ldb, trans, kc, nc, out);
}

}  // namespace

const GemmKernel& GemmKernelScalar() {
  static const GemmKernel k{"scalar", kMR, kNR, 256, kMR * 64, 2048, PackA, PackB, Micro, Epilogue};
  return k;
}

}  // namespace dfx
