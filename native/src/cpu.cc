// Run-time ISA detection and the process-wide active-ISA switch (see cpu.h).
#include "cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace dfx {
namespace {

Isa Detect() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma")) {
    return Isa::Avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
  return Isa::Scalar;
}

// Function-local statics: initialised once, thread-safely, and shared by every JS worker thread
// that loads the addon.
std::atomic<int>& Active() {
  static std::atomic<int> active{[] {
    Isa best = BestIsa();
    Isa want = best;
    const char* env = std::getenv("DIFFACTOR_ISA");
    if (env != nullptr && *env != '\0' && ParseIsa(env, &want) && want < best) return int(want);
    return int(best);
  }()};
  return active;
}

}  // namespace

Isa BestIsa() {
  static const Isa best = Detect();
  return best;
}

Isa ActiveIsa() { return static_cast<Isa>(Active().load(std::memory_order_relaxed)); }

bool SetIsa(Isa isa) {
  if (isa > BestIsa()) return false;
  Active().store(int(isa), std::memory_order_relaxed);
  return true;
}

bool HasAvx512Bf16() {
  static const bool has = BestIsa() == Isa::Avx512 && __builtin_cpu_supports("avx512bf16");
  return has;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

bool ParseIsa(const char* name, Isa* out) {
  if (std::strcmp(name, "avx512") == 0) { *out = Isa::Avx512; return true; }
  if (std::strcmp(name, "avx2") == 0) { *out = Isa::Avx2; return true; }
  if (std::strcmp(name, "scalar") == 0) { *out = Isa::Scalar; return true; }
  return false;
}

}  // namespace dfx
