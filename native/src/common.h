// Shared argument helpers for the addon's exported functions: read a JS argument as a float*,
// a number, an integer or a bool, or throw a JS TypeError that names the argument.
// It holds no kernels and no threading (see threadpool.h for ParallelFor, cpu.h for the ISA).
//
// Usage inside an exported function (C++ exceptions are enabled; a thrown Napi::Error becomes the
// JS exception at the N-API boundary):
//   Args args(info, "layerNormForward");
//   F32 x = args.Floats(0, "x");         // Float32Array, any offset into a (Shared)ArrayBuffer
//   F32 w = args.FloatsOrNull(1, "weight");  // null/undefined -> {nullptr, 0}
//   int64_t rows = args.Int(6, "rows");   // integral, >= 0
//   double eps = args.Num(8, "eps");
//   args.NeedLen(x, rows * cols, "x");    // throws when x is shorter
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace dfx {

/** A Float32Array argument: its first element and its length in floats (not bytes). */
struct F32 {
  float* data = nullptr;
  size_t length = 0;
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env Env() const { return info_.Env(); }

  /** A required Float32Array. Bare (Shared)ArrayBuffers are refused: pass a typed-array view. */
  dfx::F32 Floats(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      Fail(name, "must be a Float32Array");
    }
    auto arr = v.As<Napi::Float32Array>();
    return dfx::F32{arr.Data(), arr.ElementLength()};
  }

  /** A Float32Array or null/undefined (absent optional array). */
  dfx::F32 FloatsOrNull(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (v.IsNull() || v.IsUndefined()) return dfx::F32{};
    return Floats(i, name);
  }

  /** A finite-or-not JS number. */
  double Num(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) Fail(name, "must be a number");
    return v.As<Napi::Number>().DoubleValue();
  }

  /** A non-negative integer (sizes, strides, leading dimensions, codes). */
  int64_t Int(size_t i, const char* name) const {
    double d = Num(i, name);
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0) {
      Fail(name, "must be a non-negative integer");
    }
    return static_cast<int64_t>(d);
  }

  bool Bool(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsBoolean()) Fail(name, "must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  /** Throws unless `a` holds at least `needed` floats (skipped for absent optional arrays). */
  void NeedLen(const dfx::F32& a, int64_t needed, const char* name) const {
    if (a.data == nullptr && a.length == 0) return;
    if (needed > 0 && static_cast<int64_t>(a.length) < needed) {
      Fail(name, ("is too short: has " + std::to_string(a.length) + " elements, needs " +
                  std::to_string(needed)).c_str());
    }
  }

  /** Throws a TypeError "<fn>: argument '<name>' <what>". */
  [[noreturn]] void Fail(const char* name, const char* what) const {
    throw Napi::TypeError::New(info_.Env(),
                               std::string(fn_) + ": argument '" + name + "' " + what);
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

}  // namespace dfx
