// A whole training run on the reference trainer: directory handling, progress bar, metrics.jsonl,
// atomic checkpoints every K steps and at the end, and the EMA sample grid. `diffactor train`
// is a thin CLI over this. Resuming reads DIR/checkpoint.safetensors and continues to the same
// numbers an uninterrupted run reaches.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { NonFiniteLossError, Trainer, type StepLog } from './reference.ts';
import { K } from '../kernels/index.ts';
import { loadCheckpoint, saveCheckpoint } from '../build/checkpoint.ts';
import { openTrainData } from '../build/setup.ts';
import { drawSamples, gridLabels } from '../build/draw.ts';
import { writePngGrid } from '../io/png.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { progressBar } from '../progress.ts';
import type { RunSpec } from '../spec/schema.ts';

export interface RunOptions {
  spec?: RunSpec;
  out: string;
  /** Dataset override (builtin | fashion-mnist | cifar10 | folder). */
  data?: string;
  /** Total steps (overrides the spec's train.steps). */
  steps?: number;
  resume?: boolean;
  /** Skip the end-of-run sample grid (tests). */
  samples?: boolean;
  quiet?: boolean;
}

export interface RunResult { trainer: Trainer; logs: StepLog[]; out: string }

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** Keep metrics.jsonl consistent with a checkpoint: drop lines logged after it. */
export function truncateMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && (JSON.parse(l) as { step?: number }).step! <= step);
  writeFileAtomic(file, keep.map((l) => `${l}\n`).join(''));
}

export function runTraining(o: RunOptions): RunResult {
  const ckptFile = path.join(o.out, CHECKPOINT_FILE);
  const metricsFile = path.join(o.out, 'metrics.jsonl');
  let spec: RunSpec;
  let trainer: Trainer;
  if (o.resume) {
    if (!existsSync(ckptFile)) throw new Error(`--resume ${o.out}: no ${CHECKPOINT_FILE} there to resume from`);
    const c = loadCheckpoint(ckptFile);
    spec = o.steps ? { ...c.spec, train: { ...c.spec.train, steps: o.steps } } : c.spec;
    trainer = new Trainer(spec, openTrainData(spec, o.data));
    trainer.restore(c);
    truncateMetrics(metricsFile, c.state.step);
  } else {
    if (!o.spec) throw new Error('runTraining: a spec is needed unless resuming');
    if (existsSync(ckptFile)) {
      throw new Error(`${o.out} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${o.out} or choose another --out`);
    }
    spec = o.steps ? { ...o.spec, train: { ...o.spec.train, steps: o.steps } } : o.spec;
    mkdirSync(o.out, { recursive: true });
    writeFileSync(path.join(o.out, 'spec.yaml'), toYaml(spec));
    if (existsSync(metricsFile)) writeFileSync(metricsFile, '');
    trainer = new Trainer(spec, openTrainData(spec, o.data));
  }
  const total = spec.train.steps;
  const bar = o.quiet ? null : progressBar(total, 'train');
  const logs: StepLog[] = [];
  let last = performance.now();
  const save = () => {
    // A checkpoint is only as good as its weights: refuse to replace the last one with Inf/NaN.
    const c = trainer.checkpoint();
    for (const [name, t] of c.model) {
      if (!Number.isFinite(K.sumSquares(t.data, t.size))) throw new NonFiniteLossError(trainer.step, NaN, `parameter '${name}' is not finite`);
    }
    saveCheckpoint(ckptFile, c);
  };
  while (trainer.step < total) {
    const t0 = performance.now();
    const log = trainer.trainStep();
    const now = performance.now();
    trainer.wallSeconds += (now - t0) / 1000;
    logs.push(log);
    if (log.step % spec.train.log_every === 0 || log.step === total) {
      const itS = 1000 / Math.max(now - last, 1e-6) * (log.step % spec.train.log_every === 0 ? spec.train.log_every : 1);
      last = now;
      appendFileSync(metricsFile, `${JSON.stringify({ ...log, ...log.terms, terms: undefined, wall_s: +trainer.wallSeconds.toFixed(3), it_s: +itS.toFixed(3) })}\n`);
    }
    bar?.update(log.step, { loss: log.loss });
    if (log.step % spec.train.checkpoint_every === 0 && log.step !== total) save();
  }
  save();
  bar?.stop();
  if (o.samples !== false) {
    const s = spec.sample, c = trainer.config;
    const classes = Array.from({ length: c.numClasses }, (_, i) => i);
    let sbar: ReturnType<typeof progressBar> | null = null;
    const samples = drawSamples(trainer.emaModel, s, {
      seed: spec.seed,
      labels: gridLabels(classes, s.per_class),
      onStep: (i, n) => {
        if (o.quiet) return;
        sbar ??= progressBar(n, `sample (${s.sampler}, ${s.steps} steps)`);
        sbar.update(i, {});
      },
    });
    (sbar as ReturnType<typeof progressBar> | null)?.stop();
    const n = classes.length * s.per_class;
    const { images, channels, side } = trainer.samplesToImages(samples, n); // REPA-E decodes its latents
    writePngGrid(path.join(o.out, 'samples.png'), images, n, channels, side, side, s.per_class);
  }
  return { trainer, logs, out: o.out };
}
