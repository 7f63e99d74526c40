// The learning-rate schedule and the flow times of a step, as the spec's train and diffusion
// sections name them; shared by both engines.
import { constantSchedule, cosineSchedule, linearWarmup, type Schedule } from '../optim/index.ts';
import { sampleTimes, type Interpolant } from '../diffusion/index.ts';
import type { Rng } from '../tensor/rng.ts';
import type { RunSpec } from '../spec/schema.ts';

export function scheduleFor(spec: RunSpec): Schedule {
  const t = spec.train;
  // A short run (--steps below the warm-up) warms up over the whole run rather than failing.
  const warmup = Math.min(t.warmup_steps, t.steps);
  if (t.schedule === 'cosine') return cosineSchedule({ totalSteps: t.steps, warmupSteps: warmup, minFactor: t.min_lr_ratio });
  return warmup > 0 ? linearWarmup(warmup) : constantSchedule();
}

/** One batch's flow times as the spec's diffusion section names them (one draw from `rng`). */
export function flowTimes(spec: RunSpec, rng: Rng, batch: number, path: Interpolant): Float64Array {
  const d = spec.diffusion;
  return sampleTimes(rng, batch, d.time_sampling === 'uniform'
    ? { kind: 'uniform' }
    : { kind: 'logitNormal', mean: d.logit_normal_mean, std: d.logit_normal_std }, path);
}

