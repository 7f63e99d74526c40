// Fused scaled-dot-product attention for the native addon, forward and backward, in the
// FlashAttention style: keys are processed in blocks of up to 256 whose logits live in a small
// per-task buffer (for N <= 256 that is the whole row), with the online-softmax rescaling across
// blocks; no N x N matrix is kept. The backward recomputes probabilities from the saved lse.
// Semantics are src/kernels/types.ts; the references are src/kernels/js/attention.ts and, for
// timm's packed layout, src/kernels/js/qkvAttention.ts.
// Two layouts through one pair of task bodies (Layout below): the plain (B*H, N, D) arrays of
// attentionForward/Backward, and qkvAttentionForward/Backward, which read q, k, v in place from
// the packed projection qkv (B, N, 3, H, D) (row stride 3*H*D), write out (B, N, H, D) and
// dq, dk, dv into dqkv (B, N, 3, H, D): the SiT blocks' attention with no permute/slice copies.
// Optional causal mask (autoregressive GPTs such as DiGIT's, arXiv 2410.12490): query i attends to
// keys j <= i only. Logits with j > i become -inf before the softmax (probability 0); forward tasks
// stop at the last key block a query of theirs can see, and the backward skips the query rows
// above each key block (they see none of its keys).
//
// Work split (deterministic whatever the pool size): forward tasks are (head, 64-query block);
// backward tasks are whole heads, so each head's dK/dV sums stay inside one task.
// Inner products are small register-blocked outer products: 4 query rows at a time against a
// transposed key block (logits; 16 x 16 register transposes on AVX-512), and against V/K blocks
// (P V, dS K, P^T dO, dS^T Q) read in place when D is a multiple of the vector width (else
// row-padded copies). The backward accumulates dQ, dK, dV in the outputs themselves on that path.
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
constexpr int64_t kStridedKeys = 128;  // strided (qkv-layout) key blocks up to this many rows are used in place
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Vectors per register block along D: 4 zmm x 4 rows fits AVX-512's 32 registers; AVX2 has 16.
template <class V>
constexpr int MaxNv() { return V::W == 8 ? 2 : 4; }

// 16 x 16 tile transpose on AVX-512: row c of dst (stride ldd) = column c of src (stride lds).
// Three shuffle stages: pairs of rows (unpack), 4 x 4 blocks inside 128-bit lanes (shuffle_ps),
// then the 128-bit lanes themselves (two shuffle_f32x4 rounds).
DFX_TARGET_AVX512 inline void Transpose16x16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + k], lane L: column 4L + k of rows i .. i + 3
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int k = 0; k < 4; k++) {
    t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
    t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
    t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
    t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
  }
  for (int k = 0; k < 4; k++) {
    _mm512_storeu_ps(dst + (0 + k) * ldd, _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88));
    _mm512_storeu_ps(dst + (8 + k) * ldd, _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD));
    _mm512_storeu_ps(dst + (4 + k) * ldd, _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88));
    _mm512_storeu_ps(dst + (12 + k) * ldd, _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xDD));
  }
}

// dst (d, ld) = src (kb, d; row stride lds)^T, columns kb..ld zero. On AVX-512, 16 x 16 tiles in
// registers (the scalar loop cost about a fifth of the forward at 64 tokens); edges and other ISAs
// scalar.
template <class V>
inline void TransposeBlock(const float* src, int64_t lds, int64_t kb, int64_t d, float* dst, int64_t ld) {
  int64_t c0 = 0, j0 = 0;
  if constexpr (V::W == 16) {
    j0 = kb / 16 * 16;
    c0 = d / 16 * 16;
    for (int64_t c = 0; c < c0; c += 16)
      for (int64_t j = 0; j < j0; j += 16) Transpose16x16(src + j * lds + c, lds, dst + c * ld + j, ld);
    for (int64_t c = 0; c < c0; c++)  // key rows past the last full tile
      for (int64_t j = j0; j < kb; j++) dst[c * ld + j] = src[j * lds + c];
  }
  for (int64_t c = c0; c < d; c++) {  // head-dim columns past the last full tile (all, off AVX-512)
    float* row = dst + c * ld;
    for (int64_t j = 0; j < kb; j++) row[j] = src[j * lds + c];
  }
  for (int64_t c = 0; c < d; c++) std::fill(dst + c * ld + kb, dst + (c + 1) * ld, 0.0f);
}

// dst (rows, dp) = src (rows, d; row stride lds) with columns d..dp zero.
inline void PadRows(const float* src, int64_t lds, int64_t rows, int64_t d, float* dst, int64_t dp) {
  for (int64_t r = 0; r < rows; r++) {
    std::memcpy(dst + r * dp, src + r * lds, sizeof(float) * d);
    for (int64_t c = d; c < dp; c++) dst[r * dp + c] = 0.0f;
  }
}

// s (kRows, ld)[:, j .. j + NJ*W] = scale * a (kRows rows given by pointers, d) @ bt (d, ld)[...].
template <class V, int NJ>
inline void LogitsChunk(const float* const* a, int64_t d, const float* bt, int64_t ld, float scale, float* s,
                        int64_t j) {
  using T = typename V::T;
  constexpr int W = V::W;
  T acc[kRows][NJ];
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NJ; v++) acc[r][v] = V::zero();
  for (int64_t c = 0; c < d; c++) {
    T b[NJ];
    for (int v = 0; v < NJ; v++) b[v] = V::load(bt + c * ld + j + v * W);
    for (int r = 0; r < kRows; r++) {
      const T ar = V::set1(a[r][c]);
      for (int v = 0; v < NJ; v++) acc[r][v] = V::fma(ar, b[v], acc[r][v]);
    }
  }
  const T vs = V::set1(scale);
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NJ; v++) V::store(s + r * ld + j + v * W, V::mul(acc[r][v], vs));
}

// s (kRows, ld) = scale * a (kRows rows given by pointers, d) @ bt (d, ld); ld is a multiple of 2W.
// Chunks of MaxNv vectors (16 accumulators on AVX-512: 4 vector loads and 4 broadcasts per 16
// FMAs), then 2.
template <class V>
inline void Logits(const float* const* a, int64_t d, const float* bt, int64_t ld, float scale, float* s) {
  constexpr int W = V::W, NJ = MaxNv<V>();
  int64_t j = 0;
  for (; j + NJ * W <= ld; j += NJ * W) LogitsChunk<V, NJ>(a, d, bt, ld, scale, s, j);
  for (; j < ld; j += 2 * W) LogitsChunk<V, 2>(a, d, bt, ld, scale, s, j);
}

// acc (kRows, dp; row stride lda) += p (kRows, ldp)[:, :kb] @ b (kb, dp; row stride ldb),
// columns cv0 .. cv0 + NV*W.
template <class V, int NV>
inline void RowsAxpyChunk(const float* p, int64_t ldp, int64_t kb, const float* b, int64_t ldb,
                          float* acc, int64_t lda, int64_t cv0) {
  using T = typename V::T;
  constexpr int W = V::W;
  T a[kRows][NV];
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) a[r][v] = V::load(acc + r * lda + cv0 + v * W);
  for (int64_t j = 0; j < kb; j++) {
    T bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = V::load(b + j * ldb + cv0 + v * W);
    for (int r = 0; r < kRows; r++) {
      const T pr = V::set1(p[r * ldp + j]);
      for (int v = 0; v < NV; v++) a[r][v] = V::fma(pr, bv[v], a[r][v]);
    }
  }
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) V::store(acc + r * lda + cv0 + v * W, a[r][v]);
}

template <class V>
inline void RowsAxpy(const float* p, int64_t ldp, int64_t kb, const float* b, int64_t ldb, int64_t dp, float* acc,
                     int64_t lda) {
  constexpr int W = V::W, NV = MaxNv<V>();
  int64_t cv0 = 0;
  for (; cv0 + NV * W <= dp; cv0 += NV * W) RowsAxpyChunk<V, NV>(p, ldp, kb, b, ldb, acc, lda, cv0);
  for (; cv0 < dp; cv0 += W) RowsAxpyChunk<V, 1>(p, ldp, kb, b, ldb, acc, lda, cv0);
}

// c (kb, dp; row stride ldc) += p (kRows, ldp)[:, :kb]^T @ a (kRows, dp; row stride lda),
// columns cv0 .. cv0 + NV*W.
template <class V, int NV>
inline void OuterAccumChunk(const float* p, int64_t ldp, int64_t kb, const float* a, int64_t lda,
                            float* c, int64_t ldc, int64_t cv0) {
  using T = typename V::T;
  constexpr int W = V::W;
  T ar[kRows][NV];
  for (int r = 0; r < kRows; r++)
    for (int v = 0; v < NV; v++) ar[r][v] = V::load(a + r * lda + cv0 + v * W);
  for (int64_t j = 0; j < kb; j++) {
    T cj[NV];
    for (int v = 0; v < NV; v++) cj[v] = V::load(c + j * ldc + cv0 + v * W);
    for (int r = 0; r < kRows; r++) {
      const T pr = V::set1(p[r * ldp + j]);
      for (int v = 0; v < NV; v++) cj[v] = V::fma(pr, ar[r][v], cj[v]);
    }
    for (int v = 0; v < NV; v++) V::store(c + j * ldc + cv0 + v * W, cj[v]);
  }
}

template <class V>
inline void OuterAccum(const float* p, int64_t ldp, int64_t kb, const float* a, int64_t lda, int64_t dp, float* c,
                       int64_t ldc) {
  constexpr int W = V::W, NV = MaxNv<V>();
  int64_t cv0 = 0;
  for (; cv0 + NV * W <= dp; cv0 += NV * W) OuterAccumChunk<V, NV>(p, ldp, kb, a, lda, c, ldc, cv0);
  for (; cv0 < dp; cv0 += W) OuterAccumChunk<V, 1>(p, ldp, kb, a, lda, c, ldc, cv0);
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

// Where head hh's (N, D) matrices live. Inputs q, k, v (and the gradients dq, dk, dv) have row
// stride ldIn, out and dout ldOut; heads come in groups of hPer per batch element, side by side
// along a row. The plain layout (B*H, N, D) is hPer 1, ldIn = ldOut = D; timm's packed
// projection qkv (B, N, 3, H, D) with out (B, N, H, D) is hPer H, ldIn 3*H*D, ldOut H*D (and q, k, v
// the qkv pointer plus 0, H*D, 2*H*D).
struct Layout {
  int64_t n, d, hPer, ldIn, ldOut;
  int64_t In(int64_t hh) const { return (hh / hPer) * n * ldIn + (hh % hPer) * d; }
  int64_t Out(int64_t hh) const { return (hh / hPer) * n * ldOut + (hh % hPer) * d; }
};

struct FwdParams {
  const float *q, *k, *v;
  float *out, *lse;
  Layout l;
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
  const Layout& L = p.l;
  const int64_t n = L.n, d = L.d, ldi = L.ldIn, h = task / p.qBlocks;
  const int64_t i0 = (task % p.qBlocks) * kQueryBlock, nq = std::min(kQueryBlock, n - i0);
  const int64_t dp = RoundUp(d, W), ldk = RoundUp(std::min(n, kKeyBlock), 2 * W);
  const int64_t nqPad = RoundUp(nq, kRows);
  const float* q = p.q + L.In(h) + i0 * ldi;  // (nq, D)
  const float* k = p.k + L.In(h);             // (N, D)
  const float* v = p.v + L.In(h);             // (N, D)
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
    TransposeBlock<V>(k + j0 * ldi, ldi, kb, d, kt, ldk);
    // (kb, dp): in place when D is a multiple of the vector width and rows are contiguous, or
    // strided rows of qkv in a block of up to kStridedKeys (a packed copy past that: RowsAxpy walks
    // the block once per 4 queries)
    const float* vb = v + j0 * ldi;
    int64_t ldv = ldi;
    if (dp != d || (ldi != d && kb > kStridedKeys)) {
      PadRows(vb, ldi, kb, d, vp, dp);
      vb = vp;
      ldv = dp;
    }
    for (int64_t r0 = 0; r0 < nq; r0 += kRows) {
      const int64_t rr = std::min(kRows, nq - r0);
      const float* rows[kRows];
      for (int r = 0; r < kRows; r++) rows[r] = q + (r0 + std::min<int64_t>(r, rr - 1)) * ldi;
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
      RowsAxpy<V>(s, ldk, kb, vb, ldv, dp, acc + r0 * dp, dp);
    }
  }
  float* out = p.out + L.Out(h) + i0 * L.ldOut;  // (nq, D)
  for (int64_t i = 0; i < nq; i++) {
    const float inv = 1.0f / l[i];
    float* o = out + i * L.ldOut;
    for (int64_t c = 0; c < d; c++) o[c] = acc[i * dp + c] * inv;
    p.lse[h * n + i0 + i] = m[i] + std::log(l[i]);
  }
}
DFX_ISA_VARIANTS(AttnFwdTask, FwdParams)

struct BwdParams {
  const float *q, *k, *v, *out, *lse, *dout;
  float *dq, *dk, *dv;
  Layout l;
  float scale;
  bool causal;
};

// One task: head h, all queries and keys.
template <class V>
void AttnBwdTask(const BwdParams& p, int64_t h) {
  constexpr int W = V::W;
  const Layout& L = p.l;
  const int64_t n = L.n, d = L.d, ldi = L.ldIn, ldo = L.ldOut, kbMax = std::min(n, kKeyBlock);
  const int64_t dp = RoundUp(d, W), ldk = RoundUp(kbMax, 2 * W), nPad = RoundUp(n, kRows);
  const int64_t inBase = L.In(h), outBase = L.Out(h);
  const float* q = p.q + inBase;       // (N, D), row stride ldi
  const float* k = p.k + inBase;
  const float* v = p.v + inBase;
  const float* o = p.out + outBase;    // (N, D), row stride ldo
  const float* dout = p.dout + outBase;
  float* dqOut = p.dq + inBase;        // (N, D), row stride ldi
  float* dkOut = p.dk + inBase;
  float* dvOut = p.dv + inBase;
  const float* lse = p.lse + h * n;  // (N)
  // In place: when D is a multiple of the vector width and N of kRows, Q, dO and K are read and dQ
  // accumulated where they live, whatever the row strides (every row a register block touches
  // belongs to this head, and only its D columns: the qkv layout's rows hold the other heads side
  // by side). Otherwise padded copies in scratch, copied out at the end. dK and dV, swept once per
  // 4 queries, are accumulated in place on strided rows only up to kStridedKeys keys: past that,
  // contiguous blocks copied out once were faster (one thread's CPU time, qkv layout: in place
  // 10-15 % faster at 64 tokens, 5-9 % slower at 256; scripts/attention_cpu_time.ts).
  const bool direct = dp == d && n % kRows == 0;
  const bool packKV = !direct || (ldi != d && kbMax > kStridedKeys);
  float* buf = Scratch(nPad + 2 * d * ldk + 2 * kRows * ldk + (direct ? 0 : 3 * nPad * dp + kbMax * dp) +
                       (packKV ? 2 * kbMax * dp : 0));
  float* delta = buf;                // (nPad) rowsum(dO * O)
  float* kt = delta + nPad;          // (D, ldk) transposed key block
  float* vt = kt + d * ldk;          // (D, ldk) transposed value block
  float* sP = vt + d * ldk;          // (kRows, ldk) probabilities
  float* sdP = sP + kRows * ldk;     // (kRows, ldk) dP, then dS
  float* pad = sdP + kRows * ldk;    // padded copies (not direct), then packed dK, dV blocks
  const float* qp = q;               // (nPad, dp) Q, row stride ldq
  const float* dop = dout;           // (nPad, dp) dO, row stride lddo
  float* dqAcc = dqOut;              // (nPad, dp) dQ, row stride ldq
  int64_t ldq = ldi, lddo = ldo, ldkp = ldi, lddkv = ldi;  // ldkp: the K block; lddkv: dK, dV blocks
  float* kpBuf = nullptr, *dkBuf = nullptr, *dvBuf = nullptr;
  if (direct) {
    for (int64_t i = 0; i < n; i++) std::fill(dqAcc + i * ldi, dqAcc + i * ldi + d, 0.0f);
  } else {
    float* qpad = pad;
    float* dopad = qpad + nPad * dp;
    dqAcc = dopad + nPad * dp;
    kpBuf = dqAcc + nPad * dp;
    pad = kpBuf + kbMax * dp;
    PadRows(q, ldi, n, d, qpad, dp);
    PadRows(dout, ldo, n, d, dopad, dp);
    std::fill(qpad + n * dp, qpad + nPad * dp, 0.0f);
    std::fill(dopad + n * dp, dopad + nPad * dp, 0.0f);
    std::fill(dqAcc, dqAcc + nPad * dp, 0.0f);
    qp = qpad;
    dop = dopad;
    ldq = lddo = ldkp = dp;
  }
  if (packKV) {
    dkBuf = pad;
    dvBuf = dkBuf + kbMax * dp;
    lddkv = dp;
  }
  for (int64_t i = 0; i < n; i++) {  // W partial sums, no serial dependency chain over D
    using T = typename V::T;
    const float* dr = dout + i * ldo;
    const float* orow = o + i * ldo;
    T acc = V::zero();
    int64_t c = 0;
    for (; c + W <= d; c += W) acc = V::fma(V::load(dr + c), V::load(orow + c), acc);
    float s = V::hsum(acc);
    for (; c < d; c++) s += dr[c] * orow[c];
    delta[i] = s;
  }
  const typename V::T vscale = V::set1(p.scale);
  for (int64_t j0 = 0; j0 < n; j0 += kKeyBlock) {
    const int64_t kb = std::min(kKeyBlock, n - j0);
    TransposeBlock<V>(k + j0 * ldi, ldi, kb, d, kt, ldk);
    TransposeBlock<V>(v + j0 * ldi, ldi, kb, d, vt, ldk);
    const float* kp = k + j0 * ldi;   // (kb, dp) K block, row stride ldkp
    float* dkb = dkOut + j0 * ldi;    // (kb, dp) dK of the block, row stride lddkv
    float* dvb = dvOut + j0 * ldi;    // (kb, dp) dV of the block
    if (!direct) {
      PadRows(kp, ldi, kb, d, kpBuf, dp);
      kp = kpBuf;
    }
    if (packKV) {
      dkb = dkBuf;
      dvb = dvBuf;
    }
    for (int64_t j = 0; j < kb; j++) {
      std::fill(dkb + j * lddkv, dkb + j * lddkv + dp, 0.0f);
      std::fill(dvb + j * lddkv, dvb + j * lddkv + dp, 0.0f);
    }
    // causal: query rows < j0 see no key of this block (j0 is a multiple of kRows)
    for (int64_t r0 = p.causal ? j0 : 0; r0 < n; r0 += kRows) {
      const int64_t rr = std::min(kRows, n - r0);
      const float* rows[kRows];
      for (int r = 0; r < kRows; r++) rows[r] = q + (r0 + std::min<int64_t>(r, rr - 1)) * ldi;
      Logits<V>(rows, d, kt, ldk, p.scale, sP);
      for (int r = 0; r < kRows; r++) rows[r] = dout + (r0 + std::min<int64_t>(r, rr - 1)) * ldo;
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
        const typename V::T dl = V::set1(delta[r0 + r]);
        for (int64_t j = 0; j < ldk; j += W)  // dS = P (dP - delta) scale
          V::store(dr + j, V::mul(V::mul(V::load(pr + j), V::sub(V::load(dr + j), dl)), vscale));
      }
      OuterAccum<V>(sP, ldk, kb, dop + r0 * lddo, lddo, dp, dvb, lddkv);  // dV += P^T dO
      OuterAccum<V>(sdP, ldk, kb, qp + r0 * ldq, ldq, dp, dkb, lddkv);    // dK += dS^T Q
      RowsAxpy<V>(sdP, ldk, kb, kp, ldkp, dp, dqAcc + r0 * ldq, ldq);     // dQ += dS K
    }
    if (packKV) {
      for (int64_t j = 0; j < kb; j++) {
        std::memcpy(dkOut + (j0 + j) * ldi, dkb + j * dp, sizeof(float) * d);
        std::memcpy(dvOut + (j0 + j) * ldi, dvb + j * dp, sizeof(float) * d);
      }
    }
  }
  if (!direct)
    for (int64_t i = 0; i < n; i++) std::memcpy(dqOut + i * ldi, dqAcc + i * dp, sizeof(float) * d);
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
  FwdParams p{q.data, k.data, v.data, out.data, lse.data, Layout{n, d, 1, d, d}, float(scale), Chunks(n, kQueryBlock), causal};
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
  BwdParams p{q.data, k.data, v.data, out.data, lse.data, dout.data, dq.data, dk.data, dv.data, Layout{n, d, 1, d, d}, float(scale), causal};
  auto task = AttnBwdTaskFor();
  ParallelFor(bh, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// qkvAttentionForward(qkv, out, lse, b, n, h, d, scale): the same kernel on timm's packed
// projection, q, k, v read in place from qkv (B, N, 3, H, D), out (B, N, H, D), lse (B, H, N).
Napi::Value QkvAttentionForward(const Napi::CallbackInfo& info) {
  Args args(info, "qkvAttentionForward");
  const F32 qkv = args.Floats(0, "qkv"), out = args.Floats(1, "out"), lse = args.Floats(2, "lse");
  const int64_t b = args.Int(3, "b"), n = args.Int(4, "n"), h = args.Int(5, "h"), d = args.Int(6, "d");
  const double scale = args.Num(7, "scale");
  const int64_t c = h * d, len = b * n * c;
  args.NeedLen(qkv, 3 * len, "qkv");
  args.NeedLen(out, len, "out");
  args.NeedLen(lse, b * h * n, "lse");
  if (len == 0) return info.Env().Undefined();
  FwdParams p{qkv.data, qkv.data + c, qkv.data + 2 * c, out.data, lse.data, Layout{n, d, h, 3 * c, c}, float(scale),
              Chunks(n, kQueryBlock), false};
  auto task = AttnFwdTaskFor();
  ParallelFor(b * h * p.qBlocks, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

// qkvAttentionBackward(qkv, out, lse, dout, dqkv, b, n, h, d, scale): dq, dk, dv written into
// dqkv (B, N, 3, H, D), every element overwritten.
Napi::Value QkvAttentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "qkvAttentionBackward");
  const F32 qkv = args.Floats(0, "qkv"), out = args.Floats(1, "out"), lse = args.Floats(2, "lse");
  const F32 dout = args.Floats(3, "dout"), dqkv = args.Floats(4, "dqkv");
  const int64_t b = args.Int(5, "b"), n = args.Int(6, "n"), h = args.Int(7, "h"), d = args.Int(8, "d");
  const double scale = args.Num(9, "scale");
  const int64_t c = h * d, len = b * n * c;
  args.NeedLen(qkv, 3 * len, "qkv");
  args.NeedLen(out, len, "out");
  args.NeedLen(lse, b * h * n, "lse");
  args.NeedLen(dout, len, "dout");
  args.NeedLen(dqkv, 3 * len, "dqkv");
  if (len == 0) return info.Env().Undefined();
  BwdParams p{qkv.data, qkv.data + c, qkv.data + 2 * c, out.data, lse.data, dout.data, dqkv.data, dqkv.data + c,
              dqkv.data + 2 * c, Layout{n, d, h, 3 * c, c}, float(scale), false};
  auto task = AttnBwdTaskFor();
  ParallelFor(b * h, [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, dfx::AttentionForward, "attentionForward"));
  exports.Set("attentionBackward", Napi::Function::New(env, dfx::AttentionBackward, "attentionBackward"));
  exports.Set("qkvAttentionForward", Napi::Function::New(env, dfx::QkvAttentionForward, "qkvAttentionForward"));
  exports.Set("qkvAttentionBackward", Napi::Function::New(env, dfx::QkvAttentionBackward, "qkvAttentionBackward"));
  // Capability flag: this addon reads the trailing `causal` argument (an older build ignores it,
  // so src/kernels/native.ts sends causal calls to the TypeScript reference when the flag is absent).
  exports.Set("attentionCausal", Napi::Boolean::New(env, true));
}
