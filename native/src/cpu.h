// Run-time choice of the SIMD path: what the CPU supports (CPUID via __builtin_cpu_supports) and
// which path the kernels use now. DIFFACTOR_ISA=avx2|scalar in the environment, or SetIsa, may
// choose a LOWER path than the best one (so tests can run every path on one machine); a higher one
// than the CPU has is refused. It holds no kernels.
#pragma once

namespace dfx {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

/** The best path this CPU supports: Avx512 needs AVX-512F/BW/VL + FMA, Avx2 needs AVX2 + FMA. */
Isa BestIsa();

/** The path kernels should take now (process-wide; read it once per call). */
Isa ActiveIsa();

/** Chooses the path; returns false (and changes nothing) when the CPU lacks it. */
bool SetIsa(Isa isa);

const char* IsaName(Isa isa);

/** CPUID has AVX512_BF16 (VCVTNE2PS2BF16, VDPBF16PS) on top of the Avx512 path's features. */
bool HasAvx512Bf16();

/** Parses "avx512" | "avx2" | "scalar"; returns false on anything else. */
bool ParseIsa(const char* name, Isa* out);

}  // namespace dfx
