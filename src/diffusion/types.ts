// The two shapes every diffusion function agrees on: a model is a plain function (no Module here)
// and a sampler reports progress through an optional callback. Not here: any model code.
import type { Tensor } from '../tensor/tensor.ts';

/**
 * A denoiser: x (B, ...), t (B) and labels y (B) -> a prediction shaped like x, or (B, 2C, ...)
 * for a learned-variance ε-model (ε in the first C channels). What t means is the sampler's
 * business: continuous t in [0, 1] (t=0 data, t=1 noise) for flow samplers, the original DDPM
 * timestep index for DDPM/DDIM.
 */
export type ModelFn = (x: Tensor, t: Tensor, y: Tensor) => Tensor;

/** Called after each sampler step with the number of steps done (1..total). */
export type ProgressFn = (step: number, total: number) => void;
