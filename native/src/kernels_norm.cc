// Row-wise normalisations for the native addon: layer norm (forward, backward) and softmax
// (forward, backward) over the last dim of a (rows, cols) array. Semantics are
// src/kernels/types.ts; references are src/kernels/js/layernorm.ts and softmax.ts.
//
// Rows are independent, so row work is split into fixed row blocks. The only cross-row sums
// (layer norm's dweight/dbias) are accumulated in double per fixed row block and then added in
// block order, so results do not depend on the pool size. Statistics use float vector lanes
// (two-pass mean and variance), not double.
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

// Rows per task for row-independent work: about 32K elements.
inline int64_t RowsPerTask(int64_t cols) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1)); }

template <class V>
inline float RowSum(const float* x, int64_t n) {
  typename V::T acc = V::zero();
  int64_t c = 0;
  for (; c + V::W <= n; c += V::W) acc = V::add(acc, V::load(x + c));
  float s = V::hsum(acc);
  for (; c < n; c++) s += x[c];
  return s;
}

////////////////////////////////////////////////////////////////////////////////////////////////
// layer norm

struct LnFwdParams {
  const float *x, *w, *b;
  float *y, *mean, *rstd;
  int64_t rows, cols, rowsPerTask;
  float eps;
};

template <class V>
void LnFwdTask(const LnFwdParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t cols = p.cols, r1 = std::min(p.rows, (t + 1) * p.rowsPerTask);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* x = p.x + r * cols;  // (cols)
    float* y = p.y + r * cols;
    const float mean = RowSum<V>(x, cols) / float(cols);
    const T vm = V::set1(mean);
    T acc = V::zero();
    int64_t c = 0;
    for (; c + W <= cols; c += W) {
      const T d = V::sub(V::load(x + c), vm);
      acc = V::fma(d, d, acc);
    }
    float var = V::hsum(acc);
    for (; c < cols; c++) var += (x[c] - mean) * (x[c] - mean);
    const float rstd = 1.0f / std::sqrt(var / float(cols) + p.eps);
    for (c = 0; c < cols; c++) {
      float n = (x[c] - mean) * rstd;
      if (p.w) n *= p.w[c];
      if (p.b) n += p.b[c];
      y[c] = n;
    }
    p.mean[r] = mean;
    p.rstd[r] = rstd;
  }
}
DFX_ISA_VARIANTS(LnFwdTask, LnFwdParams)

struct LnBwdParams {
  const float *dy, *x, *w, *mean, *rstd;
  float* dx;
  double* partial;  // (tasks, 2, cols): sum dy*n and sum dy per row block, or null
  int64_t rows, cols, rowsPerTask;
};

// Rows [t*rowsPerTask, ...): dx, plus this block's dweight/dbias partial sums.
template <class V>
void LnBwdTask(const LnBwdParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t cols = p.cols, r1 = std::min(p.rows, (t + 1) * p.rowsPerTask);
  double* pw = p.partial ? p.partial + t * 2 * cols : nullptr;  // (cols)
  double* pb = pw ? pw + cols : nullptr;                        // (cols)
  if (pw) std::fill(pw, pw + 2 * cols, 0.0);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* dy = p.dy + r * cols;  // (cols)
    const float* x = p.x + r * cols;
    float* dx = p.dx + r * cols;
    const float m = p.mean[r], s = p.rstd[r];
    const T vm = V::set1(m), vs = V::set1(s);
    // dn = dy * w; sums of dn and dn * n over the row
    T a1 = V::zero(), a2 = V::zero();
    int64_t c = 0;
    for (; c + W <= cols; c += W) {
      const T n = V::mul(V::sub(V::load(x + c), vm), vs);
      const T dn = p.w ? V::mul(V::load(dy + c), V::load(p.w + c)) : V::load(dy + c);
      a1 = V::add(a1, dn);
      a2 = V::fma(dn, n, a2);
    }
    float dnSum = V::hsum(a1), dnnSum = V::hsum(a2);
    for (; c < cols; c++) {
      const float n = (x[c] - m) * s;
      const float dn = p.w ? dy[c] * p.w[c] : dy[c];
      dnSum += dn;
      dnnSum += dn * n;
    }
    const float dnMean = dnSum / float(cols), dnnMean = dnnSum / float(cols);
    for (c = 0; c < cols; c++) {
      const float n = (x[c] - m) * s;
      const float dn = p.w ? dy[c] * p.w[c] : dy[c];
      dx[c] = (dn - dnMean - n * dnnMean) * s;
    }
    if (pw) {
      for (c = 0; c < cols; c++) {
        pw[c] += double(dy[c] * ((x[c] - m) * s));
        pb[c] += double(dy[c]);
      }
    }
  }
}
DFX_ISA_VARIANTS(LnBwdTask, LnBwdParams)

Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormForward");
  const F32 x = args.Floats(0, "x"), w = args.FloatsOrNull(1, "weight"), b = args.FloatsOrNull(2, "bias");
  const F32 y = args.Floats(3, "y"), mean = args.Floats(4, "mean"), rstd = args.Floats(5, "rstd");
  const int64_t rows = args.Int(6, "rows"), cols = args.Int(7, "cols");
  const double eps = args.Num(8, "eps");
  args.NeedLen(x, rows * cols, "x");
  args.NeedLen(w, cols, "weight");
  args.NeedLen(b, cols, "bias");
  args.NeedLen(y, rows * cols, "y");
  args.NeedLen(mean, rows, "mean");
  args.NeedLen(rstd, rows, "rstd");
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  LnFwdParams p{x.data, w.data, b.data, y.data, mean.data, rstd.data, rows, cols, RowsPerTask(cols), float(eps)};
  auto task = LnFwdTaskFor();
  ParallelFor(Chunks(rows, p.rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormBackward");
  const F32 dy = args.Floats(0, "dy"), x = args.Floats(1, "x"), w = args.FloatsOrNull(2, "weight");
  const F32 mean = args.Floats(3, "mean"), rstd = args.Floats(4, "rstd"), dx = args.Floats(5, "dx");
  const F32 dw = args.FloatsOrNull(6, "dweight"), db = args.FloatsOrNull(7, "dbias");
  const int64_t rows = args.Int(8, "rows"), cols = args.Int(9, "cols");
  args.NeedLen(dy, rows * cols, "dy");
  args.NeedLen(x, rows * cols, "x");
  args.NeedLen(w, cols, "weight");
  args.NeedLen(mean, rows, "mean");
  args.NeedLen(rstd, rows, "rstd");
  args.NeedLen(dx, rows * cols, "dx");
  args.NeedLen(dw, cols, "dweight");
  args.NeedLen(db, cols, "dbias");
  if (cols == 0) return info.Env().Undefined();
  // Fixed row blocks (a function of rows only) so the dweight/dbias sums are deterministic;
  // at most 256 blocks bound the partial-sum memory.
  const int64_t rowsPerTask = std::max<int64_t>(32, Chunks(rows, 256));
  const int64_t tasks = Chunks(rows, rowsPerTask);
  const bool wantParams = dw.data != nullptr || db.data != nullptr;
  std::vector<double> partial(wantParams ? size_t(tasks * 2 * cols) : 0);
  LnBwdParams p{dy.data, x.data, w.data, mean.data, rstd.data, dx.data,
                wantParams ? partial.data() : nullptr, rows, cols, rowsPerTask};
  auto task = LnBwdTaskFor();
  ParallelFor(tasks, [&](int64_t t) { task(p, t); });
  if (wantParams) {
    for (int64_t c = 0; c < cols; c++) {
      double sw = 0, sb = 0;
      for (int64_t t = 0; t < tasks; t++) {
        sw += partial[t * 2 * cols + c];
        sb += partial[t * 2 * cols + cols + c];
      }
      if (dw.data) dw.data[c] = float(sw);
      if (db.data) db.data[c] = float(sb);
    }
  }
  return info.Env().Undefined();
}

////////////////////////////////////////////////////////////////////////////////////////////////
// softmax

struct SmParams {
  const float *x, *y, *dy;
  float* out;  // y (forward) or dx (backward)
  int64_t rows, cols, rowsPerTask;
};

template <class V>
void SmFwdTask(const SmParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t cols = p.cols, r1 = std::min(p.rows, (t + 1) * p.rowsPerTask);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* x = p.x + r * cols;  // (cols)
    float* y = p.out + r * cols;
    T vmax = V::set1(-INFINITY);
    int64_t c = 0;
    for (; c + W <= cols; c += W) vmax = V::max(vmax, V::load(x + c));
    float mx = V::hmax(vmax);
    for (; c < cols; c++) mx = std::max(mx, x[c]);
    const T vmx = V::set1(mx);
    T vsum = V::zero();
    for (c = 0; c + W <= cols; c += W) {
      const T e = V::exp(V::sub(V::load(x + c), vmx));
      V::store(y + c, e);
      vsum = V::add(vsum, e);
    }
    float sum = V::hsum(vsum);
    if (c < cols) {  // tail through the same vector exp, padded with -inf (exp -> 0)
      float tmp[W];
      for (int j = 0; j < W; j++) tmp[j] = c + j < cols ? x[c + j] : -INFINITY;
      V::store(tmp, V::exp(V::sub(V::load(tmp), vmx)));
      for (int64_t j = 0; c + j < cols; j++) {
        y[c + j] = tmp[j];
        sum += tmp[j];
      }
    }
    const float inv = 1.0f / sum;
    for (c = 0; c < cols; c++) y[c] *= inv;
  }
}
DFX_ISA_VARIANTS(SmFwdTask, SmParams)

template <class V>
void SmBwdTask(const SmParams& p, int64_t t) {
  using T = typename V::T;
  constexpr int W = V::W;
  const int64_t cols = p.cols, r1 = std::min(p.rows, (t + 1) * p.rowsPerTask);
  for (int64_t r = t * p.rowsPerTask; r < r1; r++) {
    const float* y = p.y + r * cols;  // (cols)
    const float* dy = p.dy + r * cols;
    float* dx = p.out + r * cols;
    T acc = V::zero();
    int64_t c = 0;
    for (; c + W <= cols; c += W) acc = V::fma(V::load(dy + c), V::load(y + c), acc);
    float dot = V::hsum(acc);
    for (; c < cols; c++) dot += dy[c] * y[c];
    for (c = 0; c < cols; c++) dx[c] = y[c] * (dy[c] - dot);
  }
}
DFX_ISA_VARIANTS(SmBwdTask, SmParams)

Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  Args args(info, "softmaxForward");
  const F32 x = args.Floats(0, "x"), y = args.Floats(1, "y");
  const int64_t rows = args.Int(2, "rows"), cols = args.Int(3, "cols");
  args.NeedLen(x, rows * cols, "x");
  args.NeedLen(y, rows * cols, "y");
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  SmParams p{x.data, nullptr, nullptr, y.data, rows, cols, RowsPerTask(cols)};
  auto task = SmFwdTaskFor();
  ParallelFor(Chunks(rows, p.rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Args args(info, "softmaxBackward");
  const F32 y = args.Floats(0, "y"), dy = args.Floats(1, "dy"), dx = args.Floats(2, "dx");
  const int64_t rows = args.Int(3, "rows"), cols = args.Int(4, "cols");
  args.NeedLen(y, rows * cols, "y");
  args.NeedLen(dy, rows * cols, "dy");
  args.NeedLen(dx, rows * cols, "dx");
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  SmParams p{nullptr, y.data, dy.data, dx.data, rows, cols, RowsPerTask(cols)};
  auto task = SmBwdTaskFor();
  ParallelFor(Chunks(rows, p.rowsPerTask), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNormForward", Napi::Function::New(env, dfx::LayerNormForward, "layerNormForward"));
  exports.Set("layerNormBackward", Napi::Function::New(env, dfx::LayerNormBackward, "layerNormBackward"));
  exports.Set("softmaxForward", Napi::Function::New(env, dfx::SoftmaxForward, "softmaxForward"));
  exports.Set("softmaxBackward", Napi::Function::New(env, dfx::SoftmaxBackward, "softmaxBackward"));
}
