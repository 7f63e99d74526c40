// DDT's Euler sampler with the always-doubled CFG batch and encoder sharing (Wang et al., arXiv
// 2504.05741; official MCG-NJU/DDT src/diffusion/stateful_flow_matching/sampling.py EulerSampler
// and sharing_sampling.py). In DDT time (τ = 0 noise, model output ≈ x − ε):
//   grid g = linspace(0, 1 − last_step, N) ∪ {1}, then g ← g / (g + (1 − g)·s) (timeshift s; it is
//   diffactor's τ_s in diffactor time t = 1 − g: ddtGrid checks 1 − g' = shiftTime(1 − g, s))
//   each step i: the model on [x; x] with labels [null; y] (unconditional half FIRST, as the
//   authors), at τ = g_i on both halves, with the state z reused unless i is in the schedule;
//   v = v_u + w·(v_c − v_u) with w = cfg iff τ_lo < g_i < τ_hi (open interval), else w = 1;
//   x ← x + (g_{i+1} − g_i)·v  (the last step too: last_step_fn is Euler in the configs).
// Both CFG halves share one state (it is computed on the doubled batch). The guidance interval is
// given in diffactor time [low, high] (sample.guidance_low/high): τ_lo = 1 − high, τ_hi = 1 − low.
// The DP schedule's template run (8 fixed-seed noises and labels, full recompute, the same
// sampler) collects the doubled batch's states at every step (sharing.ts solves the DP).
// Not here: the schedules' algebra (sharing.ts), the model (model.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { tidy } from '../../tensor/tidy.ts';
import { noGrad } from '../../autograd/tape.ts';
import type { DDT } from './model.ts';
import { checkSchedule, cumulativeErrors, dpBudget, dpSchedule, reuseErrors, uniformSchedule } from './sharing.ts';

/** DDT's sampling settings (the ddt spec section's sampling fields). */
export interface DdtSampling {
  /** Which steps recompute the encoder: every r-th (uniform) or the DP's K = ⌊N/r⌋ steps. */
  schedule: 'uniform' | 'dp';
  /** r (state_refresh_rate); 1 = recompute every step (no sharing). */
  period: number;
  /** The grid's last step size (official config 0.04). */
  lastStep: number;
  /** Timestep shift s (official timeshift 1.0). */
  shift: number;
  /** Images in the DP's template run (official 8) and its seed (official 0). */
  templateImages: number;
  templateSeed: number;
}

export const DDT_SAMPLING_DEFAULTS: DdtSampling = { schedule: 'uniform', period: 1, lastStep: 0.04, shift: 1, templateImages: 8, templateSeed: 0 };

/** What the sampler reads of sample: steps, guidance scale and interval (diffactor time). */
export interface DdtSampleSettings { steps: number; cfg: number; guidance_low: number; guidance_high: number }

/** The N + 1 DDT times 0 = g_0 < … < g_N = 1. */
export function ddtGrid(steps: number, lastStep: number, shift: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`DDT sampler: sample.steps must be a positive integer, got ${steps}`);
  if (!(lastStep > 0 && lastStep <= 1)) throw new Error(`ddt.last_step must be in (0, 1], got ${lastStep}`);
  if (!(shift > 0)) throw new Error(`ddt.time_shift must be > 0, got ${shift}`);
  const last = steps === 1 ? 1 : lastStep; // official: a single step spans [0, 1]
  const g = new Float64Array(steps + 1);
  for (let i = 0; i < steps; i++) g[i] = steps === 1 ? 0 : ((1 - last) * i) / (steps - 1);
  g[steps] = 1;
  return g.map((v) => v / (v + (1 - v) * shift));
}

export interface DdtRun {
  /** (B, C, H, W) the samples (float64 state, returned in the noise's dtype). */
  x: Tensor;
  /** The doubled batch's state after each step ((2B)·T·D values each) when asked for. */
  states: Float32Array[];
  /** Encoder evaluations (steps that recomputed z). */
  encoderCalls: number;
}

/**
 * Integrate from noise (B, C, H, W) at τ = 0 to τ = 1 with labels y (B), recomputing the state
 * at the steps in `recompute` (a set of step indices; 0 must be in it).
 */
export function sampleDdt(model: DDT, noise: Tensor, y: ArrayLike<number>, s: DdtSampleSettings, sampling: DdtSampling, recompute: ReadonlySet<number>, opts: { keepStates?: boolean; onStep?: (i: number, n: number) => void } = {}): DdtRun {
  const N = s.steps, grid = ddtGrid(N, sampling.lastStep, sampling.shift);
  if (!recompute.has(0)) throw new Error('DDT sampler: step 0 must compute the encoder state');
  const B = noise.shape[0], shape = noise.shape, per = noise.size / B, dtype = noise.dtype;
  if (y.length !== B) throw new Error(`DDT sampler: ${y.length} labels for ${B} noises`);
  const nullClass = model.config.numClasses;
  const tauLo = 1 - s.guidance_high, tauHi = 1 - s.guidance_low;
  const y2 = new Float64Array(2 * B);
  y2.fill(nullClass, 0, B);
  y2.set(Array.from(y), B); // [null; y]: the unconditional half first
  const x = Float64Array.from(noise.data);
  const states: Float32Array[] = [];
  let state: Tensor | null = null, encoderCalls = 0;
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      const tau = grid[i], dt = grid[i + 1] - tau;
      const reuse = !recompute.has(i) && state !== null;
      const step = tidy(() => {
        const x2 = new Float64Array(2 * x.length);
        x2.set(x);
        x2.set(x, x.length);
        const o = model.forwardDDT(tensor(x2, [2 * B, ...shape.slice(1)], dtype), new Float64Array(2 * B).fill(tau), y2, { state: reuse ? state : null });
        return { out: Float64Array.from(o.out.data), state: o.state };
      });
      if (!reuse) encoderCalls++;
      state = step.state;
      if (opts.keepStates) states.push(Float32Array.from(state.data));
      const w = tau > tauLo && tau < tauHi ? s.cfg : 1;
      const o = step.out, half = B * per;
      for (let j = 0; j < half; j++) x[j] += dt * (o[j] + w * (o[half + j] - o[j]));
      opts.onStep?.(i + 1, N);
    }
  });
  return { x: tensor(x, shape, dtype), states, encoderCalls };
}

/** The DP schedule for this model's weights: the template run, then sharing.ts. */
export function solveDpSchedule(model: DDT, s: DdtSampleSettings, sampling: DdtSampling): { schedule: number[]; cost: number } {
  const c = model.config, n = sampling.templateImages;
  const rng = new Rng(sampling.templateSeed).child('ddt-dp-template');
  const noise = rng.child('noise').normal([n, c.inChannels, c.inputSize, c.inputSize]);
  const labels = rng.child('labels').randintArray(0, c.numClasses, n);
  const all = new Set(Array.from({ length: s.steps }, (_, i) => i));
  const run = sampleDdt(model, noise, labels, s, sampling, all, { keepStates: true });
  const tokens = 2 * n * (c.inputSize / c.patchSize) ** 2;
  const E = cumulativeErrors(reuseErrors(run.states, tokens, c.hiddenSize));
  return dpSchedule(E, dpBudget(s.steps, sampling.period));
}

/** The steps that recompute the state under these settings (uniform, or the DP's for this model). */
export function recomputeSteps(model: DDT, s: DdtSampleSettings, sampling: DdtSampling): number[] {
  if (sampling.period === 1) return uniformSchedule(s.steps, 1);
  const r = sampling.schedule === 'uniform' ? uniformSchedule(s.steps, sampling.period) : solveDpSchedule(model, s, sampling).schedule;
  checkSchedule(r, s.steps);
  return r;
}
