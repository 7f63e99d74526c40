// Activation math for the GEMM epilogue (and any kernel that wants it), written once as templates
// over a SIMD "ops" struct O (O::T is the vector type: __m512, __m256 or float). Each ISA file
// instantiates these inside its own target region with its own O from an anonymous namespace,
// so the copies have internal linkage and never mix ISAs.
// Matches src/kernels/js/activations.ts: exact-erf GELU (erf to ~2e-7 absolute, Abramowitz &
// Stegun 7.1.26, the formula PyTorch vectorises), tanh GELU (as x * sigmoid(2u), an identity),
// SiLU, ReLU. It is not a general libm: exp is clamped to [-87, 88] (fine for sigmoids).
#pragma once

namespace dfx {
namespace vecmath {

/** e^x for x clamped to [-87, 88]; Cephes expf polynomial, ~1 ulp. */
template <class O>
inline typename O::T Exp(typename O::T x) {
  using T = typename O::T;
  x = O::min(O::max(x, O::set1(-87.f)), O::set1(88.f));
  T n = O::round(O::mul(x, O::set1(1.44269504088896341f)));
  T r = O::fnma(n, O::set1(0.693359375f), x);  // ln2 split in two for an exact-ish reduction
  r = O::fnma(n, O::set1(-2.12194440e-4f), r);
  T p = O::set1(1.9875691500e-4f);
  p = O::fma(p, r, O::set1(1.3981999507e-3f));
  p = O::fma(p, r, O::set1(8.3334519073e-3f));
  p = O::fma(p, r, O::set1(4.1665795894e-2f));
  p = O::fma(p, r, O::set1(1.6666665459e-1f));
  p = O::fma(p, r, O::set1(5.0000001201e-1f));
  T y = O::fma(p, O::mul(r, r), O::add(r, O::set1(1.f)));
  return O::mul(y, O::pow2(n));
}

/** erf(x) to ~2e-7 absolute (A&S 7.1.26 with a float exp). */
template <class O>
inline typename O::T Erf(typename O::T x) {
  using T = typename O::T;
  T z = O::abs(x);
  T t = O::div(O::set1(1.f), O::fma(O::set1(0.3275911f), z, O::set1(1.f)));
  T p = O::set1(1.061405429f);
  p = O::fma(p, t, O::set1(-1.453152027f));
  p = O::fma(p, t, O::set1(1.421413741f));
  p = O::fma(p, t, O::set1(-0.284496736f));
  p = O::fma(p, t, O::set1(0.254829592f));
  p = O::mul(p, t);
  T e = Exp<O>(O::neg(O::mul(z, z)));
  T y = O::fnma(p, e, O::set1(1.f));  // 1 - p * e
  return O::copysign(y, x);
}

template <class O>
inline typename O::T Sigmoid(typename O::T x) {
  return O::div(O::set1(1.f), O::add(O::set1(1.f), Exp<O>(O::neg(x))));
}

/** Applies activation `act` (GemmAct codes) to x. */
template <class O>
inline typename O::T Activate(int act, typename O::T x) {
  using T = typename O::T;
  switch (act) {
    case 1:  // relu
      return O::max(x, O::set1(0.f));
    case 2: {  // gelu (erf): 0.5 x (1 + erf(x / sqrt 2))
      T e = Erf<O>(O::mul(x, O::set1(0.70710678118654752f)));
      return O::mul(O::mul(O::set1(0.5f), x), O::add(O::set1(1.f), e));
    }
    case 3: {  // gelu tanh: 0.5 x (1 + tanh u) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
      T x3 = O::mul(O::mul(x, x), x);
      T u2 = O::mul(O::set1(2.f * 0.7978845608028654f), O::fma(O::set1(0.044715f), x3, x));
      return O::mul(x, Sigmoid<O>(u2));
    }
    case 4:  // silu: x * sigmoid(x)
      return O::mul(x, Sigmoid<O>(x));
    default:
      return x;
  }
}

}  // namespace vecmath
}  // namespace dfx
