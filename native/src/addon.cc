// Entry point of the diffactor native addon: exports isa(), threads(), setIsa(), then asks every
// kernel source file to add its functions. It holds no kernels.
//
// To add kernels: in native/src/kernels_<name>.cc define
//   void RegisterXxx(Napi::Env env, Napi::Object exports);
// (exports.Set("fnName", Napi::Function::New(env, FnName, "fnName"))), declare it in the list below,
// call it in Init, and add the source to native/binding.gyp. Argument helpers are in common.h,
// ISA dispatch in cpu.h, the shared thread pool in threadpool.h.
#include <napi.h>

#include "common.h"
#include "cpu.h"
#include "threadpool.h"

// One Register function per kernel source file.
void RegisterGemm(Napi::Env env, Napi::Object exports);
void RegisterGemmBf16(Napi::Env env, Napi::Object exports);
void RegisterAttention(Napi::Env env, Napi::Object exports);
void RegisterNorm(Napi::Env env, Napi::Object exports);
void RegisterElementwise(Napi::Env env, Napi::Object exports);
void RegisterReduce(Napi::Env env, Napi::Object exports);
void RegisterOptim(Napi::Env env, Napi::Object exports);
void RegisterBinary(Napi::Env env, Napi::Object exports);
void RegisterAdaLN(Napi::Env env, Napi::Object exports);
void RegisterQkvAttentionBf16(Napi::Env env, Napi::Object exports);

namespace {

Napi::Value IsaFn(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dfx::IsaName(dfx::ActiveIsa()));
}

Napi::Value ThreadsFn(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), dfx::PoolSize());
}

// setIsa('avx512' | 'avx2' | 'scalar'): process-wide switch for tests and benchmarks; throws when
// the CPU lacks the path. Returns the path now active.
Napi::Value SetIsaFn(const Napi::CallbackInfo& info) {
  dfx::Args args(info, "setIsa");
  if (!info[0].IsString()) args.Fail("isa", "must be 'avx512', 'avx2' or 'scalar'");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  dfx::Isa isa;
  if (!dfx::ParseIsa(name.c_str(), &isa)) args.Fail("isa", "must be 'avx512', 'avx2' or 'scalar'");
  if (!dfx::SetIsa(isa)) {
    throw Napi::Error::New(info.Env(), "setIsa: this CPU does not support '" + name + "' (best: " +
                                           dfx::IsaName(dfx::BestIsa()) + ")");
  }
  return Napi::String::New(info.Env(), dfx::IsaName(dfx::ActiveIsa()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("isa", Napi::Function::New(env, IsaFn, "isa"));
  exports.Set("threads", Napi::Function::New(env, ThreadsFn, "threads"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsaFn, "setIsa"));
  RegisterGemm(env, exports);
  RegisterGemmBf16(env, exports);
  RegisterAttention(env, exports);
  RegisterNorm(env, exports);
  RegisterElementwise(env, exports);
  RegisterReduce(env, exports);
  RegisterOptim(env, exports);
  RegisterBinary(env, exports);
  RegisterAdaLN(env, exports);
  RegisterQkvAttentionBf16(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(diffactor, Init)
