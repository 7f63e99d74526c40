// A whole training run on the reference trainer: the loop, its checkpoint cadence and the EMA
// sample grid drawn in this thread. `diffactor train` is a thin CLI over this. The run directory,
// checkpoint checks and the grid file are runDir.ts, metrics.jsonl and the bar runLog.ts, shared
// with the actor engine (actorRun.ts). Resuming continues to the same numbers an uninterrupted run reaches.
import { NonFiniteLossError, Trainer, type StepLog } from './reference.ts';
import { openTrainData } from '../build/setup.ts';
import { drawSamples } from '../build/draw.ts';
import { ownDrawLabel } from '../build/parts.ts';
import { progressBar } from '../progress.ts';
import { RunInterrupted, openRun, recordFailure, samplesGridLabels, saveCheckedCheckpoint, writeSamplesGrid, type OpenedRun, type RunOptions } from './runDir.ts';
import { RunLog } from './runLog.ts';
import { expectedWork } from './estimate.ts';
import { Retention } from './retention.ts';

export type { RunOptions };

export interface RunResult { trainer: Trainer; logs: StepLog[]; out: string }

/** The run in one synchronous call (tests, scripts): nothing else runs until it returns. */
export function runTraining(o: RunOptions): RunResult {
  return inOpenRun(o, (steps) => {
    for (;;) {
      const n = steps.next();
      if (n.done) return n.value;
    }
  });
}

/**
 * The run with the event loop turned between steps, so that a Ctrl-C (o.signal, aborted by the CLI's
 * signal handler) stops it after the step in flight: a synchronous loop never lets the handler run.
 */
export async function runTrainingAsync(o: RunOptions): Promise<RunResult> {
  return inOpenRun(o, async (steps) => {
    for (;;) {
      const n = steps.next();
      if (n.done) return n.value;
      await new Promise((r) => setImmediate(r));
    }
  });
}

/**
 * What both drivers share: open the run directory (taking its lock), hand `drive` the run's steps,
 * and release the lock when it is done: at once for a synchronous drive, when its promise settles
 * for an asynchronous one. An error that ends the run is recorded (failed) before the lock goes.
 */
function inOpenRun(o: RunOptions, drive: (steps: Generator<void, RunResult>) => Promise<RunResult>): Promise<RunResult>;
function inOpenRun(o: RunOptions, drive: (steps: Generator<void, RunResult>) => RunResult): RunResult;
function inOpenRun(o: RunOptions, drive: (steps: Generator<void, RunResult>) => RunResult | Promise<RunResult>): RunResult | Promise<RunResult> {
  const { spec, resumeFrom, files, lock } = openRun(o, 'runTraining');
  const fail = (e: unknown): never => {
    try {
      throw failed(o, e);
    } finally {
      lock.release();
    }
  };
  let r: RunResult | Promise<RunResult>;
  try {
    r = drive(train(o, spec, resumeFrom, files));
  } catch (e) {
    return fail(e);
  }
  if (r instanceof Promise) return r.then((v) => { lock.release(); return v; }, fail);
  lock.release();
  return r;
}

/** An error that ends a run is recorded in its directory (failure.json); an interruption is not a failure. */
function failed(o: RunOptions, e: unknown): unknown {
  if (!(e instanceof RunInterrupted)) recordFailure(o.out, e as Error);
  return e;
}

/** The run as a generator that pauses after every step (runTraining drives it at once, runTrainingAsync between event-loop turns). */
function* train(o: RunOptions, spec: OpenedRun['spec'], resumeFrom: OpenedRun['resumeFrom'], files: OpenedRun['files']): Generator<void, RunResult> {
  const trainer = new Trainer(spec, openTrainData(spec, o.data), { dataset: o.data });
  if (resumeFrom) trainer.restore(resumeFrom);
  const total = spec.train.steps;
  const log = new RunLog(files.metrics, spec.train);
  log.startBar('train', trainer.step, o.quiet, trainer.wallSeconds, expectedWork(spec, trainer.config.numClasses, o.samples));
  // This engine evaluates nothing during training: the best checkpoint is by loss (retention.ts).
  const keep = new Retention(o.out, spec, trainer.step, false, (l) => { if (!o.quiet) console.error(l); });
  const save = () => {
    saveCheckedCheckpoint(files.checkpoint, trainer.checkpoint(),
      (name) => new NonFiniteLossError(trainer.step, NaN, `parameter '${name}' is not finite`));
    keep.saved(trainer.step, log.logs);
  };
  while (trainer.step < total && !o.signal?.aborted) {
    const t0 = performance.now();
    const l = trainer.trainStep();
    trainer.wallSeconds += (performance.now() - t0) / 1000;
    log.step(l, trainer.wallSeconds);
    if (l.step % spec.train.checkpoint_every === 0 && l.step !== total) save();
    yield;
  }
  save();
  log.stopBar();
  if (o.signal?.aborted && trainer.step < total) throw new RunInterrupted(trainer.step, o.out);
  if (o.samples !== false) {
    const s = spec.sample;
    const labels = samplesGridLabels(trainer.config.numClasses, s.per_class);
    let sbar: ReturnType<typeof progressBar> | null = null;
    const samples = drawSamples(trainer.emaModel, s, {
      seed: spec.seed,
      labels,
      onStep: (i, n) => {
        if (o.quiet) return;
        sbar ??= progressBar(n, `sample (${ownDrawLabel(spec) ?? `${s.sampler}, ${s.steps} steps`})`);
        sbar.update(i, {});
      },
    });
    (sbar as ReturnType<typeof progressBar> | null)?.stop();
    const { images, channels, side } = trainer.samplesToImages(samples, labels.length); // REPA-E decodes its latents
    writeSamplesGrid(o.out, images, labels, channels, side, s.per_class, { spec, dataset: o.data, quiet: o.quiet });
  }
  return { trainer, logs: log.logs, out: o.out };
}
