// Scalar activation functions and their derivatives: the reference for the gemm epilogue and for
// the elementwise activation kernels. erf is computed to near float64 precision (series near 0,
// continued fraction in the tails) so that float64 gradchecks of exact GELU are meaningful.
import { Act, type ActCode, type FArray } from '../types.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erfc(y) for y >= 0 without cancellation: 1 - series below 2.5, continued fraction above. */
function erfcPos(y: number): number {
  if (y < 2.5) return 1 - erfSeries(y);
  if (y > 27) return 0;
  // erfc(y) = exp(-y^2)/sqrt(pi) * 1/(y + 1/2/(y + 1/(y + 3/2/(y + 2/(y + ...)))))
  let f = y;
  for (let n = 60; n >= 1; n--) f = y + n / 2 / f;
  return Math.exp(-y * y) / Math.sqrt(Math.PI) / f;
}

/** erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), for |x| < 2.5. */
function erfSeries(x: number): number {
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

/** erf to ~1e-15 relative: Taylor series near 0, erfc continued fraction in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  return ax < 2.5 ? erfSeries(x) : Math.sign(x) * (1 - erfcPos(ax));
}

/** erfc(x) = 1 - erf(x), accurate in both tails (GELU's negative tail needs it). */
export function erfc(x: number): number {
  return x >= 0 ? erfcPos(x) : 2 - erfcPos(-x);
}

export function applyAct(kind: ActCode, x: number): number {
  switch (kind) {
    case Act.none: return x;
    case Act.relu: return x > 0 ? x : 0;
    case Act.gelu: return 0.5 * x * erfc(-x * INV_SQRT2); // = x·Φ(x), no cancellation for x ≪ 0
    case Act.geluTanh: return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case Act.silu: return x / (1 + Math.exp(-x));
    default: throw new Error(`unknown activation code ${kind}`);
  }
}

export function actGrad(kind: ActCode, x: number): number {
  switch (kind) {
    case Act.none: return 1;
    case Act.relu: return x > 0 ? 1 : 0;
    case Act.gelu: return 0.5 * erfc(-x * INV_SQRT2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
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
