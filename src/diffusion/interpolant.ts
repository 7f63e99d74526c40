// Interpolants x_t = α(t)·x + σ(t)·ε in diffactor's one time convention (t=0 data, t=1 noise, as
// REPA/SiT): linear (α=1−t, σ=t) and cosine/VP (α=cos(πt/2), σ=sin(πt/2)), with the velocity
// target dα·x + dσ·ε and the conversions velocity -> score / x̂ / ε̂ used by the samplers.
// Tensor functions are differentiable in x, ε and v (REPA-E backpropagates through x_t); t is a
// per-sample constant. Not here: time sampling (timeSampling.ts), other repos' conventions
// (convention.ts), DDPM's discrete schedule (ddpmSchedule.ts).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { add, mul, sub } from '../autograd/ops/index.ts';
import { fmtShape } from '../tensor/shape.ts';

export interface Interpolant {
  readonly name: 'linear' | 'cosine';
  alpha(t: number): number;
  sigma(t: number): number;
  dAlpha(t: number): number;
  dSigma(t: number): number;
  /** The t at which σ(t)/α(t) = r (r ≥ 0): maps REPA's lognormal σ-ratio to a time. */
  timeOfRatio(r: number): number;
}

export const linear: Interpolant = {
  name: 'linear',
  alpha: (t) => 1 - t,
  sigma: (t) => t,
  dAlpha: () => -1,
  dSigma: () => 1,
  timeOfRatio: (r) => r / (1 + r),
};

const H = Math.PI / 2;
export const cosine: Interpolant = {
  name: 'cosine',
  alpha: (t) => Math.cos(H * t),
  sigma: (t) => Math.sin(H * t),
  dAlpha: (t) => -H * Math.sin(H * t),
  dSigma: (t) => H * Math.cos(H * t),
  timeOfRatio: (r) => Math.atan(r) / H,
};

export function interpolantByName(name: string): Interpolant {
  if (name === 'linear') return linear;
  if (name === 'cosine') return cosine;
  throw new Error(`unknown interpolant '${name}' (linear | cosine)`);
}

/** Per-sample times as numbers: a (B) tensor, an array, or one number for the whole batch. */
export type Times = Tensor | ArrayLike<number> | number;

function timesOf(t: Times, batch: number): ArrayLike<number> {
  if (typeof t === 'number') return new Float64Array(batch).fill(t);
  const v = 'data' in t && 'shape' in t ? (t as Tensor).data : (t as ArrayLike<number>);
  if (v.length !== batch) throw new Error(`interpolant: ${v.length} times for a batch of ${batch}`);
  return v;
}

/** A (B, 1, ..., 1) tensor of f(t_b), broadcastable against `like` (B, ...). */
function perSample(like: Tensor, t: Times, f: (t: number) => number): Tensor {
  if (like.ndim < 1) throw new Error(`interpolant: need a batch dim, got ${fmtShape(like.shape)}`);
  const b = like.shape[0];
  const ts = timesOf(t, b);
  const c = new Float64Array(b);
  for (let i = 0; i < b; i++) c[i] = f(ts[i]);
  return tensor(c, [b, ...like.shape.slice(1).map(() => 1)], like.dtype);
}

/** x_t = α x + σ ε. */
export function interpolate(p: Interpolant, x: Tensor, eps: Tensor, t: Times): Tensor {
  return add(mul(x, perSample(x, t, p.alpha)), mul(eps, perSample(x, t, p.sigma)));
}

/** The velocity target d x_t / dt = α' x + σ' ε (linear: ε − x). */
export function velocityTarget(p: Interpolant, x: Tensor, eps: Tensor, t: Times): Tensor {
  return add(mul(x, perSample(x, t, p.dAlpha)), mul(eps, perSample(x, t, p.dSigma)));
}

/**
 * Score from velocity (REPA samplers.py): s = ((α/α')·v − x_t) / (σ² − (α/α')·σ'·σ).
 * Linear: s = −((1−t)·v + x_t)/t. Undefined where the denominator is 0 (linear at t=0).
 */
export function scoreFromVelocity(p: Interpolant, v: Tensor, xt: Tensor, t: Times): Tensor {
  return sub(mul(v, perSample(xt, t, (s) => scoreCoefs(p, s)[0])), mul(xt, perSample(xt, t, (s) => scoreCoefs(p, s)[1])));
}

/** Scalar coefficients [a, b] with score = a·v − b·x_t at time t. */
export function scoreCoefs(p: Interpolant, t: number): [number, number] {
  const ratio = p.alpha(t) / p.dAlpha(t);
  const denom = p.sigma(t) ** 2 - ratio * p.dSigma(t) * p.sigma(t);
  return [ratio / denom, 1 / denom];
}

/** x̂ = (σ' x_t − σ v) / (α σ' − σ α'): the data the velocity points at (linear: x_t − t v). */
export function x0FromVelocity(p: Interpolant, v: Tensor, xt: Tensor, t: Times): Tensor {
  const det = (s: number) => p.alpha(s) * p.dSigma(s) - p.sigma(s) * p.dAlpha(s);
  return sub(mul(xt, perSample(xt, t, (s) => p.dSigma(s) / det(s))), mul(v, perSample(xt, t, (s) => p.sigma(s) / det(s))));
}

/** ε̂ = (α v − α' x_t) / (α σ' − σ α'): the noise the velocity points away from (linear: x_t + (1−t) v). */
export function epsFromVelocity(p: Interpolant, v: Tensor, xt: Tensor, t: Times): Tensor {
  const det = (s: number) => p.alpha(s) * p.dSigma(s) - p.sigma(s) * p.dAlpha(s);
  return sub(mul(v, perSample(xt, t, (s) => p.alpha(s) / det(s))), mul(xt, perSample(xt, t, (s) => p.dAlpha(s) / det(s))));
}
