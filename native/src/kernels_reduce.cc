// Reductions for the native addon: reduceSum over the middle axis of (outer, len, inner) and
// sumSquares of a flat array, both accumulated in double. Semantics are src/kernels/types.ts;
// the reference is src/kernels/js/reduce.ts.
//
// Deterministic order, independent of pool size and ISA: a contiguous sum is split into fixed
// 64K-element chunks, each summed in 8 interleaved double lanes (lane j takes elements j mod 8),
// lanes and then chunks added in index order. A strided sum (inner > 1) gives each task a strip
// of 64 output columns and walks len in order.
#include <napi.h>

#include <algorithm>
#include <vector>

#include "common.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

constexpr int64_t kSumChunk = 65536;
constexpr int64_t kStrip = 64;

// sum x[0..n) (Square: of x^2) in 8 double lanes, lanes added in order at the end.
template <bool Square>
inline double LaneSum(const float* x, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; j++) {
      const double v = x[i + j];
      acc[j] += Square ? v * v : v;
    }
  }
  for (int j = 0; i + j < n; j++) {
    const double v = x[i + j];
    acc[j] += Square ? v * v : v;
  }
  double s = 0;
  for (int j = 0; j < 8; j++) s += acc[j];
  return s;
}

struct FlatSumParams {
  const float* x;
  int64_t len;
  double* partial;  // (chunks)
};

template <class V>
void SumSquaresTask(const FlatSumParams& p, int64_t t) {
  const int64_t i0 = t * kSumChunk;
  p.partial[t] = LaneSum<true>(p.x + i0, std::min(kSumChunk, p.len - i0));
}
DFX_ISA_VARIANTS(SumSquaresTask, FlatSumParams)

struct ReduceParams {
  const float* x;
  float* out;
  int64_t outer, len, inner, strips;
};

// inner == 1: one task per outer index, a contiguous lane sum over len.
template <class V>
void ReduceRowTask(const ReduceParams& p, int64_t o) {
  p.out[o] = float(LaneSum<false>(p.x + o * p.len, p.len));
}
DFX_ISA_VARIANTS(ReduceRowTask, ReduceParams)

// inner > 1: outer index o, output columns [i0, i0 + 64), walking len in order.
template <class V>
void ReduceStripTask(const ReduceParams& p, int64_t t) {
  const int64_t o = t / p.strips, i0 = (t % p.strips) * kStrip, w = std::min(kStrip, p.inner - i0);
  double acc[kStrip] = {};
  for (int64_t l = 0; l < p.len; l++) {
    const float* x = p.x + (o * p.len + l) * p.inner + i0;
    for (int64_t i = 0; i < w; i++) acc[i] += double(x[i]);
  }
  for (int64_t i = 0; i < w; i++) p.out[o * p.inner + i0 + i] = float(acc[i]);
}
DFX_ISA_VARIANTS(ReduceStripTask, ReduceParams)

// reduceSum(x, out, outer, len, inner)
Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  Args args(info, "reduceSum");
  const F32 x = args.Floats(0, "x"), out = args.Floats(1, "out");
  const int64_t outer = args.Int(2, "outer"), len = args.Int(3, "len"), inner = args.Int(4, "inner");
  args.NeedLen(x, outer * len * inner, "x");
  args.NeedLen(out, outer * inner, "out");
  if (outer * inner == 0) return info.Env().Undefined();
  ReduceParams p{x.data, out.data, outer, len, inner, Chunks(inner, kStrip)};
  if (inner == 1) {
    auto task = ReduceRowTaskFor();
    ParallelFor(outer, [&](int64_t t) { task(p, t); });
  } else {
    auto task = ReduceStripTaskFor();
    ParallelFor(outer * p.strips, [&](int64_t t) { task(p, t); });
  }
  return info.Env().Undefined();
}

// sumSquares(x, len) -> number
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args args(info, "sumSquares");
  const F32 x = args.Floats(0, "x");
  const int64_t len = args.Int(1, "len");
  args.NeedLen(x, len, "x");
  const int64_t chunks = Chunks(len, kSumChunk);
  std::vector<double> partial(size_t(std::max<int64_t>(chunks, 1)), 0.0);
  FlatSumParams p{x.data, len, partial.data()};
  auto task = SumSquaresTaskFor();
  ParallelFor(chunks, [&](int64_t t) { task(p, t); });
  double s = 0;
  for (int64_t t = 0; t < chunks; t++) s += partial[t];
  return Napi::Number::New(info.Env(), s);
}

}  // namespace
}  // namespace dfx

void RegisterReduce(Napi::Env env, Napi::Object exports) {
  exports.Set("reduceSum", Napi::Function::New(env, dfx::ReduceSum, "reduceSum"));
  exports.Set("sumSquares", Napi::Function::New(env, dfx::SumSquares, "sumSquares"));
}
