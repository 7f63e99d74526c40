// Process-wide thread pool (see threadpool.h). Workers sleep on a condition variable between
// regions after spinning for ~50 us (a training step issues many kernels back to back, and a
// wake-up through the kernel costs tens of microseconds; a longer spin would take CPU from the
// other actors on a shared machine). The pool is leaked on purpose: its threads are
// never joined, so process exit never waits on (or std::terminate()s over) a sleeping worker.
#include "threadpool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DFX_PAUSE() _mm_pause()
#else
#define DFX_PAUSE() std::this_thread::yield()
#endif

namespace dfx {
namespace {

thread_local bool tInRegion = false;

// Spins (with pause) until done() or `micros` have passed; returns done().
template <class Done>
bool SpinFor(int micros, Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (done()) return true;
      DFX_PAUSE();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

int ConfiguredSize() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("DIFFACTOR_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) n = v;
  }
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  return n;
}

// Region protocol. state_ packs (generation << 32) | closed bit | joined-worker count. A worker
// joins the current region with a CAS that fails once the caller has closed it (or a newer region
// has begun), so the caller never waits for a worker that the OS has not scheduled yet: it runs
// the remaining tasks itself, closes the region, and waits only for workers still inside a task.
class Pool {
 public:
  explicit Pool(int size) : size_(size) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }

  int Size() const { return size_; }

  void Run(int64_t tasks, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> region(region_);  // one region at a time, process-wide
    fn_ = &fn;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);
      ++gen_;
      state_.store(gen_ << 32, std::memory_order_release);  // open, nobody joined
    }
    wake_.notify_all();
    Work();
    const uint64_t before = state_.fetch_or(kClosed, std::memory_order_acq_rel);
    if ((before & kCount) != 0 &&
        !SpinFor(50, [this] { return (state_.load(std::memory_order_acquire) & kCount) == 0; })) {
      std::unique_lock<std::mutex> lk(m_);
      done_.wait(lk, [this] { return (state_.load(std::memory_order_acquire) & kCount) == 0; });
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  static constexpr uint64_t kClosed = uint64_t(1) << 31;
  static constexpr uint64_t kCount = kClosed - 1;

  // Runs tasks until none are left. A task that throws (e.g. std::bad_alloc) must not unwind
  // past the region while others still use it: keep the first exception for Run to rethrow.
  void Work() {
    tInRegion = true;
    for (;;) {
      const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= tasks_) break;
      try {
        (*fn_)(t);
      } catch (...) {
        std::lock_guard<std::mutex> lk(errorMu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    tInRegion = false;
  }

  // Joins region `gen` unless it is closed or over; true when joined.
  bool Join(uint64_t gen) {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s >> 32) == gen && (s & kClosed) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }

  void WorkerLoop() {
    uint64_t seen = 0;
    auto fresh = [&] { return (state_.load(std::memory_order_acquire) >> 32) != seen; };
    for (;;) {
      // Spin briefly for the next region, then sleep.
      if (!SpinFor(50, fresh)) {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, fresh);
      }
      seen = state_.load(std::memory_order_acquire) >> 32;
      if (!Join(seen)) continue;
      Work();
      const uint64_t before = state_.fetch_sub(1, std::memory_order_acq_rel);
      if ((before & kClosed) != 0 && (before & kCount) == 1) {
        std::lock_guard<std::mutex> lk(m_);
        done_.notify_one();
      }
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex region_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  uint64_t gen_ = 0;  // guarded by m_; mirrored in state_'s high half
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> next_{0};
  int64_t tasks_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::mutex errorMu_;
  std::exception_ptr error_;
};

Pool& ThePool() {
  static Pool* pool = new Pool(ConfiguredSize());  // leaked: see the file comment
  return *pool;
}

}  // namespace

int PoolSize() { return ThePool().Size(); }

void ParallelFor(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (tasks == 1 || tInRegion || PoolSize() == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  ThePool().Run(tasks, fn);
}

}  // namespace dfx
