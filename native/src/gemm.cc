// The blocked SGEMM driver (GotoBLAS/BLIS loop nest) and its N-API binding `gemm`.
// Loops: jc over NC columns of C; pc over KC slices of k (in order: it fixes the summation order);
// one parallel region packs KC x NC panels of op(B) (all slices at once when B is small enough);
// a second runs tasks that each, per slice, pack an MC x KC block of op(A) and sweep it against a
// range of B micro-panels with the ISA's micro-kernel. Every C tile is written by exactly one task
// per slice, slices in order, and the blocking of k depends on k alone, so results are
// bit-identical for any pool size and any interleaving.
// Bias + activation are applied to each tile by the micro-kernel of its last pc step, in registers
// before the store (a separate pass over the just-stored tile cost ~20 % at k = 192).
// SIMD micro-kernels: gemm_avx512.cc, gemm_avx2.cc, gemm_scalar.cc.
#include "gemm.h"

#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "common.h"
#include "cpu.h"
#include "kernels_simd.h"
#include "threadpool.h"

namespace dfx {
namespace {

// Below this many flops one GEMM runs on the calling thread: waking the pool costs more.
constexpr double kInlineFlops = 3.0e6;
// Largest packed op(B) (in floats, 16 MB) kept whole per calling thread; see GemmOne.
constexpr int64_t kPackAllFloats = int64_t(4) << 20;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A growable 64-byte-aligned scratch buffer per thread (two slots: A blocks and B panels).
float* Scratch(int slot, size_t floats) {
  struct Buf {
    float* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[slot];
  if (b.cap < floats) {
    std::free(b.p);
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    b.p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (b.p == nullptr) throw std::bad_alloc();
    b.cap = floats;
  }
  return b.p;
}

// k == 0: C = beta * C, then bias and activation (alpha * an empty sum is 0).
void EmptyK(const GemmKernel& K, const GemmCall& g, float* c) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* cr = c + i * g.ldc;
    for (int64_t j = 0; j < g.n; ++j) cr[j] = g.beta != 0.f ? g.beta * cr[j] : 0.f;
  }
  if (g.bias != nullptr || g.act != kActNone) K.epilogue(c, g.ldc, g.m, g.n, g.bias, g.act);
}

// acc[r] += op(A)[i0 + r][p] for p in [pc, pc + kc), r in [0, rows), each row's terms in p order
// (the order of reduceSum's strided sum, kernels_reduce.cc). Compiled per ISA (kernels_simd.h) so
// the loops over rows vectorise with the widest registers; 64 rows' sums stay in registers over p.
struct RowSumParams {
  const float* a;
  int64_t lda;
  bool transA;
  int64_t rows, pc, kc;
  double* acc;
};

template <class V>
void AddRowSumsBody(const RowSumParams& q, int64_t) {
  constexpr int64_t kStrip = 64;
  if (q.transA) {  // A stored (k, m): row p holds op(A)[., p] contiguously
    for (int64_t r0 = 0; r0 < q.rows; r0 += kStrip) {
      const int64_t w = std::min(kStrip, q.rows - r0);
      double acc[kStrip];
      for (int64_t r = 0; r < w; ++r) acc[r] = q.acc[r0 + r];
      if (w == kStrip) {
        for (int64_t p = q.pc; p < q.pc + q.kc; ++p) {
          const float* src = q.a + p * q.lda + r0;
          for (int64_t r = 0; r < kStrip; ++r) acc[r] += double(src[r]);
        }
      } else {
        for (int64_t p = q.pc; p < q.pc + q.kc; ++p) {
          const float* src = q.a + p * q.lda + r0;
          for (int64_t r = 0; r < w; ++r) acc[r] += double(src[r]);
        }
      }
      for (int64_t r = 0; r < w; ++r) q.acc[r0 + r] = acc[r];
    }
  } else {
    for (int64_t r = 0; r < q.rows; ++r) {
      const float* src = q.a + r * q.lda + q.pc;
      double s = q.acc[r];
      for (int64_t p = 0; p < q.kc; ++p) s += double(src[p]);
      q.acc[r] = s;
    }
  }
}
DFX_ISA_VARIANTS(AddRowSumsBody, RowSumParams)

// op(A)'s rows [i0, i0 + rows) over the k slice [pc, pc + kc), added to acc (indexed from i0).
void AddRowSums(const GemmCall& g, const float* a, int64_t i0, int64_t rows, int64_t pc, int64_t kc, double* acc) {
  const float* base = g.transA ? a + i0 : a + i0 * g.lda;
  AddRowSumsBodyFor()(RowSumParams{base, g.lda, g.transA, rows, pc, kc, acc}, 0);
}

// One matrix of the batch. `threads` is how many ways to split it (1: all on this thread).
void GemmOne(const GemmKernel& K, const GemmCall& g, const float* a, const float* b, float* c,
             int threads) {
  const int64_t m = g.m, n = g.n, k = g.k;
  if (m == 0) return;
  // Row sums of op(A) (g.rowSumsA): each block of rows is summed by the one task that packs it
  // for the first column range, slice after slice, so every sum runs in p order on any pool size.
  std::vector<double> sums(g.rowSumsA != nullptr ? size_t(m) : 0);
  struct WriteSums {
    const GemmCall& g;
    std::vector<double>& s;
    ~WriteSums() {
      for (size_t i = 0; i < s.size(); ++i) g.rowSumsA[i] = float(s[i]);
    }
  } writeSums{g, sums};
  if (n == 0 || k == 0) {
    if (!sums.empty()) AddRowSums(g, a, 0, m, 0, k, sums.data());
    if (n == 0) return;
    return EmptyK(K, g, c);
  }
  const int MR = K.mr, NR = K.nr;
  // Packed panels hold elements of K.elemBytes and k steps padded to K.kAlign; F converts a count
  // of packed elements to floats of scratch (fp32 kernels: F(e) = e, kPad(kc) = kc).
  const int64_t kAlign = K.kAlign, elemBytes = K.elemBytes;
  auto F = [elemBytes](int64_t elems) { return elems * elemBytes / int64_t(sizeof(float)); };
  auto kPad = [kAlign](int64_t kc) { return (kc + kAlign - 1) / kAlign * kAlign; };

  // k is cut into equal slices of at most kcMax: the cut depends on k only (summation order).
  // (kcStep is rounded up to whole kAlign steps; kBlocks is recounted so no slice is empty.)
  const int64_t kcStep = kPad(CeilDiv(k, CeilDiv(k, K.kcMax)));
  const int64_t kBlocks = CeilDiv(k, kcStep);

  // Rows go in mBlocks blocks of whole MR panels, at most mcMax rows (the packed A block stays in
  // L2) and, when threaded, about 4 blocks per thread so that dynamic hand-out evens out threads
  // that the OS preempts. When rows are too few for every thread, the B micro-panels are split
  // into nGroups ranges as well (each of those tasks packs the same A block).
  const int64_t mPanels = CeilDiv(m, MR);
  int64_t mBlocks = CeilDiv(mPanels, K.mcMax / MR);
  int64_t nGroupsWanted = 1;
  if (threads > 1) {
    if (mPanels >= 2 * threads) {
      const int64_t want = std::max(mBlocks, std::min<int64_t>(4 * threads, mPanels / 3));
      mBlocks = std::min(mPanels, CeilDiv(want, threads) * threads);
    } else {
      mBlocks = std::min<int64_t>(mPanels, threads);
      nGroupsWanted = CeilDiv(threads, mBlocks);
    }
  }
  // Block ib holds panels [ib * mPanels / mBlocks, (ib + 1) * mPanels / mBlocks): sizes differ
  // by at most one panel.
  auto blockRows = [&](int64_t ib, int64_t* i0, int64_t* rows) {
    *i0 = ib * mPanels / mBlocks * MR;
    *rows = std::min(m, (ib + 1) * mPanels / mBlocks * MR) - *i0;
  };

  // When all of op(B) packs into kPackAllFloats, pack it in one region and run every k slice
  // inside the tasks of a second one (two barriers per GEMM). Otherwise go NC columns and one k
  // slice at a time (two barriers per slice).
  const int64_t nPadAll = CeilDiv(n, NR) * NR;
  const bool packAll = F(kPad(k) * nPadAll) <= kPackAllFloats;
  const int64_t ncStep = packAll ? n : std::max<int64_t>(NR, K.ncMax / NR * NR);
  const int64_t pcPerRegion = packAll ? kBlocks : 1;
  const int64_t ncPadMax = CeilDiv(std::min(ncStep, n), NR) * NR;
  float* bPack = Scratch(1, size_t(F(ncPadMax * kcStep * pcPerRegion)));

  for (int64_t jc = 0; jc < n; jc += ncStep) {
    const int64_t nc = std::min(ncStep, n - jc);
    const int64_t nPanels = CeilDiv(nc, NR), ncPad = nPanels * NR;
    const int64_t nGroups = std::min(nPanels, nGroupsWanted);
    const int64_t panelsPerGroup = CeilDiv(nPanels, nGroups);
    for (int64_t pb0 = 0; pb0 < kBlocks; pb0 += pcPerRegion) {
      const int64_t pb1 = std::min(kBlocks, pb0 + pcPerRegion);
      // Pack op(B)[pc:pc+kc, jc:jc+nc] for slices pb0..pb1, in chunks of whole micro-panels;
      // slice pb sits at (pb - pb0) * kcStep * ncPad, its panel jp at jp * NR * kc within it.
      const int64_t chunks = threads > 1 ? std::min<int64_t>(nPanels, 4 * threads) : 1;
      const int64_t panelsPerChunk = CeilDiv(nPanels, chunks);
      const int64_t chunksUsed = CeilDiv(nPanels, panelsPerChunk);
      auto pack = [&](int64_t t) {
        const int64_t pb = pb0 + t / chunksUsed, j0 = (t % chunksUsed) * panelsPerChunk * NR;
        const int64_t pc = pb * kcStep, kc = std::min(kcStep, k - pc);
        const int64_t cols = std::min(nc - j0, panelsPerChunk * NR);
        const float* src = g.transB ? b + (jc + j0) * g.ldb + pc : b + pc * g.ldb + jc + j0;
        K.packB(src, g.ldb, g.transB, kc, cols, bPack + F((pb - pb0) * kcStep * ncPad + j0 * kPad(kc)));
      };
      const int64_t packTasks = (pb1 - pb0) * chunksUsed;
      ParallelFor(threads > 1 ? packTasks : 1, [&](int64_t t) {
        if (threads > 1) return pack(t);
        for (int64_t u = 0; u < packTasks; ++u) pack(u);
      });

      auto task = [&](int64_t t) {
        const int64_t ib = t / nGroups, jg = t % nGroups;
        int64_t i0, rowsBlock;
        blockRows(ib, &i0, &rowsBlock);
        const int64_t jp0 = jg * panelsPerGroup, jp1 = std::min(nPanels, jp0 + panelsPerGroup);
        if (rowsBlock <= 0 || jp0 >= jp1) return;
        for (int64_t pb = pb0; pb < pb1; ++pb) {
          const int64_t pc = pb * kcStep, kc = std::min(kcStep, k - pc);
          const bool last = pc + kc == k;
          const float beta = pc == 0 ? g.beta : 1.f;
          const int64_t kcp = kPad(kc);
          float* aPack = Scratch(0, size_t(F(CeilDiv(rowsBlock, MR) * MR * kcp)));
          const float* aSrc = g.transA ? a + pc * g.lda + i0 : a + i0 * g.lda + pc;
          K.packA(aSrc, g.lda, g.transA, rowsBlock, kc, aPack);
          if (!sums.empty() && jc == 0 && jg == 0) AddRowSums(g, a, i0, rowsBlock, pc, kc, sums.data() + i0);
          const float* bSlice = bPack + F((pb - pb0) * kcStep * ncPad);
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t j = jp * NR;
            const int cols = int(std::min<int64_t>(NR, nc - j));
            for (int64_t ir = 0; ir < rowsBlock; ir += MR) {
              const int rows = int(std::min<int64_t>(MR, rowsBlock - ir));
              float* ct = c + (i0 + ir) * g.ldc + jc + j;
              // The last slice adds bias and applies the activation in registers, before its store.
              const float* biasT = last && g.bias != nullptr ? g.bias + jc + j : nullptr;
              K.micro(kcp, aPack + F(ir * kcp), bSlice + F(j * kcp), ct, g.ldc, g.alpha, beta, rows, cols,
                      biasT, last ? g.act : kActNone);
            }
          }
        }
      };
      ParallelFor(threads > 1 ? mBlocks * nGroups : 1, [&](int64_t t) {
        if (threads > 1) return task(t);
        for (int64_t u = 0; u < mBlocks * nGroups; ++u) task(u);
      });
    }
  }
}

const GemmKernel& ActiveKernel() {
  switch (ActiveIsa()) {
    case Isa::Avx512: return GemmKernelAvx512();
    case Isa::Avx2: return GemmKernelAvx2();
    default: return GemmKernelScalar();
  }
}

}  // namespace

// gemm(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC,
//      batch, bias|null, act), and gemmBf16 (gemm_bf16.cc) with the same arguments.
Napi::Value GemmNapi(const Napi::CallbackInfo& info, const char* name, void (*run)(const GemmCall&)) {
  Args args(info, name);
  GemmCall g;
  g.transA = args.Bool(0, "transA");
  g.transB = args.Bool(1, "transB");
  g.m = args.Int(2, "m");
  g.n = args.Int(3, "n");
  g.k = args.Int(4, "k");
  g.alpha = float(args.Num(5, "alpha"));
  F32 a = args.Floats(6, "a");
  g.lda = args.Int(7, "lda");
  g.strideA = args.Int(8, "strideA");
  F32 b = args.Floats(9, "b");
  g.ldb = args.Int(10, "ldb");
  g.strideB = args.Int(11, "strideB");
  g.beta = float(args.Num(12, "beta"));
  F32 c = args.Floats(13, "c");
  g.ldc = args.Int(14, "ldc");
  g.strideC = args.Int(15, "strideC");
  g.batch = args.Int(16, "batch");
  F32 bias = args.FloatsOrNull(17, "bias");
  g.act = int(args.Int(18, "act"));
  F32 rowSums = info.Length() > 19 ? args.FloatsOrNull(19, "rowSumsA") : F32{};
  if (g.act > kActSilu) args.Fail("act", "must be an activation code 0..4 (none, relu, gelu, geluTanh, silu)");

  const int64_t aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k;
  const int64_t bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n;
  if (aRows > 0 && aCols > 0 && g.lda < aCols) args.Fail("lda", "is smaller than the row length of the stored A");
  if (bRows > 0 && bCols > 0 && g.ldb < bCols) args.Fail("ldb", "is smaller than the row length of the stored B");
  if (g.m > 0 && g.n > 0 && g.ldc < g.n) args.Fail("ldc", "is smaller than n");
  if (g.batch > 0 && g.m > 0 && g.n > 0) {
    const int64_t last = g.batch - 1;
    if (g.k > 0) {
      args.NeedLen(a, last * g.strideA + (aRows - 1) * g.lda + aCols, "a");
      args.NeedLen(b, last * g.strideB + (bRows - 1) * g.ldb + bCols, "b");
    }
    args.NeedLen(c, last * g.strideC + (g.m - 1) * g.ldc + g.n, "c");
    if (bias.data != nullptr) args.NeedLen(bias, g.n, "bias");
  }
  if (rowSums.data != nullptr) {
    if (g.batch != 1) args.Fail("rowSumsA", "needs batch 1");
    args.NeedLen(rowSums, g.m, "rowSumsA");
    if (g.k > 0 && g.m > 0) args.NeedLen(a, (aRows - 1) * g.lda + aCols, "a");
  }
  g.rowSumsA = rowSums.data;
  g.a = a.data;
  g.b = b.data;
  g.c = c.data;
  g.bias = bias.data;
  run(g);
  return info.Env().Undefined();
}

namespace {
Napi::Value GemmFn(const Napi::CallbackInfo& info) { return GemmNapi(info, "gemm", Sgemm); }
}  // namespace

void SgemmWith(const GemmKernel& K, const GemmCall& g) {
  if (g.batch <= 0 || g.m == 0 || (g.n == 0 && g.rowSumsA == nullptr)) return;
  const double flops = 2.0 * double(g.m) * double(g.n) * double(g.k);
  const int pool = PoolSize();
  // Many small matrices whose C's do not overlap: one task per matrix.
  const bool disjointC = g.strideC >= (g.m - 1) * g.ldc + g.n;
  if (g.batch > 1 && flops < kInlineFlops && disjointC && pool > 1 &&
      flops * double(g.batch) >= kInlineFlops) {
    ParallelFor(g.batch, [&](int64_t i) {
      GemmOne(K, g, g.a + i * g.strideA, g.b + i * g.strideB, g.c + i * g.strideC, 1);
    });
    return;
  }
  const int threads = flops < kInlineFlops ? 1 : pool;
  for (int64_t i = 0; i < g.batch; ++i) {
    GemmOne(K, g, g.a + i * g.strideA, g.b + i * g.strideB, g.c + i * g.strideC, threads);
  }
}

void Sgemm(const GemmCall& g) { SgemmWith(ActiveKernel(), g); }

}  // namespace dfx

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, dfx::GemmFn, "gemm"));
}
