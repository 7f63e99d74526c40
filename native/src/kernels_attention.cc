// Fused scaled-dot-product attention for the native addon, forward and backward, in the
// FlashAttention style: keys are processed in blocks of up to 256 whose logits live in a small
// per-task buffer (for N <= 256 that is the whole row), with the online-softmax rescaling across
// blocks; no N x N matrix is kept. The backward recomputes probabilities from the saved lse.
// Semantics are src/kernels/types.ts; the reference is src/kernels/js/attention.ts.
// Optional causal mask (autoregressive GPTs such as DiGIT's, arXiv 2410.12490): query i attends to
// keys j <= i only. Logits with j > i become -inf before the softmax (probability 0); forward tasks
// stop at the last key block a query of theirs can see, and the backward skips the query rows
// above each key block (they see none of its keys).
//
// Work split (deterministic whatever the pool size): forward tasks are (head, 64-query block);
// backward tasks are whole heads, so each head's dK/dV sums stay inside one task.
// Inner products are small register-blocked outer products: 4 query rows at a time against a
// transposed key block (logits), and against row-padded V/K blocks (P V, dS K, P^T dO, dS^T Q).
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common.h"
#include "kernels_util.h"
#include "kernels_simd.h"
#include "threadpool.h"

namespace dfx {
namespace {

constexpr int64_t kKeyBlock = 256;   // keys per block
constexpr int64_t kRows = 4;         // query rows per register block
constexpr int64_t kQueryBlock = 64;  // query rows per forward task
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Vectors per register block along D: 4 zmm x 4 rows fits AVX-512's 32 registers; AVX2 has 16.
template <class V>
constexpr int MaxNv() { return V::W == 8 ? 2 : 4; }

// dst (d, ld) = src (kb, d)^T, columns kb..ld zero.
inline void TransposeBlock(const float* src, int64_t kb, int64_t d, float* dst, int64_t ld) {
  for (int64_t c = 0; c < d; c++) {
    float* row = dst + c * ld;
    for (int64_t j = 0; j < kb; j++) row[j] = src[j * d + c];
    for (int64_t j = kb; j < ld; j++) row[j] = 0.0f;
  }
}

// dst (rows, dp) = src (rows, d) with columns d..dp zero.
inline void PadRows(const float* src, int64_t rows, int64_t d, float* dst, int64_t dp) {
  for (int64_t r = 0; r < rows; r++) {
    std::memcpy(dst + r * dp, src + r * d, sizeof(float) * d);
    for (int64_t c = d; c < dp; c++) dst[r * dp + c] = 0.0f;
  }
}

// s (kRows, ld) = scale * a (kRows rows given by pointers, d) @ bt (d, ld); ld is a multiple of 2W.
template <class V>
inline void Logits(const float* const* a, int64_t d, const float* bt, int64_t ld, float scale, float* s) {
  using T = typename V::T;
  constexpr int W = V::W;
  const T vs = V::set1(scale);
  for (int64_t j = 0; j < ld; j += 2 * W) {
    T acc[kRows][2];
    for (int r = 0; r < kRows; r++) acc[r][0] = acc[r][1] = V::zero();
    for (int64_t c = 0; c < d; c++) {
      const T b0 = V::load(bt + c * ld + j), b1 = V::load(bt + c * ld + j + W);
      for (int r = 0; r < kRows; r++) {
        const T ar = V::set1(a[r][c]);
        acc[r][0] = V::fma(ar, b0, acc[r][0]);
        acc[r][1] = V::fma(ar, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < kRows; r++) {
      V::store(s + r * ld + j, V::mul(acc[r][0], vs));
      V::store(s + r * ld + j + W, V::mul(acc[r][1], vs));
    }
  }
}

// acc (kRows, dp) += p (kRows, ldp)[:, :kb] @ b (kb, dp), columns cv0 .. cv0 + NV*W.
template <class V, int NV>
inline void RowsAxpyChunk(const float* p, int64_t ldp, int64_t kb, const float* b, int64_t dp,
                          float* acc, int64_t cv0) {
  using T = typename V::T;
  constexpr int W = V::W;
  T a[kRows][NV];
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) a[r][v] = V::load(acc + r * dp + cv0 + v * W);
  for (int64_t j = 0; j < kb; j++) {
    T bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = V::load(b + j * dp + cv0 + v * W);
    for (int r = 0; r < kRows; r++) {
      const T pr = V::set1(p[r * ldp + j]);
      for (int v = 0; v < NV; v++) a[r][v] = V::fma(pr, bv[v], a[r][v]);
    }
  }
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) V::store(acc + r * dp + cv0 + v * W, a[r][v]);
}

template <class V>
inline void RowsAxpy(const float* p, int64_t ldp, int64_t kb, const float* b, int64_t dp, float* acc) {
  constexpr int W = V::W, NV = MaxNv<V>();
  int64_t cv0 = 0;
  for (; cv0 + NV * W <= dp; cv0 += NV * W) RowsAxpyChunk<V, NV>(p, ldp, kb, b, dp, acc, cv0);
  for (; cv0 < dp; cv0 += W) RowsAxpyChunk<V, 1>(p, ldp, kb, b, dp, acc, cv0);
}

// c (kb, dp) += p (kRows, ldp)[:, :kb]^T @ a (kRows, dp), columns cv0 .. cv0 + NV*W.
template <class V, int NV>
inline void OuterAccumChunk(const float* p, int64_t ldp, int64_t kb, const float* a, int64_t dp,
                            float* c, int64_t cv0) {
  using T = typename V::T;
  constexpr int W = V::W;
  T ar[kRows][NV];
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) ar[r][v] = V::load(a + r * dp + cv0 + v * W);
  for (int64_t j = 0; j < kb; j++) {
    T cj[NV];
    for (int v = 0; v < NV; v++) cj[v] = V::load(c + j * dp + cv0 + v * W);
    for (int r = 0; r < kRows; r++) {
      const T pr = V::set1(p[r * ldp + j]);
      for (int v = 0; v < NV; v++) cj[v] = V::fma(pr, ar[r][v], cj[v]);
    }
    for (int v = 0; v < NV; v++) V::store(c + j * dp + cv0 + v * W, cj[v]);
  }
}

template <class V>
inline void OuterAccum(const float* p, int64_t ldp, int64_t kb, const float* a, int64_t dp, float* c) {
  constexpr int W = V::W, NV = MaxNv<V>();
  int64_t cv0 = 0;
  for (; cv0 + NV * W <= dp; cv0 += NV * W) OuterAccumChunk<V, NV>(p, ldp, kb, a, dp, c, cv0);
  for (; cv0 < dp; cv0 += W) OuterAccumChunk<V, 1>(p, ldp, kb, a, dp, c, cv0);
}

// row[j] = exp(row[j] - shift) for j < ld; returns the sum. Entries of -inf give 0.
template <class V>
inline float ExpShiftSum(float* row, int64_t ld, float shift) {
  using T = typename V::T;
  const T vs = V::set1(shift);
  T sum = V::zero();
  for (int64_t j = 0; j < ld; j += V::W) {
    const T e = V::exp(V::sub(V::load(row + j), vs));
    V::store(row + j, e);
    sum = V::add(sum, e);
  }
  return V::hsum(sum);
}

template <class V>
inline float RowMax(const float* row, int64_t ld) {
  typename V::T m = V::set1(kNegInf);
  for (int64_t j = 0; j < ld; j += V::W) m = V::max(m, V::load(row + j));
  return V::hmax(m);
}

struct FwdParams {
  const float *q, *k, *v;
  float *out, *lse;
  int64_t n, d;
  float scale;
  int64_t qBlocks;  // query blocks per head
  bool causal;      // mask keys j > i
};

// Keys of block [j0, j0 + kb) that query i may see: the first `lim` of them.
inline int64_t VisibleKeys(bool causal, int64_t i, int64_t j0, int64_t kb) {
  return causal ? std::min(kb, std::max<int64_t>(0, i - j0 + 1)) : kb;
}

// One task: query rows [i0, i1) of head h.
template <class V>
void AttnFwdTask(const FwdParams& p, int64_t task) {
  constexpr int W = V::W;
  const int64_t n = p.n, d = p.d, h = task / p.qBlocks;
  const int64_t i0 = (task % p.qBlocks) * kQueryBlock, nq = std::min(kQueryBlock, n - i0);
  const int64_t dp = RoundUp(d, W), ldk = RoundUp(std::min(n, kKeyBlock), 2 * W);
  const int64_t nqPad = RoundUp(nq, kRows);
  const float* q = p.q + (h * n + i0) * d;   // (nq, D)
  const float* k = p.k + h * n * d;          // (N, D)
  const float* v = p.v + h * n * d;          // (N, D)
  float* buf = Scratch(d * ldk + std::min(n, kKeyBlock) * dp + kRows * ldk + nqPad * dp + 2 * nqPad);
  float* kt = buf;                          // (D, ldk) transposed key block
  float* vp = kt + d * ldk;                 // (kb, dp) padded value block
  float* s = vp + std::min(n, kKeyBlock) * dp;  // (kRows, ldk) logits, then probabilities
  float* acc = s + kRows * ldk;             // (nqPad, dp) unnormalised output rows
  float* m = acc + nqPad * dp;              // (nqPad) running max
  float* l = m + nqPad;                     // (nqPad) running sum
  std::fill(acc, acc + nqPad * dp, 0.0f);
  std::fill(m, m + nqPad, kNegInf);
  std::fill(l, l + nqPad, 0.0f);
  const int64_t jEnd = p.causal ? std::min(n, i0 + nq) : n;  // keys any of these queries sees
  for (int64_t j0 = 0; j0 < jEnd; j0 += kKeyBlock) {
    const int64_t kb = std::min(kKeyBlock, n - j0);
    TransposeBlock(k + j0 * d, kb, d, kt, ldk);
    PadRows(v + j0 * d, kb, d, vp, dp);
    for (int64_t r0 = 0; r0 < nq; r0 += kRows) {
      const int64_t rr = std::min(kRows, nq - r0);
      const float* rows[kRows];
      for (int r = 0; r < kRows; r++) rows[r] = q + (r0 + std::min<int64_t>(r, rr - 1)) * d;
      Logits<V>(rows, d, kt, ldk, p.scale, s);
      for (int64_t r = 0; r < kRows; r++) {
        float* row = s + r * ldk;
        if (r >= rr) {  // padding rows contribute nothing
          std::fill(row, row + ldk, 0.0f);
          continue;
        }
        const int64_t i = r0 + r;
        std::fill(row + VisibleKeys(p.causal, i0 + i, j0, kb), row + ldk, kNegInf);
        const float mNew = std::max(m[i], RowMax<V>(row, ldk));
        const float sum = ExpShiftSum<V>(row, ldk, mNew);
        if (j0 > 0) {
          const float alpha = std::exp(m[i] - mNew);
          for (int64_t c = 0; c < dp; c++) acc[i * dp + c] *= alpha;
          l[i] = l[i] * alpha + sum;
        } else {
          l[i] = sum;
        }
        m[i] = mNew;
      }
      RowsAxpy<V>(s, ldk, kb, vp, dp, acc + r0 * dp);
    }
  }
  for (int64_t i = 0; i < nq; i++) {
    const float inv = 1.0f / l[i];
    float* o = p.out + (h * n + i0 + i) * d;
    for (int64_t c = 0; c < d; c++) o[c] = acc[i * dp + c] * inv;
    p.lse[h * n + i0 + i] = m[i] + std::log(l[i]);
  }
}
DFX_ISA_VARIANTS(AttnFwdTask, FwdParams)

struct BwdParams {
  const float *q, *k, *v, *out, *lse, *dout;
  float *dq, *dk, *dv;
  int64_t n, d;
  float scale;
  bool causal;
};

// One task: head h, all queries and keys.
template <class V>
void AttnBwdTask(const BwdParams& p, int64_t h) {
  constexpr int W = V::W;
  const int64_t n = p.n, d = p.d, kbMax = std::min(n, kKeyBlock);
  const int64_t dp = RoundUp(d, W), ldk = RoundUp(kbMax, 2 * W), nPad = RoundUp(n, kRows);
  const int64_t base = h * n * d;
  const float* q = p.q + base;     // (N, D)
  const float* k = p.k + base;
  const float* v = p.v + base;
  const float* o = p.out + base;
  const float* dout = p.dout + base;
  const float* lse = p.lse + h * n;  // (N)
  float* buf = Scratch(3 * nPad * dp + nPad + 2 * d * ldk + 3 * kbMax * dp + 3 * kRows * ldk);
  float* qp = buf;                  // (nPad, dp) padded Q
  float* dop = qp + nPad * dp;      // (nPad, dp) padded dO
  float* dqAcc = dop + nPad * dp;   // (nPad, dp)
  float* delta = dqAcc + nPad * dp; // (nPad) rowsum(dO * O)
  float* kt = delta + nPad;         // (D, ldk) transposed key block
  float* vt = kt + d * ldk;         // (D, ldk) transposed value block
  float* kp = vt + d * ldk;         // (kb, dp) padded key block
  float* dkb = kp + kbMax * dp;     // (kb, dp) dK of the block
  float* dvb = dkb + kbMax * dp;    // (kb, dp) dV of the block
  float* sP = dvb + kbMax * dp;     // (kRows, ldk) probabilities
  float* sdP = sP + kRows * ldk;    // (kRows, ldk) dP, then dS
  PadRows(q, n, d, qp, dp);
  PadRows(dout, n, d, dop, dp);
  std::fill(qp + n * dp, qp + nPad * dp, 0.0f);
  std::fill(dop + n * dp, dop + nPad * dp, 0.0f);
  std::fill(dqAcc, dqAcc + nPad * dp, 0.0f);
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t c = 0; c < d; c++) s += double(dout[i * d + c]) * o[i * d + c];
    delta[i] = float(s);
  }
  for (int64_t j0 = 0; j0 < n; j0 += kKeyBlock) {
    const int64_t kb = std::min(kKeyBlock, n - j0);
    TransposeBlock(k + j0 * d, kb, d, kt, ldk);
    TransposeBlock(v + j0 * d, kb, d, vt, ldk);
    PadRows(k + j0 * d, kb, d, kp, dp);
    std::fill(dkb, dkb + kb * dp, 0.0f);
    std::fill(dvb, dvb + kb * dp, 0.0f);
    // causal: query rows < j0 see no key of this block (j0 is a multiple of kRows)
    for (int64_t r0 = p.causal ? j0 : 0; r0 < n; r0 += kRows) {
      const int64_t rr = std::min(kRows, n - r0);
      const float* rows[kRows];
      for (int r = 0; r < kRows; r++) rows[r] = q + (r0 + std::min<int64_t>(r, rr - 1)) * d;
      Logits<V>(rows, d, kt, ldk, p.scale, sP);
      for (int r = 0; r < kRows; r++) rows[r] = dout + (r0 + std::min<int64_t>(r, rr - 1)) * d;
      Logits<V>(rows, d, vt, ldk, 1.0f, sdP);
      for (int64_t r = 0; r < kRows; r++) {
        float* pr = sP + r * ldk;
        float* dr = sdP + r * ldk;
        if (r >= rr) {
          std::fill(pr, pr + ldk, 0.0f);
          std::fill(dr, dr + ldk, 0.0f);
          continue;
        }
        std::fill(pr + VisibleKeys(p.causal, r0 + r, j0, kb), pr + ldk, kNegInf);
        ExpShiftSum<V>(pr, ldk, lse[r0 + r]);  // P = exp(S - lse)
        const float dl = delta[r0 + r];
        for (int64_t j = 0; j < ldk; j++) dr[j] = pr[j] * (dr[j] - dl) * p.scale;  // dS
      }
      OuterAccum<V>(sP, ldk, kb, dop + r0 * dp, dp, dvb);    // dV += P^T dO
      OuterAccum<V>(sdP, ldk, kb, qp + r0 * dp, dp, dkb);    // dK += dS^T Q
      RowsAxpy<V>(sdP, ldk, kb, kp, dp, dqAcc + r0 * dp);    // dQ += dS K
    }
    for (int64_t j = 0; j < kb; j++) {
      std::memcpy(p.dk + base + (j0 + j) * d, dkb + j * dp, sizeof(float) * d);
      std::memcpy(p.dv + base + (j0 + j) * d, dvb + j * dp, sizeof(float) * d);
    }
  }
  for (int64_t i = 0; i < n; i++) std::memcpy(p.dq + base + i * d, dqAcc + i * dp, sizeof(float) * d);
}
DFX_ISA_VARIANTS(AttnBwdTask, BwdParams)

// Optional trailing boolean `causal` at argument `i` (absent or undefined: false).
bool CausalArg(const Napi::CallbackInfo& info, const Args& args, size_t i) {
  return info.Length() > i && !info[i].IsUndefined() && args.Bool(i, "causal");
}

// attentionForward(q, k, v, out, lse, bh, n, d, scale[, causal])
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionForward");
  const F32 q = args.Floats(0, "q"), k = args.Floats(1, "k"), v = args.Floats(2, "v");
  const F32 out = args.Floats(3, "out"), lse = args.Floats(4, "lse");
  const int64_t bh = args.Int(5, "bh"), n = args.Int(6, "n"), d = args.Int(7, "d");
  const double scale = args.Num(8, "scale");
  const int64_t len = bh * n * d;
  args.NeedLen(q, len, "q");
  args.NeedLen(k, len, "k");
  args.NeedLen(v, len, "v");
  args.NeedLen(out, len, "out");
  args.NeedLen(lse, bh * n, "lse");
  if (len == 0) return info.Env().Undefined();
  const bool causal = CausalArg(info, args, 9);
  FwdParams p{q.data, k.data, v.data, out.data, lse.data, n, d, float(scale), (n + kQueryBlock - 1) / kQueryBlock, causal};
  auto task = AttnFwdTaskFor();
  ParallelFor(bh * p.qBlocks, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// attentionBackward(q, k, v, out, lse, dout, dq, dk, dv, bh, n, d, scale[, causal])
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionBackward");
  const F32 q = args.Floats(0, "q"), k = args.Floats(1, "k"), v = args.Floats(2, "v");
  const F32 out = args.Floats(3, "out"), lse = args.Floats(4, "lse"), dout = args.Floats(5, "dout");
  const F32 dq = args.Floats(6, "dq"), dk = args.Floats(7, "dk"), dv = args.Floats(8, "dv");
  const int64_t bh = args.Int(9, "bh"), n = args.Int(10, "n"), d = args.Int(11, "d");
  const double scale = args.Num(12, "scale");
  const int64_t len = bh * n * d;
  args.NeedLen(q, len, "q");
  args.NeedLen(k, len, "k");
  args.NeedLen(v, len, "v");
  args.NeedLen(out, len, "out");
  args.NeedLen(lse, bh * n, "lse");
  args.NeedLen(dout, len, "dout");
  args.NeedLen(dq, len, "dq");
  args.NeedLen(dk, len, "dk");
  args.NeedLen(dv, len, "dv");
  if (len == 0) return info.Env().Undefined();
  const bool causal = CausalArg(info, args, 13);
  BwdParams p{q.data, k.data, v.data, out.data, lse.data, dout.data, dq.data, dk.data, dv.data, n, d, float(scale), causal};
  auto task = AttnBwdTaskFor();
  ParallelFor(bh, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, dfx::AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, dfx::AttentionBackward, "attentionBackward"));
  // Capability flag: this addon reads the trailing `causal` argument (an older build ignores it,
  // so src/kernels/native.ts sends causal calls to the TypeScript reference when the flag is absent).
  exports.Set("attentionCausal", Napi::Boolean::New(env, true));
}
