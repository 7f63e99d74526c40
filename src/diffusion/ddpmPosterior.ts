// The model side of one DDPM step at schedule index t, per element in float64 (improved-DDPM's
// p_mean_variance for ε-prediction): x̂_0 from ε̂, the posterior mean given x̂_0, and the model
// log-variance (learned range between log β̃_t and log β_t, or fixed small / large). Shared by the
// hybrid loss and the DDPM/DDIM samplers. Not here: randomness, tensors, loops over steps.
import type { DdpmSchedule } from './ddpmSchedule.ts';

/**
 * How the reverse variance is chosen: 'learned' reads a second output half v ∈ [−1, 1]
 * (DiT's learn_sigma), 'fixedSmall' is β̃_t, 'fixedLarge' is β_t (β̃_1 at t = 0, as improved-DDPM).
 */
export type DdpmVariance = 'learned' | 'fixedSmall' | 'fixedLarge';

/** x̂_0 = √(1/ᾱ_t)·x_t − √(1/ᾱ_t − 1)·ε̂. */
export function predictX0(s: DdpmSchedule, t: number, xt: number, eps: number): number {
  return s.sqrtRecipAlphasCumprod[t] * xt - s.sqrtRecipm1AlphasCumprod[t] * eps;
}

/** ε from x_t and x̂_0 (inverse of predictX0). */
export function predictEps(s: DdpmSchedule, t: number, xt: number, x0: number): number {
  return (s.sqrtRecipAlphasCumprod[t] * xt - x0) / s.sqrtRecipm1AlphasCumprod[t];
}

/** Mean of q(x_{t−1} | x_t, x_0). */
export function posteriorMean(s: DdpmSchedule, t: number, x0: number, xt: number): number {
  return s.posteriorMeanCoef1[t] * x0 + s.posteriorMeanCoef2[t] * xt;
}

/** Model log-variance at t; v is the learned output in [−1, 1] (ignored unless 'learned'). */
export function modelLogVariance(s: DdpmSchedule, t: number, kind: DdpmVariance, v = 0): number {
  if (kind === 'learned') {
    const frac = (v + 1) / 2;
    return frac * s.logBetas[t] + (1 - frac) * s.posteriorLogVarianceClipped[t];
  }
  if (kind === 'fixedSmall') return s.posteriorLogVarianceClipped[t];
  return t === 0 ? s.posteriorLogVarianceClipped[1] : s.logBetas[t];
}

/** ∂ modelLogVariance / ∂ v for the learned range. */
export function modelLogVarianceDv(s: DdpmSchedule, t: number): number {
  return 0.5 * (s.logBetas[t] - s.posteriorLogVarianceClipped[t]);
}
