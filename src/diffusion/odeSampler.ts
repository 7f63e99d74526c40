// Euler and Heun ODE samplers for velocity models (REPA samplers.py euler_sampler), from noise at
// t = 1 to data at t = 0 on the grid t_i = linspace(1, 0, N+1) (optionally shifted, τ_s(t_i), as
// RAE/DDT do). The model is never evaluated at t = 0; Heun averages with the slope at t_{i+1} on
// every step but the last, so N steps cost 2N − 1 evaluations. Guidance for both evaluations of
// a step is decided by t_i (REPA). The state is float64 throughout. Not here: the SDE sampler.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { noGrad } from '../autograd/tape.ts';
import { evalModel, guidanceActive, type Guidance } from './guidance.ts';
import { shiftTime } from './timeSampling.ts';
import type { ModelFn, ProgressFn } from './types.ts';

export interface OdeOptions {
  steps: number;
  heun?: boolean;
  /** Timestep shift s applied to the grid (τ_s(t_i)); 1 or undefined: the plain linspace. */
  shift?: number;
  guidance?: Guidance;
  onStep?: ProgressFn;
}

/** The N+1 times 1 = t_0 > ... > t_N = 0. */
export function odeGrid(steps: number, shift = 1): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`odeGrid: steps must be a positive integer, got ${steps}`);
  const g = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) g[i] = shiftTime(1 - i / steps, shift);
  g[0] = 1;
  g[steps] = 0;
  return g;
}

/** Integrate dx/dt = v(x, t, y) from x_1 = noise to t = 0. Returns x_0 in noise's dtype. */
export function sampleOde(model: ModelFn, noise: Tensor, y: Tensor, opts: OdeOptions): Tensor {
  const grid = odeGrid(opts.steps, opts.shift);
  const N = opts.steps, shape = noise.shape, dtype = noise.dtype, g = opts.guidance;
  const x = Float64Array.from(noise.data);
  const next = new Float64Array(x.length);
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      const t = grid[i], tn = grid[i + 1], dt = tn - t;
      const guided = guidanceActive(g, t);
      const d = velocity(model, x, shape, t, y, dtype, g, guided);
      for (let j = 0; j < x.length; j++) next[j] = x[j] + dt * d[j];
      if (opts.heun && i < N - 1) {
        const d2 = velocity(model, next, shape, tn, y, dtype, g, guided);
        for (let j = 0; j < x.length; j++) x[j] += dt * 0.5 * (d[j] + d2[j]);
      } else {
        x.set(next);
      }
      opts.onStep?.(i + 1, N);
    }
  });
  return tensor(x, shape, dtype);
}

function velocity(
  model: ModelFn, x: Float64Array, shape: readonly number[], t: number, y: Tensor,
  dtype: Tensor['dtype'], g: Guidance | undefined, guided: boolean,
): Float64Array {
  const { out } = evalModel(model, x, shape, t, y, dtype, g, guided);
  if (out.length !== x.length) throw new Error(`sampleOde: velocity has ${out.length} values for a state of ${x.length}`);
  return out;
}
