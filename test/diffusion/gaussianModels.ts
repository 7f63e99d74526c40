// Test helper: exact predictors for data x ~ N(μ, diag s²) (per-dimension Gaussian), so samplers can
// be checked against closed forms. x has shape (B, D); μ and s have length D.
//  - flow: x_t = α x + σ ε is Gaussian, E[v | x_t] = α'μ + (α'α s² + σ'σ)/(α² s² + σ²)·(x_t − αμ);
//    the ODE maps x_1 = z to x_0 = μ + s·z exactly (x_t = αμ + √V_t·z along the path).
//  - DDPM: x_k = √ᾱ x + √(1−ᾱ) ε, E[ε | x_k] = √(1−ᾱ)/(ᾱ s² + 1 − ᾱ)·(x_k − √ᾱ μ); the exact reverse
//    kernel q(x_{i−1} | x_i) has variance β̃_i + c1_i²·Var(x | x_i) (all jointly Gaussian).
// Also a recorder that counts model calls and keeps their inputs.
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import type { Interpolant } from '../../src/diffusion/interpolant.ts';
import type { DdpmSchedule } from '../../src/diffusion/ddpmSchedule.ts';
import type { ModelFn } from '../../src/diffusion/types.ts';

export interface Gaussian { mu: number[]; s: number[] }

export function flowVelocity(p: Interpolant, g: Gaussian): ModelFn {
  return (x, t) => {
    const [B, D] = x.shape;
    const out = new Float64Array(x.size);
    for (let b = 0; b < B; b++) {
      const tb = t.data[b], a = p.alpha(tb), sg = p.sigma(tb), da = p.dAlpha(tb), ds = p.dSigma(tb);
      for (let d = 0; d < D; d++) {
        const s2 = g.s[d] * g.s[d], m = g.mu[d];
        out[b * D + d] = da * m + ((da * a * s2 + ds * sg) / (a * a * s2 + sg * sg)) * (x.data[b * D + d] - a * m);
      }
    }
    return tensor(out, x.shape, x.dtype);
  };
}

/** x_0 = μ + s·z for the ODE started at x_1 = z. */
export function exactOdeEnd(g: Gaussian, z: ArrayLike<number>, B: number): Float64Array {
  const D = g.mu.length, out = new Float64Array(B * D);
  for (let i = 0; i < out.length; i++) out[i] = g.mu[i % D] + g.s[i % D] * z[i];
  return out;
}

/**
 * ε-predictor on the BASE schedule (the model receives original timesteps). With `learnedFor`, it
 * also returns the learned-variance half v that gives the exact reverse variance of that
 * (respaced) schedule: output (B, 2D).
 */
export function ddpmEps(base: DdpmSchedule, g: Gaussian, learnedFor?: DdpmSchedule): ModelFn {
  return (x, t) => {
    const [B, D] = x.shape;
    const per = learnedFor ? 2 * D : D;
    const out = new Float64Array(B * per);
    for (let b = 0; b < B; b++) {
      const k = t.data[b], ab = base.alphasCumprod[k];
      const i = learnedFor ? learnedFor.timestepMap.indexOf(k) : -1;
      if (learnedFor && i < 0) throw new Error(`ddpmEps: timestep ${k} not in the respaced schedule`);
      for (let d = 0; d < D; d++) {
        const s2 = g.s[d] * g.s[d], V = ab * s2 + 1 - ab;
        out[b * per + d] = (Math.sqrt(1 - ab) / V) * (x.data[b * D + d] - Math.sqrt(ab) * g.mu[d]);
        if (learnedFor) {
          const S = learnedFor, varX = (s2 * (1 - ab)) / V;
          const exactVar = S.posteriorVariance[i] + S.posteriorMeanCoef1[i] ** 2 * varX;
          const lo = S.posteriorLogVarianceClipped[i], hi = S.logBetas[i];
          out[b * per + D + d] = i === 0 ? 0 : (2 * (Math.log(exactVar) - lo)) / (hi - lo) - 1;
        }
      }
    }
    return tensor(out, [B, per], x.dtype);
  };
}

export interface Call { batch: number; t: number[]; y: number[]; x: Float64Array }

/** Wrap a model to record every call (batch size, times, labels, input). */
export function recording(model: ModelFn): { model: ModelFn; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    model: (x: Tensor, t: Tensor, y: Tensor) => {
      calls.push({ batch: x.shape[0], t: Array.from(t.data), y: Array.from(y.data), x: Float64Array.from(x.data) });
      return model(x, t, y);
    },
  };
}

/** Per-dimension sample mean and std over the batch of a (B, D) array. */
export function moments(x: ArrayLike<number>, B: number, D: number): { mean: number[]; std: number[] } {
  const mean = new Array<number>(D).fill(0), std = new Array<number>(D).fill(0);
  for (let i = 0; i < B * D; i++) mean[i % D] += x[i] / B;
  for (let i = 0; i < B * D; i++) std[i % D] += (x[i] - mean[i % D]) ** 2 / (B - 1);
  return { mean, std: std.map(Math.sqrt) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
