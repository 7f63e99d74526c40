// The expected duration a `train` prints near its start (issue 19), for both engines, fresh or
// resumed. The measurement is the run's own first steps, timed on the engine's training clock:
// nothing extra is computed, so no random stream, weight or data position can differ from a run
// that prints nothing (test/run/estimate.test.ts compares the checkpoints byte for byte). The first
// step after a (re)start carries one-off costs (kernels warming, buffers allocated, workers
// spinning up), so when the run has enough steps it is left out: the rate is that of the next
// MEASURED steps, and the estimate is printed after step start + 1 + MEASURED.
import { formatDuration } from '../progress.ts';
import { modelCallsPerSample } from '../build/draw.ts';
import type { RunSpec } from '../spec/schema.ts';

/** Steps timed after the first one. */
export const MEASURED = 3;

export interface EstimateContext {
  /** The step the run (re)started at and its training time then. */
  startStep: number;
  startWall: number;
  total: number;
  batchSize: number;
  /** The end-of-run grid: images drawn and the spec's sampler (null: no grid). */
  grid: { images: number; sample: RunSpec['sample'] } | null;
}

/**
 * The seconds the end-of-run grid takes, roughly: a training step is a forward and a backward of
 * `batchSize` images (about three forwards' worth); the grid is NFE forwards of its images (twice
 * the images under classifier-free guidance).
 */
export function gridSeconds(secondsPerStep: number, batchSize: number, grid: NonNullable<EstimateContext['grid']>): number {
  const s = grid.sample;
  const forwards = grid.images * modelCallsPerSample(s.sampler, s.steps) * (s.cfg > 1 ? 2 : 1);
  return (secondsPerStep / (3 * batchSize)) * forwards;
}

export class DurationEstimate {
  private from: { step: number; wall: number } | null = null;
  private done = false;
  /** The step after which the estimate is printed, and the step whose end starts the timed window. */
  readonly printAt: number;
  private readonly timedFrom: number;

  constructor(readonly c: EstimateContext) {
    const left = c.total - c.startStep;
    // Enough steps: skip the first, time the next MEASURED. Fewer: time what there is before the end.
    this.timedFrom = left > MEASURED + 1 ? c.startStep + 1 : c.startStep;
    this.printAt = Math.min(this.timedFrom + MEASURED, c.total - 1);
    if (this.timedFrom === c.startStep) this.from = { step: c.startStep, wall: c.startWall };
    if (this.printAt <= this.timedFrom) this.done = true; // one step left: nothing to estimate before it ends
  }

  /** After each step: the line to print once the window is timed, else null. */
  observe(step: number, wallSeconds: number): string | null {
    if (this.done) return null;
    if (step === this.timedFrom) this.from = { step, wall: wallSeconds };
    if (step < this.printAt || !this.from) return null;
    this.done = true;
    const n = step - this.from.step;
    const perStep = (wallSeconds - this.from.wall) / n;
    return this.line(perStep, n, step);
  }

  private line(perStep: number, n: number, step: number): string {
    const { total, startStep, grid, batchSize } = this.c;
    const train = perStep * (total - startStep);
    const left = perStep * (total - step) + (grid ? gridSeconds(perStep, batchSize, grid) : 0);
    const finish = new Date(Date.now() + left * 1000).toISOString().slice(11, 16);
    const firstNote = this.timedFrom === startStep ? 'including the first step\'s warm-up' : 'the first step left out as warm-up';
    const gridPart = grid
      ? ` + the ${grid.images}-image sample grid ≈ ${formatDuration(gridSeconds(perStep, batchSize, grid))} (rough: ${modelCallsPerSample(grid.sample.sampler, grid.sample.steps)} model calls an image${grid.sample.cfg > 1 ? ', doubled by guidance' : ''})`
      : '';
    return `expected duration: ${total - startStep} steps × ${perStep >= 1 ? `${perStep.toFixed(2)} s` : `${(perStep * 1000).toFixed(0)} ms`}/step ≈ ${formatDuration(train)}${gridPart}; ` +
      `about ${formatDuration(left)} from now, ending near ${finish} UTC (measured over steps ${step - n + 1}–${step}, ${firstNote}; evaluations not included)`;
  }
}

/** What a run of `spec` does besides its steps, for the estimate: the batch and the end-of-run grid (unless `samples` is false). */
export function expectedWork(spec: RunSpec, numClasses: number, samples: boolean | undefined): Pick<EstimateContext, 'batchSize' | 'grid'> {
  return { batchSize: spec.train.batch_size, grid: samples === false ? null : { images: numClasses * spec.sample.per_class, sample: spec.sample } };
}
