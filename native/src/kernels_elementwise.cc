// Elementwise kernels for the native addon: activations (exact-erf GELU, tanh GELU, SiLU, ReLU;
// forward and backward) and DiT's adaLN modulate (forward, backward). Semantics are
// src/kernels/types.ts; references are src/kernels/js/activations.ts and modulate.ts.
//
// GELU uses Phi(x) = 0.5 erfc(-x/sqrt2) (kernels_simd.h) so the negative tail keeps its relative
// accuracy (~1e-6); tanh GELU is computed as x * sigmoid(2u), the same function without the
// 1 + tanh cancellation. Array tails shorter than one vector go through the same vector code on
// a padded copy, so every element of an array is computed by the same formula.
// Not here: the GEMM epilogue's activations (gemm_vecmath.h, helper-1's).
#include <napi.h>

#include <algorithm>
#include <vector>

#include "common.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

constexpr int kNone = 0, kRelu = 1, kGelu = 2, kGeluTanh = 3, kSilu = 4;  // types.ts Act
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kTwoSqrt2OverPi = 1.5957691216057308f;  // 2 sqrt(2/pi)
constexpr float kGeluC = 0.044715f;

template <class V, int Kind>
inline typename V::T ActFwd(typename V::T x) {
  using T = typename V::T;
  if constexpr (Kind == kRelu) return V::selectPos(x, x);
  if constexpr (Kind == kGelu) return V::mul(x, simd::NormalCdf<V>(x));
  if constexpr (Kind == kGeluTanh) {
    // 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + c x^3)
    const T u2 = V::mul(V::set1(kTwoSqrt2OverPi), V::fma(V::mul(V::set1(kGeluC), x), V::mul(x, x), x));
    return V::mul(x, simd::Sigmoid<V>(u2));
  }
  if constexpr (Kind == kSilu) return V::mul(x, simd::Sigmoid<V>(x));
  return x;
}

// act'(x) * dy
template <class V, int Kind>
inline typename V::T ActBwd(typename V::T x, typename V::T dy) {
  using T = typename V::T;
  const T one = V::set1(1.0f);
  if constexpr (Kind == kRelu) return V::selectPos(x, dy);
  if constexpr (Kind == kGelu) {
    // Phi(x) + x phi(x)
    const T pdf = V::mul(V::set1(kInvSqrt2Pi), V::exp(V::mul(V::set1(-0.5f), V::mul(x, x))));
    return V::mul(dy, V::fma(x, pdf, simd::NormalCdf<V>(x)));
  }
  if constexpr (Kind == kGeluTanh) {
    // s + x * 2 s (1 - s) * du/dx with s = sigmoid(2u); 1 - tanh^2 = 4 s (1 - s)
    const T x2 = V::mul(x, x);
    T s, c;  // sigmoid(2u) and 1 - sigmoid(2u)
    simd::SigmoidPair<V>(V::mul(V::set1(kTwoSqrt2OverPi), V::fma(V::mul(V::set1(kGeluC), x), x2, x)), &s, &c);
    const T du2 = V::mul(V::set1(kTwoSqrt2OverPi), V::fma(V::set1(3.0f * kGeluC), x2, one));  // d(2u)/dx
    return V::mul(dy, V::fma(V::mul(x, V::mul(s, c)), du2, s));
  }
  if constexpr (Kind == kSilu) {
    T s, c;
    simd::SigmoidPair<V>(x, &s, &c);
    return V::mul(dy, V::mul(s, V::fma(x, c, one)));
  }
  return dy;
}

struct ActParams {
  int kind;
  const float *x, *dy;
  float* out;  // y (forward) or dx (backward)
  int64_t len;
};

template <class V, int Kind, bool Backward>
inline void ActRange(const ActParams& p, int64_t i0, int64_t i1) {
  constexpr int W = V::W;
  int64_t i = i0;
  for (; i + W <= i1; i += W) {
    const auto x = V::load(p.x + i);
    if constexpr (Backward) V::store(p.out + i, ActBwd<V, Kind>(x, V::load(p.dy + i)));
    else V::store(p.out + i, ActFwd<V, Kind>(x));
  }
  if (i < i1) {
    float tx[W], tdy[W], to[W];
    for (int j = 0; j < W; j++) {
      tx[j] = i + j < i1 ? p.x[i + j] : 0.0f;
      tdy[j] = Backward && i + j < i1 ? p.dy[i + j] : 0.0f;
    }
    if constexpr (Backward) V::store(to, ActBwd<V, Kind>(V::load(tx), V::load(tdy)));
    else V::store(to, ActFwd<V, Kind>(V::load(tx)));
    for (int64_t j = 0; i + j < i1; j++) p.out[i + j] = to[j];
  }
}

template <class V, bool Backward>
inline void ActTask(const ActParams& p, int64_t t) {
  const int64_t i0 = t * kFlatChunk, i1 = std::min(p.len, i0 + kFlatChunk);
  switch (p.kind) {
    case kRelu: return ActRange<V, kRelu, Backward>(p, i0, i1);
    case kGelu: return ActRange<V, kGelu, Backward>(p, i0, i1);
    case kGeluTanh: return ActRange<V, kGeluTanh, Backward>(p, i0, i1);
    case kSilu: return ActRange<V, kSilu, Backward>(p, i0, i1);
    default: return ActRange<V, kNone, Backward>(p, i0, i1);
  }
}
template <class V>
void ActFwdTask(const ActParams& p, int64_t t) { ActTask<V, false>(p, t); }
template <class V>
void ActBwdTask(const ActParams& p, int64_t t) { ActTask<V, true>(p, t); }
DFX_ISA_VARIANTS(ActFwdTask, ActParams)
DFX_ISA_VARIANTS(ActBwdTask, ActParams)

int ActKind(const Args& args, size_t i) {
  const int64_t kind = args.Int(i, "kind");
  if (kind > kSilu) args.Fail("kind", "must be an Act code (0 none, 1 relu, 2 gelu, 3 geluTanh, 4 silu)");
  return int(kind);
}

// actForward(kind, x, y, len)
Napi::Value ActForward(const Napi::CallbackInfo& info) {
  Args args(info, "actForward");
  const int kind = ActKind(args, 0);
  const F32 x = args.Floats(1, "x"), y = args.Floats(2, "y");
  const int64_t len = args.Int(3, "len");
  args.NeedLen(x, len, "x");
  args.NeedLen(y, len, "y");
  ActParams p{kind, x.data, nullptr, y.data, len};
  auto task = ActFwdTaskFor();
  ParallelFor(Chunks(len, kFlatChunk), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// actBackward(kind, x, dy, dx, len)
Napi::Value ActBackward(const Napi::CallbackInfo& info) {
  Args args(info, "actBackward");
  const int kind = ActKind(args, 0);
  const F32 x = args.Floats(1, "x"), dy = args.Floats(2, "dy"), dx = args.Floats(3, "dx");
  const int64_t len = args.Int(4, "len");
  args.NeedLen(x, len, "x");
  args.NeedLen(dy, len, "dy");
  args.NeedLen(dx, len, "dx");
  ActParams p{kind, x.data, dy.data, dx.data, len};
  auto task = ActBwdTaskFor();
  ParallelFor(Chunks(len, kFlatChunk), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

////////////////////////////////////////////////////////////////////////////////////////////////
// adaLN modulate: y = x * (1 + scale) + shift, x (B, N, C), shift/scale (B, C)

constexpr int64_t kStrip = 64;  // channels per backward task

struct ModParams {
  const float *x, *dy, *shift, *scale;
  float *out, *dshift, *dscale;  // out: y (forward) or dx (backward)
  int64_t n, c, rowsPerTask, strips;
  int64_t rows;  // B * N
};

// Forward task: token rows [t*rowsPerTask, ...) of the flattened (B*N, C).
template <class V>
void ModFwdTask(const ModParams& p, int64_t t) {
  const int64_t c = p.c, r1 = std::min(p.rows, (t + 1) * p.rowsPerTask);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* sh = p.shift + (r / p.n) * c;  // (C)
    const float* sc = p.scale + (r / p.n) * c;
    const float* x = p.x + r * c;
    float* y = p.out + r * c;
    for (int64_t j = 0; j < c; j++) y[j] = x[j] * (1.0f + sc[j]) + sh[j];
  }
}
DFX_ISA_VARIANTS(ModFwdTask, ModParams)

// Backward task: batch element b, channels [j0, j0 + 64); sums over N stay inside the task.
template <class V>
void ModBwdTask(const ModParams& p, int64_t t) {
  const int64_t b = t / p.strips, j0 = (t % p.strips) * kStrip, w = std::min(kStrip, p.c - j0);
  const int64_t c = p.c;
  const float* sc = p.scale + b * c + j0;
  double dsh[kStrip] = {}, dsc[kStrip] = {};
  for (int64_t i = 0; i < p.n; i++) {
    const int64_t o = (b * p.n + i) * c + j0;
    const float* dy = p.dy + o;
    const float* x = p.x + o;
    float* dx = p.out + o;
    for (int64_t j = 0; j < w; j++) {
      dx[j] = dy[j] * (1.0f + sc[j]);
      dsh[j] += double(dy[j]);
      dsc[j] += double(dy[j] * x[j]);
    }
  }
  for (int64_t j = 0; j < w; j++) {
    p.dshift[b * c + j0 + j] = float(dsh[j]);
    p.dscale[b * c + j0 + j] = float(dsc[j]);
  }
}
DFX_ISA_VARIANTS(ModBwdTask, ModParams)

// modulateForward(x, shift, scale, y, b, n, c)
Napi::Value ModulateForward(const Napi::CallbackInfo& info) {
  Args args(info, "modulateForward");
  const F32 x = args.Floats(0, "x"), shift = args.Floats(1, "shift"), scale = args.Floats(2, "scale");
  const F32 y = args.Floats(3, "y");
  const int64_t b = args.Int(4, "b"), n = args.Int(5, "n"), c = args.Int(6, "c");
  args.NeedLen(x, b * n * c, "x");
  args.NeedLen(shift, b * c, "shift");
  args.NeedLen(scale, b * c, "scale");
  args.NeedLen(y, b * n * c, "y");
  if (b * n * c == 0) return info.Env().Undefined();
  const int64_t rowsPerTask = std::max<int64_t>(1, kFlatChunk / c);
  ModParams p{x.data, nullptr, shift.data, scale.data, y.data, nullptr, nullptr, n, c, rowsPerTask, 0, b * n};
  auto task = ModFwdTaskFor();
  ParallelFor(Chunks(b * n, rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// modulateBackward(dy, x, scale, dx, dshift, dscale, b, n, c)
Napi::Value ModulateBackward(const Napi::CallbackInfo& info) {
  Args args(info, "modulateBackward");
  const F32 dy = args.Floats(0, "dy"), x = args.Floats(1, "x"), scale = args.Floats(2, "scale");
  const F32 dx = args.Floats(3, "dx"), dshift = args.Floats(4, "dshift"), dscale = args.Floats(5, "dscale");
  const int64_t b = args.Int(6, "b"), n = args.Int(7, "n"), c = args.Int(8, "c");
  args.NeedLen(dy, b * n * c, "dy");
  args.NeedLen(x, b * n * c, "x");
  args.NeedLen(scale, b * c, "scale");
  args.NeedLen(dx, b * n * c, "dx");
  args.NeedLen(dshift, b * c, "dshift");
  args.NeedLen(dscale, b * c, "dscale");
  if (b * c == 0) return info.Env().Undefined();
  const int64_t strips = Chunks(c, kStrip);
  ModParams p{x.data, dy.data, nullptr, scale.data, dx.data, dshift.data, dscale.data, n, c, 0, strips, b * n};
  auto task = ModBwdTaskFor();
  ParallelFor(b * strips, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("actForward", Napi::Function::New(env, dfx::ActForward, "actForward"));
  exports.Set("actBackward", Napi::Function::New(env, dfx::ActBackward, "actBackward"));
  exports.Set("modulateForward", Napi::Function::New(env, dfx::ModulateForward, "modulateForward"));
  exports.Set("modulateBackward", Napi::Function::New(env, dfx::ModulateBackward, "modulateBackward"));
}
