// Training-time distributions in diffactor's convention (t=0 data, t=1 noise): uniform U(0,1)
// and REPA's `lognormal` (n ~ N(mean, std), σ/α = eⁿ, so t = sigmoid(n) on the linear path and
// (2/π)·atan(eⁿ) on the cosine one), the timestep shift τ_s of timestep shift (RAE, SVG and DDT's official code) (RAE, SVG, DDT's
// sampling grid) and DDPM's integer timesteps. All randomness comes from the Rng passed in.
// Not here: sampler time grids (odeSampler.ts, sdeSampler.ts build their own).
import type { Rng } from '../tensor/rng.ts';
import { linear, type Interpolant } from './interpolant.ts';

/** t ~ U(0,1) per sample (the Rng's uniforms never hit 0 or 1 exactly). */
export function uniformTimes(rng: Rng, n: number): Float64Array {
  return rng.uniformArray(n);
}

export interface LogitNormalOptions { mean?: number; std?: number; interpolant?: Interpolant }

/** REPA's `lognormal` weighting: n ~ N(mean, std), t = the time where σ/α = eⁿ. */
export function logitNormalTimes(rng: Rng, n: number, opts: LogitNormalOptions = {}): Float64Array {
  const p = opts.interpolant ?? linear;
  const z = rng.normalArray(n, opts.mean ?? 0, opts.std ?? 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // sigmoid written per sign so neither tail overflows (eⁿ/(1+eⁿ) is NaN for n > 709)
    out[i] = p === linear ? (z[i] >= 0 ? 1 / (1 + Math.exp(-z[i])) : Math.exp(z[i]) / (1 + Math.exp(z[i]))) : p.timeOfRatio(Math.exp(z[i]));
  }
  return out;
}

/**
 * τ_s(t) = s·t / (1 + (s−1)·t), s > 0. In our convention (t=1 noise) s > 1 moves mass toward
 * noise. τ_1 = id, τ_s fixes 0 and 1, is increasing, and τ_{1/s} is its inverse.
 */
export function shiftTime(t: number, s: number): number {
  if (!(s > 0)) throw new Error(`shiftTime: shift must be > 0, got ${s}`);
  return (s * t) / (1 + (s - 1) * t);
}

export function shiftTimes(ts: ArrayLike<number>, s: number): Float64Array {
  const out = new Float64Array(ts.length);
  for (let i = 0; i < ts.length; i++) out[i] = shiftTime(ts[i], s);
  return out;
}

/** RAE's dimension-dependent shift s = √(m / mBase), m = tokens × channels of the latent. */
export function resolutionShift(m: number, mBase: number): number {
  if (!(m > 0 && mBase > 0)) throw new Error(`resolutionShift: need m, mBase > 0, got ${m}, ${mBase}`);
  return Math.sqrt(m / mBase);
}

export type TimeSampling =
  | { kind: 'uniform'; shift?: number }
  | { kind: 'logitNormal'; mean?: number; std?: number; shift?: number };

/** Times for one batch as a run spec names them; the shift (if any) is applied after sampling (RAE). */
export function sampleTimes(rng: Rng, n: number, spec: TimeSampling, interpolant: Interpolant = linear): Float64Array {
  const t = spec.kind === 'uniform'
    ? uniformTimes(rng, n)
    : logitNormalTimes(rng, n, { mean: spec.mean, std: spec.std, interpolant });
  return spec.shift === undefined || spec.shift === 1 ? t : shiftTimes(t, spec.shift);
}

/** DDPM training timesteps: integers uniform in [0, T) (DiT: torch.randint(0, T)). */
export function uniformTimesteps(rng: Rng, n: number, T: number): Int32Array {
  return rng.randintArray(0, T, n);
}
