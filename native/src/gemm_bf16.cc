// bf16 GEMM: C = act(alpha op(bf16(A)) op(bf16(B)) + beta C + bias), inputs rounded to bf16 while
// they are packed (bf16.h: Bf16Bits), products and sums in fp32, C in fp32. The blocked driver is
// gemm.cc's (SgemmWith) with one of these kernels:
//   - avx512bf16 (gemm_avx512bf16.cc): VDPBF16PS, when CPUID has AVX512_BF16 and the active ISA
//     is avx512 (unless DIFFACTOR_BF16=emulate or setBf16Dot(false));
//   - emulation on avx512 / avx2 / scalar: the ISA's fp32 micro-kernel over panels packed here as
//     fp32 holding bf16 values, with the two k of each pair swapped, so each fp32 accumulator
//     takes the same FMAs in the same order as VDPBF16PS (odd k, then even k; zero pad on odd k).
//     A product of two bf16 is exact in fp32, so FMA and multiply-then-add round alike.
// What "the same" means, as tested in test/kernels/gemmBf16.test.ts:
//   - conversion: bit-for-bit identical on every path (and to src/kernels/js/bf16.ts);
//   - products and sums: every path (same kcMax for all, kBf16KcMax) gives bit-identical C when
//     act is none and no partial sum is an fp32 denormal (VDPBF16PS flushes those, the emulation
//     does not: a difference below 2^-126 per step), with alpha == 1 or beta == 0 for the scalar
//     path (its fp32 store multiplies and adds unfused; the SIMD ones use an FMA).
// N-API: gemmBf16 (gemm's arguments), bf16Round(src, dst: Uint16Array) on the active path,
// bf16Path(), setBf16Dot(on).
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bf16.h"
#include "common.h"
#include "cpu.h"
#include "gemm.h"

namespace dfx {
namespace {

// The fp32 value op(A)(i, p) or op(B)(p, j) as bf16, zero outside [0, kc).
inline float At(const float* x, int64_t ld, bool trans, int64_t row, int64_t col) {
  return RoundBf16(trans ? x[col * ld + row] : x[row * ld + col]);
}

// Emulation packing: the fp32 layouts of gemm.h (panel[p][r], panel[p][c]) over kcPad = kc
// rounded up to even, where slot p holds k = p ^ 1 (pairs swapped), zero when that k >= kc.
template <int MR>
void PackAEmu(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out) {
  const int64_t kcPad = (kc + 1) / 2 * 2;
  for (int64_t i = 0; i < mc; i += MR, out += MR * kcPad) {
    const int rows = mc - i < MR ? int(mc - i) : MR;
    for (int64_t p = 0; p < kcPad; ++p) {
      const int64_t q = p ^ 1;
      float* dst = out + p * MR;
      for (int r = 0; r < MR; ++r) dst[r] = r < rows && q < kc ? At(a, lda, trans, i + r, q) : 0.f;
    }
  }
}

template <int NR>
void PackBEmu(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* out) {
  const int64_t kcPad = (kc + 1) / 2 * 2;
  for (int64_t j = 0; j < nc; j += NR, out += NR * kcPad) {
    const int cols = nc - j < NR ? int(nc - j) : NR;
    for (int64_t p = 0; p < kcPad; ++p) {
      const int64_t q = p ^ 1;
      float* dst = out + p * NR;
      // op(B)(q, j + c) is b[q * ldb + j + c], or b[(j + c) * ldb + q] when transposed.
      for (int c = 0; c < NR; ++c) dst[c] = c < cols && q < kc ? At(b, ldb, !trans, j + c, q) : 0.f;
    }
  }
}

template <int MR, int NR>
GemmKernel Emulation(const GemmKernel& fp32, const char* name) {
  if (fp32.mr != MR || fp32.nr != NR) {
    throw std::logic_error(std::string("bf16 emulation: the ") + fp32.isa + " fp32 kernel's tile changed; update gemm_bf16.cc");
  }
  return GemmKernel{name, MR, NR, kBf16KcMax, fp32.mcMax, fp32.ncMax, PackAEmu<MR>, PackBEmu<NR>,
                    fp32.micro, fp32.epilogue, 2, 4};
}

std::atomic<bool>& DotWanted() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("DIFFACTOR_BF16");
    return !(env != nullptr && std::strcmp(env, "emulate") == 0);
  }()};
  return on;
}

bool DotActive() { return HasAvx512Bf16() && DotWanted().load(std::memory_order_relaxed) && ActiveIsa() == Isa::Avx512; }

const GemmKernel& ActiveBf16Kernel() {
  if (DotActive()) return GemmKernelAvx512Bf16();
  switch (ActiveIsa()) {
    case Isa::Avx512: {
      static const GemmKernel k = Emulation<14, 32>(GemmKernelAvx512(), "avx512");
      return k;
    }
    case Isa::Avx2: {
      static const GemmKernel k = Emulation<6, 16>(GemmKernelAvx2(), "avx2");
      return k;
    }
    default: {
      static const GemmKernel k = Emulation<4, 8>(GemmKernelScalar(), "scalar");
      return k;
    }
  }
}

void ToBf16(const float* src, uint16_t* dst, int64_t n) {
  if (DotActive()) return ToBf16Avx512Bf16(src, dst, n);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, sizeof u);
    dst[i] = Bf16Bits(u);
  }
}

// bf16Round(src: Float32Array, dst: Uint16Array): dst[i] = bf16 bits of src[i], on the active path.
Napi::Value Bf16RoundFn(const Napi::CallbackInfo& info) {
  Args args(info, "bf16Round");
  F32 src = args.Floats(0, "src");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array) {
    args.Fail("dst", "must be a Uint16Array");
  }
  Napi::Uint16Array dst = info[1].As<Napi::Uint16Array>();
  if (dst.ElementLength() < src.length) args.Fail("dst", "is shorter than src");
  ToBf16(src.data, dst.Data(), int64_t(src.length));
  return info.Env().Undefined();
}

// bf16Path(): 'avx512bf16' (VDPBF16PS) or the emulating ISA ('avx512' | 'avx2' | 'scalar').
Napi::Value Bf16PathFn(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ActiveBf16Kernel().isa);
}

// setBf16Dot(on: boolean): whether the bf16 GEMM may use VDPBF16PS (process-wide; for tests and
// benchmarks of the emulation on a CPU that has AVX512_BF16). Returns bf16Path(); throws when
// asked for VDPBF16PS on a CPU without it.
Napi::Value SetBf16DotFn(const Napi::CallbackInfo& info) {
  Args args(info, "setBf16Dot");
  const bool on = args.Bool(0, "on");
  if (on && !HasAvx512Bf16()) args.Fail("on", "is true but this CPU has no AVX512_BF16");
  DotWanted().store(on, std::memory_order_relaxed);
  return Bf16PathFn(info);
}

Napi::Value GemmBf16Fn(const Napi::CallbackInfo& info) { return GemmNapi(info, "gemmBf16", GemmBf16); }

}  // namespace

void GemmBf16(const GemmCall& g) { SgemmWith(ActiveBf16Kernel(), g); }

}  // namespace dfx

void RegisterGemmBf16(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmBf16", Napi::Function::New(env, dfx::GemmBf16Fn, "gemmBf16"));
  exports.Set("bf16Round", Napi::Function::New(env, dfx::Bf16RoundFn, "bf16Round"));
  exports.Set("bf16Path", Napi::Function::New(env, dfx::Bf16PathFn, "bf16Path"));
  exports.Set("setBf16Dot", Napi::Function::New(env, dfx::SetBf16DotFn, "setBf16Dot"));
}
