// Optimiser updates for the native addon, in place over flat float32 parameter arrays: AdamW
// (PyTorch torch.optim.AdamW semantics: decoupled weight decay, bias correction, eps outside the
// sqrt) and the EMA used for the teacher. Semantics are src/kernels/types.ts; the reference is
// src/kernels/js/optim.ts. Plain float loops that GCC vectorises per ISA (on the AVX paths it may
// contract a*b + c into an FMA, so ISAs can differ in the last bit; thread counts never do).
#include <napi.h>

#include <algorithm>
#include <cmath>

#include "common.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

struct AdamParams {
  float *p, *m, *v;
  const float* g;
  int64_t len;
  // 1 - beta in double first: 1 - 0.999f is 1.3e-5 off 0.001. decay = 1 - lr*wd, stepSize = lr / bc1.
  float beta1, beta2, oneMinusBeta1, oneMinusBeta2, decay, stepSize, invBc2, eps;
};

template <class V>
void AdamTask(const AdamParams& a, int64_t t) {
  const int64_t i0 = t * kFlatChunk, i1 = std::min(a.len, i0 + kFlatChunk);
  const float b1 = a.beta1, b2 = a.beta2, c1 = a.oneMinusBeta1, c2 = a.oneMinusBeta2;
  for (int64_t i = i0; i < i1; i++) {
    const float g = a.g[i];
    const float m = b1 * a.m[i] + c1 * g;
    const float v = b2 * a.v[i] + c2 * (g * g);
    a.m[i] = m;
    a.v[i] = v;
    a.p[i] = a.p[i] * a.decay - a.stepSize * m / (std::sqrt(v * a.invBc2) + a.eps);
  }
}
DFX_ISA_VARIANTS(AdamTask, AdamParams)

struct EmaParams {
  float* target;
  const float* source;
  int64_t len;
  float decay, oneMinusDecay;  // 1 - decay taken in double (decay is often 0.9999)
};

template <class V>
void EmaTask(const EmaParams& e, int64_t t) {
  const int64_t i0 = t * kFlatChunk, i1 = std::min(e.len, i0 + kFlatChunk);
  const float d = e.decay, c = e.oneMinusDecay;
  for (int64_t i = i0; i < i1; i++) e.target[i] = d * e.target[i] + c * e.source[i];
}
DFX_ISA_VARIANTS(EmaTask, EmaParams)

// adamw(p, g, m, v, len, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Args args(info, "adamw");
  const F32 p = args.Floats(0, "p"), g = args.Floats(1, "g"), m = args.Floats(2, "m"), v = args.Floats(3, "v");
  const int64_t len = args.Int(4, "len");
  const double lr = args.Num(5, "lr"), beta1 = args.Num(6, "beta1"), beta2 = args.Num(7, "beta2");
  const double eps = args.Num(8, "eps"), wd = args.Num(9, "weightDecay");
  const int64_t step = args.Int(10, "step");
  if (step < 1) args.Fail("step", "must be >= 1 (steps count from 1)");
  args.NeedLen(p, len, "p");
  args.NeedLen(g, len, "g");
  args.NeedLen(m, len, "m");
  args.NeedLen(v, len, "v");
  // Bias corrections in double: 1 - beta^step loses everything in float for beta2 near 1.
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  AdamParams a{p.data, m.data, v.data, g.data, len, float(beta1), float(beta2), float(1.0 - beta1), float(1.0 - beta2),
               float(1.0 - lr * wd), float(lr / bc1), float(1.0 / bc2), float(eps)};
  auto task = AdamTaskFor();
  ParallelFor(Chunks(len, kFlatChunk), [&](int64_t t) { task(a, t); });
  return info.Env().Undefined();
}

// ema(target, source, len, decay)
Napi::Value Ema(const Napi::CallbackInfo& info) {
  Args args(info, "ema");
  const F32 target = args.Floats(0, "target"), source = args.Floats(1, "source");
  const int64_t len = args.Int(2, "len");
  const double decay = args.Num(3, "decay");
  args.NeedLen(target, len, "target");
  args.NeedLen(source, len, "source");
  EmaParams e{target.data, source.data, len, float(decay), float(1.0 - decay)};
  auto task = EmaTaskFor();
  ParallelFor(Chunks(len, kFlatChunk), [&](int64_t t) { task(e, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamw", Napi::Function::New(env, dfx::AdamW, "adamw"));
  exports.Set("ema", Napi::Function::New(env, dfx::Ema, "ema"));
}
