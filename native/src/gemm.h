// Single-precision GEMM (C = act(alpha * op(A) op(B) + beta * C + bias)) for the addon: the call
// description, the per-ISA kernel table and the blocked driver's entry point. Other native kernels
// may call dfx::Sgemm directly. The N-API binding lives in gemm.cc; the SIMD micro-kernels in
// gemm_avx512.cc / gemm_avx2.cc / gemm_scalar.cc. It does not handle aliasing between C and A/B.
#pragma once

#include <cstdint>

namespace Napi {
class CallbackInfo;
class Value;
}  // namespace Napi

namespace dfx {

/** Activation codes, the same numbers as Act in src/kernels/types.ts. */
enum GemmAct : int { kActNone = 0, kActRelu = 1, kActGelu = 2, kActGeluTanh = 3, kActSilu = 4 };

/** One GEMM (or a strided batch of them). Row-major; see GemmArgs in src/kernels/types.ts. */
struct GemmCall {
  bool transA = false, transB = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr;
  int64_t lda = 0, strideA = 0;
  const float* b = nullptr;
  int64_t ldb = 0, strideB = 0;
  float* c = nullptr;
  int64_t ldc = 0, strideC = 0;
  int64_t batch = 1;
  const float* bias = nullptr;  // length n, or null
  int act = kActNone;
  // length m, or null (batch 1 only): out[i] = sum over k of op(A)[i][p], accumulated in double in
  // p order (the bias gradient of a Linear's dW = dy^T x, read while A is packed; the same numbers
  // as reduceSum's strided sum).
  float* rowSumsA = nullptr;
};

/**
 * One ISA's pieces for the blocked driver. Packed panels are 64-byte aligned.
 * packA: rows [0, mc) x cols [0, kc) of op(A) (a points at element (0,0) of the block) into
 *   ceil(mc/mr) panels of kc x mr floats (panel[p][r]), zero-padded to whole panels.
 * packB: rows [0, kc) x cols [0, nc) of op(B) into ceil(nc/nr) panels of kc x nr (panel[p][c]).
 * micro: one mr x nr tile, of which rows x cols are written (edge tiles use the same arithmetic):
 *   C = act(alpha * Apanel Bpanel + beta * C + bias) (beta == 0: C is not read; bias: the tile's
 *   first column's entry, or null; act: a GemmAct code), bias and activation applied in registers
 *   before the one store, with the same operations, in the same order, as `epilogue` on the
 *   stored C (so the bits do not depend on which of the two ran). The driver passes bias/act on
 *   a tile's last k slice only.
 * epilogue: in place on rows x cols of C: C += bias (if not null), then the activation (k == 0).
 */
struct GemmKernel {
  const char* isa;
  int mr, nr;
  int64_t kcMax, mcMax, ncMax;
  void (*packA)(const float* a, int64_t lda, bool trans, int64_t mc, int64_t kc, float* out);
  void (*packB)(const float* b, int64_t ldb, bool trans, int64_t kc, int64_t nc, float* out);
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                float beta, int rows, int cols, const float* bias, int act);
  void (*epilogue)(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* bias, int act);
  // Packed k granularity and element size (the bf16 GEMM, gemm_bf16.cc): k slices are cut to
  // multiples of kAlign and each slice's panels hold kc rounded up to kAlign steps (zero-padded),
  // of elemBytes each; micro gets that padded kc. fp32 kernels: 1 and 4 (floats, as above).
  int kAlign = 1;
  int elemBytes = 4;
};

const GemmKernel& GemmKernelAvx512();
const GemmKernel& GemmKernelAvx2();
const GemmKernel& GemmKernelScalar();

/** Runs the call with the active ISA's kernel on the shared thread pool. Arguments must be valid. */
void Sgemm(const GemmCall& g);

/** The same with an explicit kernel (tests/benchmarks of one path). */
void SgemmWith(const GemmKernel& kernel, const GemmCall& g);

/** The N-API body of `gemm`: checks the positional arguments (errors name the function `name`),
 *  then runs `run` on them. */
Napi::Value GemmNapi(const Napi::CallbackInfo& info, const char* name, void (*run)(const GemmCall&));

}  // namespace dfx
