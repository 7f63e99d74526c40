# Build description of the diffactor native addon (kernels only; see src/addon.cc).
# Each kernel source file defines one Register<Name>(env, exports) called from addon.cc.
# No -march=native: SIMD paths are chosen at run time per function (see src/cpu.h).
{
  "targets": [
    {
      "target_name": "diffactor",
      "sources": [
        "src/addon.cc",
        "src/cpu.cc",
        "src/threadpool.cc",
        "src/gemm.cc",
        "src/gemm_avx512.cc",
        "src/gemm_avx2.cc",
        "src/gemm_scalar.cc",
        "src/gemm_bf16.cc",
        "src/gemm_avx512bf16.cc",
        "src/kernels_attention.cc",
        "src/kernels_norm.cc",
        "src/kernels_elementwise.cc",
        "src/kernels_reduce.cc",
        "src/kernels_optim.cc",
        "src/kernels_binary.cc",
        "src/kernels_adaln.cc",
        "src/kernels_qkv_attention_bf16.cc",
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++14", "-std=gnu++17", "-O2", "-O0"],
      "cflags": ["-O3", "-fno-math-errno", "-Wall", "-Wextra"],
      # -Wno-maybe-uninitialized: GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*).
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-Wall", "-Wextra",
                    "-Wno-unused-parameter", "-Wno-maybe-uninitialized"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno"]
      }
    }
  ]
}
