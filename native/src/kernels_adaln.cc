// The two fused adaLN-Zero kernels of a DiT/SiT block for the native addon, forward and backward:
// the gated residual out = x + gate * y, and layer norm (no affine) followed by modulate
// y = xhat * (1 + scale) + shift, with gate/shift/scale (B, C) broadcast over the N tokens.
// Semantics are src/kernels/types.ts; the reference is src/kernels/js/adaln.ts.
//
// Work split (a function of the sizes only, so results do not depend on the pool size): forward
// tasks are fixed blocks of token rows; backward tasks are (batch element, 64-channel strip) for
// the gated residual and (batch element, 64-row block) for layer norm, whose per-channel partial
// sums (in double) are added in block order afterwards. Row tails shorter than a vector run
// through the same vector code on a padded copy, so every element takes the same formula.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

constexpr int64_t kStrip = 64;      // channels per gated-residual backward task
constexpr int64_t kRowBlock = 64;   // token rows per layer-norm backward task

inline int64_t RowsPerTask(int64_t c) { return std::max<int64_t>(1, kFlatChunk / std::max<int64_t>(c, 1)); }

// Row tails: In copies the last n < W floats into a zero-padded vector-sized array, Out copies n back.
struct Pad {
  template <int W>
  static void In(const float* src, int64_t n, float* dst) {
    for (int j = 0; j < W; j++) dst[j] = j < n ? src[j] : 0.0f;
  }
  static void Out(const float* src, int64_t n, float* dst) {
    for (int64_t j = 0; j < n; j++) dst[j] = src[j];
  }
};

////////////////////////////////////////////////////////////////////////////////////////////////
// gated residual

struct GateParams {
  const float *x, *gate, *y, *dout;
  float *out, *dy, *dgate;
  int64_t b, n, c, rowsPerTask, strips;
};

template <class V>
void GateFwdTask(const GateParams& p, int64_t t) {
  constexpr int W = V::W;
  const int64_t c = p.c, r1 = std::min(p.b * p.n, (t + 1) * p.rowsPerTask);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* g = p.gate + (r / p.n) * c;  // (C)
    const float* x = p.x + r * c;
    const float* y = p.y + r * c;
    float* o = p.out + r * c;
    int64_t j = 0;
    for (; j + W <= c; j += W) V::store(o + j, V::fma(V::load(g + j), V::load(y + j), V::load(x + j)));
    if (j < c) {
      float tg[W], ty[W], tx[W], to[W];
      Pad::In<W>(g + j, c - j, tg);
      Pad::In<W>(y + j, c - j, ty);
      Pad::In<W>(x + j, c - j, tx);
      V::store(to, V::fma(V::load(tg), V::load(ty), V::load(tx)));
      Pad::Out(to, c - j, o + j);
    }
  }
}
DFX_ISA_VARIANTS(GateFwdTask, GateParams)

// Batch element b, channels [j0, j0 + 64): dy = dout * gate; dgate = sum over N of dout * y.
template <class V>
void GateBwdTask(const GateParams& p, int64_t t) {
  const int64_t b = t / p.strips, j0 = (t % p.strips) * kStrip, w = std::min(kStrip, p.c - j0);
  const int64_t c = p.c;
  const float* g = p.gate + b * c + j0;
  double acc[kStrip] = {};
  for (int64_t i = 0; i < p.n; i++) {
    const int64_t o = (b * p.n + i) * c + j0;
    const float* d = p.dout + o;
    const float* y = p.y + o;
    float* dy = p.dy + o;
    for (int64_t j = 0; j < w; j++) {
      dy[j] = d[j] * g[j];
      acc[j] += double(d[j]) * double(y[j]);
    }
  }
  for (int64_t j = 0; j < w; j++) p.dgate[b * c + j0 + j] = float(acc[j]);
}
DFX_ISA_VARIANTS(GateBwdTask, GateParams)

// gatedResidualForward(x, gate, y, out, b, n, c)
Napi::Value GatedResidualForward(const Napi::CallbackInfo& info) {
  Args args(info, "gatedResidualForward");
  const F32 x = args.Floats(0, "x"), gate = args.Floats(1, "gate"), y = args.Floats(2, "y"), out = args.Floats(3, "out");
  const int64_t b = args.Int(4, "b"), n = args.Int(5, "n"), c = args.Int(6, "c");
  args.NeedLen(x, b * n * c, "x");
  args.NeedLen(gate, b * c, "gate");
  args.NeedLen(y, b * n * c, "y");
  args.NeedLen(out, b * n * c, "out");
  if (b * n * c == 0) return info.Env().Undefined();
  GateParams p{x.data, gate.data, y.data, nullptr, out.data, nullptr, nullptr, b, n, c, RowsPerTask(c), 0};
  auto task = GateFwdTaskFor();
  ParallelFor(Chunks(b * n, p.rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// gatedResidualBackward(dout, gate, y, dy, dgate, b, n, c)
Napi::Value GatedResidualBackward(const Napi::CallbackInfo& info) {
  Args args(info, "gatedResidualBackward");
  const F32 dout = args.Floats(0, "dout"), gate = args.Floats(1, "gate"), y = args.Floats(2, "y");
  const F32 dy = args.Floats(3, "dy"), dgate = args.Floats(4, "dgate");
  const int64_t b = args.Int(5, "b"), n = args.Int(6, "n"), c = args.Int(7, "c");
  args.NeedLen(dout, b * n * c, "dout");
  args.NeedLen(gate, b * c, "gate");
  args.NeedLen(y, b * n * c, "y");
  args.NeedLen(dy, b * n * c, "dy");
  args.NeedLen(dgate, b * c, "dgate");
  if (b * c == 0) return info.Env().Undefined();
  GateParams p{nullptr, gate.data, y.data, dout.data, nullptr, dy.data, dgate.data, b, n, c, 0, Chunks(c, kStrip)};
  auto task = GateBwdTaskFor();
  ParallelFor(b * p.strips, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

////////////////////////////////////////////////////////////////////////////////////////////////
// layer norm + modulate

struct LnmParams {
  const float *x, *shift, *scale, *dy, *mean, *rstd;
  float *y, *dx, *outMean, *outRstd;
  double* partial;  // backward: (tasks, 2, C) sums of dy and dy * xhat per row block
  int64_t b, n, c, rowsPerTask, blocksPerB;
  float eps;
};

template <class V>
inline float VecSum(const float* x, int64_t n) {
  typename V::T acc = V::zero();
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W) acc = V::add(acc, V::load(x + j));
  float s = V::hsum(acc);
  for (; j < n; j++) s += x[j];
  return s;
}

template <class V>
void LnmFwdTask(const LnmParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t c = p.c, r1 = std::min(p.b * p.n, (t + 1) * p.rowsPerTask);
  const T one = V::set1(1.0f);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* x = p.x + r * c;  // (C)
    const float* sh = p.shift + (r / p.n) * c;
    const float* sc = p.scale + (r / p.n) * c;
    float* y = p.y + r * c;
    const float mean = VecSum<V>(x, c) / float(c);
    const T vm = V::set1(mean);
    T acc = V::zero();
    int64_t j = 0;
    for (; j + W <= c; j += W) {
      const T d = V::sub(V::load(x + j), vm);
      acc = V::fma(d, d, acc);
    }
    float var = V::hsum(acc);
    for (; j < c; j++) var += (x[j] - mean) * (x[j] - mean);
    const float rstd = 1.0f / std::sqrt(var / float(c) + p.eps);
    const T vs = V::set1(rstd);
    auto body = [&](const float* xx, const float* ssh, const float* ssc, float* yy) {
      const T h = V::mul(V::sub(V::load(xx), vm), vs);
      V::store(yy, V::fma(h, V::add(one, V::load(ssc)), V::load(ssh)));
    };
    for (j = 0; j + W <= c; j += W) body(x + j, sh + j, sc + j, y + j);
    if (j < c) {
      float tx[W], tsh[W], tsc[W], ty[W];
      Pad::In<W>(x + j, c - j, tx);
      Pad::In<W>(sh + j, c - j, tsh);
      Pad::In<W>(sc + j, c - j, tsc);
      body(tx, tsh, tsc, ty);
      Pad::Out(ty, c - j, y + j);
    }
    p.outMean[r] = mean;
    p.outRstd[r] = rstd;
  }
}
DFX_ISA_VARIANTS(LnmFwdTask, LnmParams)

// Batch element b = t / blocksPerB, rows [blk*64, ...) of it: dx, and this block's partial
// dshift/dscale sums.
template <class V>
void LnmBwdTask(const LnmParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t c = p.c, b = t / p.blocksPerB, i0 = (t % p.blocksPerB) * kRowBlock;
  const int64_t i1 = std::min(p.n, i0 + kRowBlock);
  const float* sc = p.scale + b * c;  // (C)
  double* psh = p.partial + t * 2 * c;  // (C)
  double* psc = psh + c;                // (C)
  std::fill(psh, psh + 2 * c, 0.0);
  // dn = dy * (1 + scale) goes through a scratch row so both passes over the row see one value.
  float* dn = Scratch(size_t(RoundUp(c, W)));
  const T one = V::set1(1.0f);
  for (int64_t i = i0; i < i1; i++) {
    const int64_t r = b * p.n + i;
    const float* x = p.x + r * c;
    const float* dy = p.dy + r * c;
    float* dx = p.dx + r * c;
    const float m = p.mean[r], s = p.rstd[r];
    const T vm = V::set1(m), vs = V::set1(s);
    T a1 = V::zero(), a2 = V::zero();
    int64_t j = 0;
    for (; j + W <= c; j += W) {
      const T h = V::mul(V::sub(V::load(x + j), vm), vs);
      const T d = V::mul(V::load(dy + j), V::add(one, V::load(sc + j)));
      V::store(dn + j, d);
      a1 = V::add(a1, d);
      a2 = V::fma(d, h, a2);
    }
    float s1 = V::hsum(a1), s2 = V::hsum(a2);
    for (; j < c; j++) {
      const float h = (x[j] - m) * s, d = dy[j] * (1.0f + sc[j]);
      dn[j] = d;
      s1 += d;
      s2 += d * h;
    }
    const float dnMean = s1 / float(c), dnhMean = s2 / float(c);
    for (j = 0; j < c; j++) {
      const float h = (x[j] - m) * s;
      dx[j] = (dn[j] - dnMean - h * dnhMean) * s;
      psh[j] += double(dy[j]);
      psc[j] += double(dy[j]) * double(h);
    }
  }
}
DFX_ISA_VARIANTS(LnmBwdTask, LnmParams)

// layerNormModulateForward(x, shift, scale, y, mean, rstd, b, n, c, eps)
Napi::Value LayerNormModulateForward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormModulateForward");
  const F32 x = args.Floats(0, "x"), shift = args.Floats(1, "shift"), scale = args.Floats(2, "scale");
  const F32 y = args.Floats(3, "y"), mean = args.Floats(4, "mean"), rstd = args.Floats(5, "rstd");
  const int64_t b = args.Int(6, "b"), n = args.Int(7, "n"), c = args.Int(8, "c");
  const double eps = args.Num(9, "eps");
  args.NeedLen(x, b * n * c, "x");
  args.NeedLen(shift, b * c, "shift");
  args.NeedLen(scale, b * c, "scale");
  args.NeedLen(y, b * n * c, "y");
  args.NeedLen(mean, b * n, "mean");
  args.NeedLen(rstd, b * n, "rstd");
  if (b * n * c == 0) return info.Env().Undefined();
  LnmParams p{x.data, shift.data, scale.data, nullptr, nullptr, nullptr, y.data, nullptr, mean.data, rstd.data,
              nullptr, b, n, c, RowsPerTask(c), 0, float(eps)};
  auto task = LnmFwdTaskFor();
  ParallelFor(Chunks(b * n, p.rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// layerNormModulateBackward(dy, x, scale, mean, rstd, dx, dshift, dscale, b, n, c)
Napi::Value LayerNormModulateBackward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormModulateBackward");
  const F32 dy = args.Floats(0, "dy"), x = args.Floats(1, "x"), scale = args.Floats(2, "scale");
  const F32 mean = args.Floats(3, "mean"), rstd = args.Floats(4, "rstd"), dx = args.Floats(5, "dx");
  const F32 dshift = args.Floats(6, "dshift"), dscale = args.Floats(7, "dscale");
  const int64_t b = args.Int(8, "b"), n = args.Int(9, "n"), c = args.Int(10, "c");
  args.NeedLen(dy, b * n * c, "dy");
  args.NeedLen(x, b * n * c, "x");
  args.NeedLen(scale, b * c, "scale");
  args.NeedLen(mean, b * n, "mean");
  args.NeedLen(rstd, b * n, "rstd");
  args.NeedLen(dx, b * n * c, "dx");
  args.NeedLen(dshift, b * c, "dshift");
  args.NeedLen(dscale, b * c, "dscale");
  if (b * c == 0) return info.Env().Undefined();
  const int64_t blocksPerB = std::max<int64_t>(1, Chunks(n, kRowBlock)), tasks = b * blocksPerB;
  std::vector<double> partial(size_t(tasks * 2 * c));
  LnmParams p{x.data, nullptr, scale.data, dy.data, mean.data, rstd.data, nullptr, dx.data, nullptr, nullptr,
              partial.data(), b, n, c, 0, blocksPerB, 0.0f};
  auto task = LnmBwdTaskFor();
  ParallelFor(tasks, [&](int64_t t) { task(p, t); });
  for (int64_t bi = 0; bi < b; bi++) {
    for (int64_t j = 0; j < c; j++) {
      double sh = 0, sc = 0;
      for (int64_t k = 0; k < blocksPerB; k++) {
        const double* q = partial.data() + (bi * blocksPerB + k) * 2 * c;
        sh += q[j];
        sc += q[c + j];
      }
      dshift.data[bi * c + j] = float(sh);
      dscale.data[bi * c + j] = float(sc);
    }
  }
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterAdaLN(Napi::Env env, Napi::Object exports) {
  exports.Set("gatedResidualForward", Napi::Function::New(env, dfx::GatedResidualForward, "gatedResidualForward"));
  exports.Set("gatedResidualBackward", Napi::Function::New(env, dfx::GatedResidualBackward, "gatedResidualBackward"));
  exports.Set("layerNormModulateForward", Napi::Function::New(env, dfx::LayerNormModulateForward, "layerNormModulateForward"));
  exports.Set("layerNormModulateBackward", Napi::Function::New(env, dfx::LayerNormModulateBackward, "layerNormModulateBackward"));
}
