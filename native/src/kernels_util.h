// Small helpers shared by the non-GEMM kernel files: per-thread scratch memory for kernel tasks
// and fixed-size work partitioning. Task boundaries depend only on the problem size, never on
// the pool size, which is what keeps every kernel's result identical whatever the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dfx {

/**
 * Returns a float buffer of at least n elements, valid until the next Scratch call on this thread.
 * One growing buffer per OS thread, so a task needing a few hundred KB (padded attention blocks)
 * does not call malloc each time. A task may hold only one Scratch at a time.
 */
inline float* Scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

/** Rounds x up to a multiple of m. */
constexpr int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/** Number of chunks of `chunk` items covering `total`. */
constexpr int64_t Chunks(int64_t total, int64_t chunk) { return (total + chunk - 1) / chunk; }

/** Elements per task for flat elementwise kernels (activations, AdamW, EMA). */
constexpr int64_t kFlatChunk = 16384;

}  // namespace dfx
