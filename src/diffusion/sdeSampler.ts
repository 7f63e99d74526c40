// Euler–Maruyama sampler for velocity models (REPA samplers.py euler_maruyama_sampler): the
// reverse SDE dx = [v − ½·w(t)·s(x, t)] dt + √w(t) dW̄ with SiT's diffusion w(t) = 2t and the
// score s from the velocity (interpolant.ts). Grid linspace(1, tLast, N) then 0; steps 0..N−2 add
// noise, the last step tLast -> 0 is the noiseless mean step, so exactly N model evaluations.
// Guidance combines the velocity (the drift is affine in v with x-terms that cancel, so this
// equals REPA's guiding of the drift). Noise comes from the Rng passed in. Not here: the ODE.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { noGrad } from '../autograd/tape.ts';
import { evalModel, guidanceActive, type Guidance } from './guidance.ts';
import { linear, scoreCoefs, type Interpolant } from './interpolant.ts';
import type { ModelFn, ProgressFn } from './types.ts';

export interface SdeOptions {
  steps: number;
  rng: Rng;
  interpolant?: Interpolant;
  /** Last time the model sees before the final mean step (REPA: 0.04). */
  tLast?: number;
  guidance?: Guidance;
  onStep?: ProgressFn;
}

/** linspace(1, tLast, N) followed by 0: N + 1 times. */
export function sdeGrid(steps: number, tLast = 0.04): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`sdeGrid: steps must be a positive integer, got ${steps}`);
  if (!(tLast > 0 && tLast < 1)) throw new Error(`sdeGrid: tLast must be in (0, 1), got ${tLast}`);
  const g = new Float64Array(steps + 1);
  // torch.linspace(1, tLast, 1) is [1]
  for (let i = 0; i < steps; i++) g[i] = steps === 1 ? 1 : 1 + ((tLast - 1) * i) / (steps - 1);
  if (steps > 1) g[steps - 1] = tLast;
  g[steps] = 0;
  return g;
}

/** Diffusion coefficient w(t) = 2t (REPA compute_diffusion, for every path). */
export const sdeDiffusion = (t: number): number => 2 * t;

export function sampleSde(model: ModelFn, noise: Tensor, y: Tensor, opts: SdeOptions): Tensor {
  const p = opts.interpolant ?? linear, N = opts.steps, grid = sdeGrid(N, opts.tLast);
  const shape = noise.shape, dtype = noise.dtype, g = opts.guidance;
  const x = Float64Array.from(noise.data);
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      const t = grid[i], dt = grid[i + 1] - t, w = sdeDiffusion(t);
      const last = i === N - 1;
      const xi = last ? null : opts.rng.normalArray(x.length); // drawn before the model call, as REPA
      const { out: v } = evalModel(model, x, shape, t, y, dtype, g, guidanceActive(g, t));
      if (v.length !== x.length) throw new Error(`sampleSde: velocity has ${v.length} values for a state of ${x.length}`);
      const [a, b] = scoreCoefs(p, t); // s = a·v − b·x
      const noiseScale = Math.sqrt(w) * Math.sqrt(Math.abs(dt));
      for (let j = 0; j < x.length; j++) {
        const drift = v[j] - 0.5 * w * (a * v[j] - b * x[j]);
        x[j] += drift * dt + (xi ? noiseScale * xi[j] : 0);
      }
      opts.onStep?.(i + 1, N);
    }
  });
  return tensor(x, shape, dtype);
}
