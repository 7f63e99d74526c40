// Learning-rate schedules as pure functions `step -> factor`, where step is the number of
// optimiser steps already taken (0 for the first update, as torch's LambdaLR calls its lambda) and
// the factor multiplies each parameter group's base lr: `opt.step(schedule(step))`.
// Warm-up ramps linearly to 1 and reaches it on the LAST warm-up step, so no update runs at lr 0:
//   factor(s) = (s + 1) / warmupSteps for s < warmupSteps.
// (HuggingFace's get_*_schedule_with_warmup use s / warmupSteps, whose first update is wasted.)
// Not here: step decay, restarts, schedules keyed on epochs.

export type Schedule = (step: number) => number;

function checkSteps(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`schedule: ${what} must be a non-negative integer, got ${n}`);
}

function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step must be a non-negative integer, got ${step}`);
}

/** factor 1 always (SiT/REPA train at a constant lr). */
export function constantSchedule(): Schedule {
  return (step) => { checkStep(step); return 1; };
}

/** Linear warm-up over warmupSteps steps, then constant 1. warmupSteps 0 is constant. */
export function linearWarmup(warmupSteps: number): Schedule {
  checkSteps('warmupSteps', warmupSteps);
  return (step) => {
    checkStep(step);
    return step < warmupSteps ? (step + 1) / warmupSteps : 1;
  };
}

export interface CosineOptions {
  /** Step at which the factor reaches minFactor and stays there. */
  totalSteps: number;
  /** Linear warm-up steps before the cosine (default 0). */
  warmupSteps?: number;
  /** Final factor, the lr floor as a fraction of the base lr (default 0). */
  minFactor?: number;
}

/**
 * Linear warm-up, then half a cosine from 1 at step warmupSteps to minFactor at step totalSteps:
 *   factor(s) = minFactor + (1 - minFactor) * (1 + cos(pi * (s - W) / (T - W))) / 2,
 * and minFactor for s >= totalSteps.
 */
export function cosineSchedule({ totalSteps, warmupSteps = 0, minFactor = 0 }: CosineOptions): Schedule {
  checkSteps('totalSteps', totalSteps);
  checkSteps('warmupSteps', warmupSteps);
  if (warmupSteps > totalSteps) throw new Error(`schedule: warmupSteps ${warmupSteps} exceeds totalSteps ${totalSteps}`);
  if (!(minFactor >= 0 && minFactor <= 1)) throw new Error(`schedule: minFactor must be in [0, 1], got ${minFactor}`);
  const warm = linearWarmup(warmupSteps);
  return (step) => {
    checkStep(step);
    if (step < warmupSteps) return warm(step);
    if (step >= totalSteps) return minFactor;
    const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
    return minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/** The lr itself: base lr times the schedule's factor. */
export function scaled(baseLr: number, schedule: Schedule): Schedule {
  return (step) => baseLr * schedule(step);
}
