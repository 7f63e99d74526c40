// Scalar activation functions and their derivatives: the reference for the gemm epilogue and for
// the elementwise activation kernels. erf is computed to near float64 precision (series near 0,
// continued fraction in the tails) so that float64 gradchecks of exact GELU are meaningful.
import { Act, type ActCode, type FArray } from '../types.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf to ~1e-15 relative: Taylor series near 0, erfc continued fraction in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = x, sum = x;
    const x2 = x * x;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function applyAct(kind: ActCode, x: number): number {
  switch (kind) {
    case Act.none: return x;
    case Act.relu: return x > 0 ? x : 0;
    case Act.gelu: return 0.5 * x * (1 + erf(x * INV_SQRT2));
    case Act.geluTanh: return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case Act.silu: return x / (1 + Math.exp(-x));
    default: throw new Error(`unknown activation code ${kind}`);
  }
}

export function actGrad(kind: ActCode, x: number): number {
  switch (kind) {
    case Act.none: return 1;
    case Act.relu: return x > 0 ? 1 : 0;
    case Act.gelu: return 0.5 * (1 + erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case Act.geluTanh: {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      const du = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du;
    }
    case Act.silu: {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 + x * (1 - s));
    }
    default: throw new Error(`unknown activation code ${kind}`);
  }
}

export function actForward(kind: ActCode, x: FArray, y: FArray, len: number): void {
  for (let i = 0; i < len; i++) y[i] = applyAct(kind, x[i]);
}

export function actBackward(kind: ActCode, x: FArray, dy: FArray, dx: FArray, len: number): void {
  for (let i = 0; i < len; i++) dx[i] = dy[i] * actGrad(kind, x[i]);
}
