// The variance-exploding (VE / EDM) σ convention beside diffactor's flow time (t = 0 data, t = 1
// noise, x_t = (1 − t)·x + t·ε; convention.ts holds the flipped flow convention). EPG (Wang et al.,
// arXiv 2510.12586; official code github.com/AMAP-ML/EPG, rcm/rcm_denoiser.py, rcm/utils.py) trains
// and samples in it:
//   noising       x_σ = x + σ·ε, σ ∈ (0, ∞); the model predicts x0 (a denoiser D(x_σ, σ))
//   as flow time  x_σ / (1 + σ) = (1 − t)·x + t·ε with t = σ/(1 + σ)  (σ = t/(1 − t)): a VE point is
//                 a linear-path point scaled by 1 + σ, and the flow velocity ε − x of the denoiser is
//                 (x_t − D)/t at that point; the VE ODE derivative is dx_σ/dσ = (x_σ − D)/σ (= ε when D = x)
//   EDM           c_in(σ) = 1/√(σ² + σ_data²), σ_data 0.5 (Karras et al. 2022, arXiv 2206.00364);
//                 the time condition 1000·¼·ln σ = 250·ln σ (rcm_denoiser.py, rescale_t "cm")
//   Karras grid   σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i = 0..N−1, σ_0 the
//                 largest (80, 0.002, ρ 7); EPG multiplies every σ by the resolution shift H/64
//   curriculum    iCT's N(k) = min(s0·2^⌈k/K'⌉, s1) + 1, K' = ⌈K / log2(⌈s1/s0⌉ + 1)⌉ (Song & Dhariwal,
//                 arXiv 2310.14189, as methods-b §7 reads EPG's train.py), k the completed steps of K
// Not here: the networks and their losses (src/methods/epg), the flow samplers (odeSampler.ts).
import type { ModelFn } from './types.ts';
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { add, div, mul, sub } from '../autograd/ops/index.ts';

/** EDM's grid and data scale (Karras et al. 2022; EPG's RepresentationKarrasDenoiser defaults). */
export const EDM = { sigmaMin: 0.002, sigmaMax: 80, rho: 7, sigmaData: 0.5 } as const;

export interface KarrasGrid { sigmaMin: number; sigmaMax: number; rho: number }

/** EPG's resolution shift: every σ times H/64 (×0.5 at 32 px, ×4 at 256 px). */
export function resolutionShift(height: number): number {
  if (!(height > 0)) throw new Error(`resolutionShift: the image height must be > 0, got ${height}`);
  return height / 64;
}

/** The N Karras σ's, σ_0 = σ_max·shift down to σ_{N−1} = σ_min·shift (float64). N = 1: [σ_max·shift]. */
export function karrasSigmas(n: number, shift = 1, g: KarrasGrid = EDM): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`karrasSigmas: the number of σ's must be an integer ≥ 1, got ${n}`);
  if (!(g.sigmaMin > 0 && g.sigmaMax > g.sigmaMin && g.rho > 0)) throw new Error(`karrasSigmas: need 0 < sigmaMin < sigmaMax and rho > 0, got ${JSON.stringify(g)}`);
  if (!(shift > 0)) throw new Error(`karrasSigmas: shift must be > 0, got ${shift}`);
  const hi = g.sigmaMax ** (1 / g.rho), lo = g.sigmaMin ** (1 / g.rho);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = n === 1 ? 0 : i / (n - 1);
    out[i] = (hi + r * (lo - hi)) ** g.rho * shift;
  }
  if (n > 1) { out[0] = g.sigmaMax * shift; out[n - 1] = g.sigmaMin * shift; } // exact endpoints
  return out;
}

/**
 * iCT's discretisation curriculum: the number of grid points N(k) after k of K steps,
 * min(s0·2^⌈k/K'⌉, s1) + 1 with K' = ⌈K / log2(⌈s1/s0⌉ + 1)⌉ (EPG: s0 20, s1 1280).
 */
export function curriculumPoints(k: number, K: number, s0: number, s1: number): number {
  if (!Number.isInteger(K) || K < 1) throw new Error(`curriculumPoints: total steps K must be an integer ≥ 1, got ${K}`);
  if (!Number.isInteger(k) || k < 0 || k > K) throw new Error(`curriculumPoints: k must be an integer in [0, ${K}], got ${k}`);
  if (!Number.isInteger(s0) || !Number.isInteger(s1) || s0 < 1 || s1 < s0) throw new Error(`curriculumPoints: need integers 1 ≤ s0 ≤ s1, got s0 ${s0}, s1 ${s1}`);
  const kPrime = Math.ceil(K / Math.log2(Math.ceil(s1 / s0) + 1));
  return Math.min(s0 * 2 ** Math.ceil(k / kPrime), s1) + 1;
}

/** EDM's input scale c_in(σ) = 1/√(σ² + σ_data²). */
export function edmCIn(sigma: number, sigmaData: number = EDM.sigmaData): number {
  return 1 / Math.sqrt(sigma * sigma + sigmaData * sigmaData);
}

/** EPG's time condition 250·ln σ (rcm_denoiser.py: 1000·0.25·log(σ + 1e-44)). */
export function sigmaCondition(sigma: number): number {
  return 250 * Math.log(sigma + 1e-44);
}

/** The flow time of noise level σ: t = σ/(1 + σ) ∈ (0, 1). */
export function sigmaToFlowTime(sigma: number): number {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new Error(`sigmaToFlowTime: σ must be finite and ≥ 0, got ${sigma}`);
  return sigma / (1 + sigma);
}

/** The noise level of flow time t ∈ [0, 1): σ = t/(1 − t). */
export function flowTimeToSigma(t: number): number {
  if (!(t >= 0 && t < 1)) throw new Error(`flowTimeToSigma: t must be in [0, 1), got ${t}`);
  return t / (1 - t);
}

/** x_σ = x + σ_b·ε (σ per sample, (B, ...) tensors; differentiable in x and ε). */
export function veNoise(x: Tensor, eps: Tensor, sigmas: ArrayLike<number>): Tensor {
  return add(x, mul(eps, perSample(sigmas, eps)));
}

function perSample(v: ArrayLike<number>, like: Tensor): Tensor {
  if (v.length !== like.shape[0]) throw new Error(`ve: ${v.length} values for a batch of ${like.shape[0]}`);
  return tensor(Array.from(v), [v.length, ...like.shape.slice(1).map(() => 1)], like.dtype);
}

/** A VE point as the linear path sees it: x_t = x_σ/(1 + σ) at t = σ/(1 + σ), per sample. */
export function veToFlow(xSigma: Tensor, sigmas: ArrayLike<number>): { xt: Tensor; t: Float64Array } {
  const t = Float64Array.from(sigmas, sigmaToFlowTime);
  return { xt: mul(xSigma, perSample(Array.from(sigmas, (s) => 1 / (1 + s)), xSigma)), t };
}

/** A linear-path point as VE: x_σ = x_t/(1 − t) at σ = t/(1 − t), per sample. */
export function flowToVe(xt: Tensor, t: ArrayLike<number>): { xSigma: Tensor; sigmas: Float64Array } {
  const sigmas = Float64Array.from(t, flowTimeToSigma);
  return { xSigma: mul(xt, perSample(Array.from(t, (v) => 1 / (1 - v)), xt)), sigmas };
}

/** A VE denoiser D(x_σ, σ, y) → x0, by σ per sample. */
export type Denoiser = (xSigma: Tensor, sigmas: Float64Array, y: Tensor) => Tensor;

/**
 * The flow-velocity model of a VE denoiser: at (x_t, t), v = (x_t − D(x_t/(1 − t), t/(1 − t)))/t
 * (the linear path's ε − x with ε, x read through D), so diffactor's flow samplers can integrate
 * it; t must be in (0, 1).
 */
export function denoiserAsFlowModel(d: Denoiser): ModelFn {
  return (xt, t, y) => {
    for (const v of t.data) if (!(v > 0 && v < 1)) throw new Error(`denoiserAsFlowModel: flow times must be in (0, 1), got ${v}`);
    const { xSigma, sigmas } = flowToVe(xt, t.data);
    return div(sub(xt, d(xSigma, sigmas, y)), perSample(Array.from(t.data), xt));
  };
}

/** The nearest grid index of σ on a decreasing grid, clamped to [0, maxIndex]. */
export function nearestGridIndex(sigma: number, grid: Float64Array, maxIndex = grid.length - 1): number {
  let best = 0, bestD = Infinity;
  for (let i = 0; i <= maxIndex; i++) {
    const d = Math.abs(grid[i] - sigma);
    if (d < bestD) { bestD = d; best = i; }
  }
  return best;
}
