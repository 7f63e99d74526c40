// bf16 attention on timm's packed projection, for train.precision bf16: the products QK^T, PV
// (forward) and dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q (backward) read bf16 operands
// (round to nearest even while packing, bf16.h) and sum in fp32 through the addon's bf16 GEMM
// (gemm_bf16.cc: VDPBF16PS where CPUID has AVX512_BF16, else the bit-identical emulation); the
// softmax statistics (max, sum, lse), P, dS and delta = rowsum(dO * O) stay fp32. Layout as
// qkvAttentionForward/Backward (kernels_attention.cc): q, k, v read in place from qkv
// (B, N, 3, H, D), out (B, N, H, D), lse (B, H, N), dq, dk, dv written into dqkv. The reference is
// src/kernels/js/qkvAttention.ts with precision 'bf16' (every product on bf16-rounded operands).
//
// Each head works on blocks of query rows (256, forward and backward) against all N keys: the
// logits block (rows x N floats, per-thread scratch) is produced and consumed by the blocked bf16
// GEMM (run inline inside the task), with the row softmax in between; the backward recomputes the
// probabilities from the saved lse with the same bf16 logits. Scratch grows as 512 x N floats
// (token counts of DiT/SiT). Work split: forward tasks are (head, query block); backward tasks are
// whole heads, whose dK/dV sums over query blocks run in block order; the GEMM's k slices are the
// same on every bf16 path (kBf16KcMax), so results are bit-identical for any pool size and on
// VDPBF16PS or its emulation on one ISA (the exp of the softmax is the ISA's: kernels_simd.h).
// Not here: masks, dropout, the fp32 kernel (kernels_attention.cc).
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "bf16.h"
#include "common.h"
#include "gemm.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

// forward: query rows per task. 256 rather than 64: one task per head at the DiT/SiT token counts,
// so each product packs (rounds) K and V once per head instead of once per 64 rows; at (16, 6,
// 256, 64) the forward's CPU time went from 7.49 to 6.48 ms (scripts/attention_cpu_time.ts).
constexpr int64_t kQueryBlock = 256;
constexpr int64_t kBwdQueryBlock = 256;  // backward: query rows per step (larger k for dK, dV)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct QkvParams {
  const float *qkv, *out, *dout;
  float *outW, *lse, *dqkv;
  int64_t b, n, h, d, qBlocks, ld;  // ld: row length of the logits scratch (N rounded up to 16)
  float scale;
};

// Row `i` of part s (0 q, 1 k, 2 v) of head hh = (bi, hi) in qkv: a (N, D) matrix with ld 3*H*D.
inline int64_t PartOffset(const QkvParams& p, int64_t hh, int64_t s, int64_t i) {
  const int64_t bi = hh / p.h, hi = hh % p.h, c = p.h * p.d;
  return ((bi * p.n + i) * 3 + s) * c + hi * p.d;
}
// Row i of head hh in out/dout (B, N, H, D): a (N, D) matrix with ld H*D.
inline int64_t OutOffset(const QkvParams& p, int64_t hh, int64_t i) {
  const int64_t bi = hh / p.h, hi = hh % p.h;
  return (bi * p.n + i) * p.h * p.d + hi * p.d;
}

// C (m, n) = alpha op(bf16(A)) op(bf16(B)) + beta C (fp32 sums), one call of the addon's bf16 GEMM.
inline void Gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  GemmCall g;
  g.transA = ta;
  g.transB = tb;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = alpha;
  g.beta = beta;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  GemmBf16(g);
}

// s (nq, ld) = scale * Q[i0:i0+nq] K^T, columns n..ld set to -inf.
inline void Logits(const QkvParams& p, int64_t hh, int64_t i0, int64_t nq, float* s) {
  const int64_t ld3 = 3 * p.h * p.d;
  Gemm(false, true, nq, p.n, p.d, p.scale, p.qkv + PartOffset(p, hh, 0, i0), ld3, p.qkv + PartOffset(p, hh, 1, 0), ld3,
       0.0f, s, p.ld);
  for (int64_t r = 0; r < nq; r++) std::fill(s + r * p.ld + p.n, s + (r + 1) * p.ld, kNegInf);
}

template <class V>
void QkvFwdTask(const QkvParams& p, int64_t t) {
  using T = typename V::T;
  const int64_t hh = t / p.qBlocks, i0 = (t % p.qBlocks) * kQueryBlock, nq = std::min(kQueryBlock, p.n - i0);
  float* s = Scratch(size_t(kQueryBlock * p.ld));  // (nq, ld) logits, then probabilities
  Logits(p, hh, i0, nq, s);
  for (int64_t r = 0; r < nq; r++) {
    float* row = s + r * p.ld;
    T vmax = V::set1(kNegInf);
    for (int64_t j = 0; j < p.ld; j += V::W) vmax = V::max(vmax, V::load(row + j));
    const float mx = V::hmax(vmax);
    const T vm = V::set1(mx);
    T vsum = V::zero();
    for (int64_t j = 0; j < p.ld; j += V::W) {
      const T e = V::exp(V::sub(V::load(row + j), vm));
      V::store(row + j, e);
      vsum = V::add(vsum, e);
    }
    const float sum = V::hsum(vsum);
    const T inv = V::set1(1.0f / sum);
    for (int64_t j = 0; j < p.ld; j += V::W) V::store(row + j, V::mul(V::load(row + j), inv));
    p.lse[hh * p.n + i0 + r] = mx + std::log(sum);  // lse (B, H, N): head hh = bi * H + hi
  }
  const int64_t c = p.h * p.d;
  Gemm(false, false, nq, p.d, p.n, 1.0f, s, p.ld, p.qkv + PartOffset(p, hh, 2, 0), 3 * c, 0.0f,
       p.outW + OutOffset(p, hh, i0), c);
}
DFX_ISA_VARIANTS(QkvFwdTask, QkvParams)

// One task: head hh, all query blocks in order.
template <class V>
void QkvBwdTask(const QkvParams& p, int64_t hh) {
  using T = typename V::T;
  const int64_t n = p.n, d = p.d, c = p.h * p.d, ld3 = 3 * c, ld = p.ld;
  const float* lse = p.lse + hh * n;  // (N)
  float* buf = Scratch(size_t(2 * kBwdQueryBlock * ld + kBwdQueryBlock));
  float* pr = buf;                     // (nq, ld) probabilities
  float* ds = pr + kBwdQueryBlock * ld;   // (nq, ld) dP, then dS
  float* delta = ds + kBwdQueryBlock * ld;  // (nq) rowsum(dO * O)
  float* dk = p.dqkv + PartOffset(p, hh, 1, 0);
  float* dv = p.dqkv + PartOffset(p, hh, 2, 0);
  const float* k = p.qkv + PartOffset(p, hh, 1, 0);
  const float* v = p.qkv + PartOffset(p, hh, 2, 0);
  for (int64_t i0 = 0; i0 < n; i0 += kBwdQueryBlock) {
    const int64_t nq = std::min(kBwdQueryBlock, n - i0);
    const float beta = i0 == 0 ? 0.0f : 1.0f;  // dK, dV: the first block overwrites
    const float* q = p.qkv + PartOffset(p, hh, 0, i0);
    const float* dO = p.dout + OutOffset(p, hh, i0);
    const float* o = p.out + OutOffset(p, hh, i0);
    for (int64_t r = 0; r < nq; r++) {
      double acc = 0;
      for (int64_t j = 0; j < d; j++) acc += double(dO[r * c + j]) * double(o[r * c + j]);
      delta[r] = float(acc);
    }
    Logits(p, hh, i0, nq, pr);
    for (int64_t r = 0; r < nq; r++) {  // P = exp(S - lse); the -inf columns give 0
      float* row = pr + r * ld;
      const T vl = V::set1(lse[i0 + r]);
      for (int64_t j = 0; j < ld; j += V::W) V::store(row + j, V::exp(V::sub(V::load(row + j), vl)));
    }
    Gemm(true, false, n, d, nq, 1.0f, pr, ld, dO, c, beta, dv, ld3);           // dV += P^T dO
    Gemm(false, true, nq, n, d, 1.0f, dO, c, v, ld3, 0.0f, ds, ld);             // dP = dO V^T
    const T vs = V::set1(p.scale);
    for (int64_t r = 0; r < nq; r++) {  // dS = P (dP - delta) scale, padding columns 0
      float* dr = ds + r * ld;
      const float* prr = pr + r * ld;
      const T vd = V::set1(delta[r]);
      int64_t j = 0;
      for (; j + V::W <= n; j += V::W) V::store(dr + j, V::mul(V::mul(V::load(prr + j), V::sub(V::load(dr + j), vd)), vs));
      for (; j < n; j++) dr[j] = prr[j] * (dr[j] - delta[r]) * p.scale;
      for (; j < ld; j++) dr[j] = 0.0f;
    }
    Gemm(false, false, nq, d, n, 1.0f, ds, ld, k, ld3, 0.0f, p.dqkv + PartOffset(p, hh, 0, i0), ld3);  // dQ = dS K
    Gemm(true, false, n, d, nq, 1.0f, ds, ld, q, ld3, beta, dk, ld3);                                   // dK += dS^T Q
  }
}
DFX_ISA_VARIANTS(QkvBwdTask, QkvParams)

// qkvAttentionForwardBf16(qkv, out, lse, b, n, h, d, scale)
Napi::Value QkvAttentionForwardBf16(const Napi::CallbackInfo& info) {
  Args args(info, "qkvAttentionForwardBf16");
  const F32 qkv = args.Floats(0, "qkv"), out = args.Floats(1, "out"), lse = args.Floats(2, "lse");
  const int64_t b = args.Int(3, "b"), n = args.Int(4, "n"), h = args.Int(5, "h"), d = args.Int(6, "d");
  const double scale = args.Num(7, "scale");
  args.NeedLen(qkv, 3 * b * n * h * d, "qkv");
  args.NeedLen(out, b * n * h * d, "out");
  args.NeedLen(lse, b * h * n, "lse");
  if (b * n * h * d == 0) return info.Env().Undefined();
  QkvParams p{qkv.data, nullptr, nullptr, out.data, lse.data, nullptr, b, n, h, d, Chunks(n, kQueryBlock),
              RoundUp(n, 16), float(scale)};
  auto task = QkvFwdTaskFor();
  ParallelFor(b * h * p.qBlocks, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// qkvAttentionBackwardBf16(qkv, out, lse, dout, dqkv, b, n, h, d, scale)
Napi::Value QkvAttentionBackwardBf16(const Napi::CallbackInfo& info) {
  Args args(info, "qkvAttentionBackwardBf16");
  const F32 qkv = args.Floats(0, "qkv"), out = args.Floats(1, "out"), lse = args.Floats(2, "lse");
  const F32 dout = args.Floats(3, "dout"), dqkv = args.Floats(4, "dqkv");
  const int64_t b = args.Int(5, "b"), n = args.Int(6, "n"), h = args.Int(7, "h"), d = args.Int(8, "d");
  const double scale = args.Num(9, "scale");
  const int64_t len = b * n * h * d;
  args.NeedLen(qkv, 3 * len, "qkv");
  args.NeedLen(out, len, "out");
  args.NeedLen(lse, b * h * n, "lse");
  args.NeedLen(dout, len, "dout");
  args.NeedLen(dqkv, 3 * len, "dqkv");
  if (len == 0) return info.Env().Undefined();
  QkvParams p{qkv.data, out.data, dout.data, nullptr, lse.data, dqkv.data, b, n, h, d, Chunks(n, kQueryBlock),
              RoundUp(n, 16), float(scale)};
  auto task = QkvBwdTaskFor();
  ParallelFor(b * h, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterQkvAttentionBf16(Napi::Env env, Napi::Object exports) {
  exports.Set("qkvAttentionForwardBf16", Napi::Function::New(env, dfx::QkvAttentionForwardBf16, "qkvAttentionForwardBf16"));
  exports.Set("qkvAttentionBackwardBf16", Napi::Function::New(env, dfx::QkvAttentionBackwardBf16, "qkvAttentionBackwardBf16"));
}
