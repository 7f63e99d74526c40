// Broadcast elementwise arithmetic for the native addon: `binary(op, a, b, out, shape, sa, sb)`,
// add/sub/mul/div over a 4-d index space with one element stride per operand and dim (0 =
// broadcast). Semantics are src/kernels/types.ts; the reference is src/kernels/js/binary.ts.
//
// The output is cut into fixed 16K-element ranges (a function of the size only), one task each, so
// large tensors use both cores; each element is one IEEE operation, so results are bit-identical
// for any pool size and any ISA. Inner rows are vectorised when an operand's inner stride is 1
// (contiguous) or 0 (one repeated value); other strides take a scalar loop.
// Not here: shape collapsing and broadcasting rules (src/autograd/ops/broadcast.ts).
#include <napi.h>

#include <algorithm>

#include "common.h"
#include "kernels_simd.h"
#include "kernels_util.h"
#include "threadpool.h"

namespace dfx {
namespace {

constexpr int kAdd = 0, kSub = 1, kMul = 2, kDiv = 3;  // types.ts BinOp

template <class V, int Op>
inline typename V::T Apply(typename V::T a, typename V::T b) {
  if constexpr (Op == kAdd) return V::add(a, b);
  if constexpr (Op == kSub) return V::sub(a, b);
  if constexpr (Op == kMul) return V::mul(a, b);
  return V::div(a, b);
}

template <int Op>
inline float Apply1(float a, float b) {
  if constexpr (Op == kAdd) return a + b;
  if constexpr (Op == kSub) return a - b;
  if constexpr (Op == kMul) return a * b;
  return a / b;
}

// o[j] = a[j*sa] op b[j*sb], j < len, for inner strides SA, SB in {0, 1}.
template <class V, int Op, int SA, int SB>
inline void RowUnit(const float* a, const float* b, float* o, int64_t len) {
  constexpr int W = V::W;
  int64_t j = 0;
  if constexpr (W > 1) {
    const auto va = V::set1(a[0]), vb = V::set1(b[0]);
    for (; j + W <= len; j += W) {
      V::store(o + j, Apply<V, Op>(SA ? V::load(a + j) : va, SB ? V::load(b + j) : vb));
    }
  }
  for (; j < len; j++) o[j] = Apply1<Op>(a[SA ? j : 0], b[SB ? j : 0]);
}

template <class V, int Op>
inline void Row(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t len) {
  if (sa == 1 && sb == 1) return RowUnit<V, Op, 1, 1>(a, b, o, len);
  if (sa == 1 && sb == 0) return RowUnit<V, Op, 1, 0>(a, b, o, len);
  if (sa == 0 && sb == 1) return RowUnit<V, Op, 0, 1>(a, b, o, len);
  for (int64_t j = 0; j < len; j++) o[j] = Apply1<Op>(a[j * sa], b[j * sb]);
}

struct BinParams {
  int op;
  const float *a, *b;
  float* out;
  int64_t n[4], sa[4], sb[4];
  int64_t total;
};

template <class V, int Op>
inline void RangeOp(const BinParams& p, int64_t e0, int64_t e1) {
  const int64_t n3 = p.n[3];
  int64_t r = e0 / n3, j = e0 % n3;  // row (i0, i1, i2) and column of e0
  for (int64_t e = e0; e < e1; r++, j = 0) {
    const int64_t i2 = r % p.n[2], i1 = (r / p.n[2]) % p.n[1], i0 = r / (p.n[2] * p.n[1]);
    const int64_t ia = i0 * p.sa[0] + i1 * p.sa[1] + i2 * p.sa[2] + j * p.sa[3];
    const int64_t ib = i0 * p.sb[0] + i1 * p.sb[1] + i2 * p.sb[2] + j * p.sb[3];
    const int64_t len = std::min(n3 - j, e1 - e);
    Row<V, Op>(p.a + ia, p.sa[3], p.b + ib, p.sb[3], p.out + e, len);
    e += len;
  }
}

// One task: output elements [t * kFlatChunk, ...).
template <class V>
void BinTask(const BinParams& p, int64_t t) {
  const int64_t e0 = t * kFlatChunk, e1 = std::min(p.total, e0 + kFlatChunk);
  switch (p.op) {
    case kAdd: return RangeOp<V, kAdd>(p, e0, e1);
    case kSub: return RangeOp<V, kSub>(p, e0, e1);
    case kMul: return RangeOp<V, kMul>(p, e0, e1);
    default: return RangeOp<V, kDiv>(p, e0, e1);
  }
}
DFX_ISA_VARIANTS(BinTask, BinParams)

// Reads a 4-entry array argument of non-negative integers.
void ReadQuad(const Args& args, const Napi::CallbackInfo& info, size_t i, const char* name, int64_t* out) {
  if (!info[i].IsArray()) args.Fail(name, "must be an array of 4 non-negative integers");
  auto arr = info[i].As<Napi::Array>();
  if (arr.Length() != 4) args.Fail(name, "must have exactly 4 entries");
  for (uint32_t k = 0; k < 4; k++) {
    Napi::Value v = arr.Get(k);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) args.Fail(name, "must hold non-negative integers");
    out[k] = int64_t(d);
  }
}

// binary(op, a, b, out, shape[4], sa[4], sb[4])
Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args args(info, "binary");
  const int64_t op = args.Int(0, "op");
  if (op > kDiv) args.Fail("op", "must be a BinOp code (0 add, 1 sub, 2 mul, 3 div)");
  const F32 a = args.Floats(1, "a"), b = args.Floats(2, "b"), out = args.Floats(3, "out");
  BinParams p{int(op), a.data, b.data, out.data, {}, {}, {}, 1};
  ReadQuad(args, info, 4, "shape", p.n);
  ReadQuad(args, info, 5, "sa", p.sa);
  ReadQuad(args, info, 6, "sb", p.sb);
  for (int k = 0; k < 4; k++) p.total *= p.n[k];
  if (p.total == 0) return info.Env().Undefined();
  int64_t lastA = 0, lastB = 0;  // largest element offset each operand is read at
  for (int k = 0; k < 4; k++) {
    lastA += (p.n[k] - 1) * p.sa[k];
    lastB += (p.n[k] - 1) * p.sb[k];
  }
  args.NeedLen(a, lastA + 1, "a");
  args.NeedLen(b, lastB + 1, "b");
  args.NeedLen(out, p.total, "out");
  auto task = BinTaskFor();
  ParallelFor(Chunks(p.total, kFlatChunk), [&](int64_t t) { task(p, t); });
  return info.Env().Undefined();
}

}  // namespace
}  // namespace dfx

void RegisterBinary(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, dfx::Binary, "binary"));
}
