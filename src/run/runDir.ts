// The run directory both engines write (run.ts: the reference trainer; actorRun.ts: actors): open
// it fresh or for --resume, save checkpoints that are never worse than the last one, and write the
// final samples.png grid. What a step reports (metrics.jsonl, the bar) is runLog.ts; how a step is
// trained, when a checkpoint is due and how a NaN stops the run are the engines'.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { K } from '../kernels/index.ts';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../build/checkpoint.ts';
import { gridLabels } from '../build/draw.ts';
import { writePngGrid } from '../io/png.ts';
import { formatGridAccuracy, gridAccuracy, gridAccuracySkipped, type GridAccuracy } from '../eval/gridAccuracy.ts';
import { truncateMetrics } from './runLog.ts';
import { lockRunDir, processAlive, type RunLock } from '../io/lock.ts';
import { removeStaleTemps, writeFileAtomic } from '../io/atomic.ts';
import type { Tensor } from '../tensor/tensor.ts';
import type { RunSpec } from '../spec/schema.ts';
import { EVALS_DIR, FAILURE_FILE, evalGridName } from './layout.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface RunFiles { checkpoint: string; metrics: string }

export interface OpenedRun {
  /** The spec the run trains with: the given one (fresh) or the checkpoint's (resume), train.steps overridden. */
  spec: RunSpec;
  /** The checkpoint to continue from (resume), or null (fresh). */
  resumeFrom: Checkpoint | null;
  files: RunFiles;
  /** This run's hold on the directory: release it when the run ends, however it ends. */
  lock: RunLock;
}

export interface OpenRunOptions {
  /** The spec of a fresh run (a resumed run reads its checkpoint's). */
  spec?: RunSpec;
  out: string;
  /** Total steps (overrides the spec's train.steps). */
  steps?: number;
  resume?: boolean;
  /** No notices on stderr (tests). */
  quiet?: boolean;
}

/** What a run takes on either engine (runActors adds its own options). */
export interface RunOptions extends OpenRunOptions {
  /** Dataset override (builtin | fashion-mnist | cifar10 | folder). */
  data?: string;
  /** Skip the end-of-run sample grid (tests). */
  samples?: boolean;
  /**
   * Stop early (Ctrl-C, SIGTERM): the step in flight finishes, a checkpoint is written, no grid is
   * drawn, and the run throws RunInterrupted. The CLI aborts it on the first signal.
   */
  signal?: AbortSignal;
  quiet?: boolean;
}

/**
 * Fresh: refuse a directory that already holds a run (its checkpoint would be overwritten), then
 * write spec.yaml and empty metrics.jsonl. Resume: load the checkpoint and drop metrics lines
 * logged after it, so the file reads as if the run had never stopped. `engine` names the caller
 * in the one error that is a programming mistake.
 */
export function openRun(o: OpenRunOptions, engine: string): OpenedRun {
  const files = { checkpoint: path.join(o.out, CHECKPOINT_FILE), metrics: path.join(o.out, 'metrics.jsonl') };
  const withSteps = (s: RunSpec) => (o.steps ? { ...s, train: { ...s.train, steps: o.steps } } : s);
  if (!o.resume && !o.spec) throw new Error(`${engine}: a spec is needed unless resuming`);
  if (o.resume && !existsSync(files.checkpoint)) throw new Error(`--resume ${o.out}: no ${CHECKPOINT_FILE} there to resume from`);
  // The lock comes before anything is read or written: a second run on this directory is refused
  // before it can touch spec.yaml, metrics.jsonl or the checkpoint.
  mkdirSync(o.out, { recursive: true });
  const lock = lockRunDir(o.out);
  try {
    if (lock.replaced) notice(o, `${o.out}: took over the lock of pid ${lock.replaced.pid} (${lock.replaced.command}), which is no longer running`);
    const stale = removeStaleTemps(o.out, processAlive);
    if (stale.length) notice(o, `${o.out}: removed ${stale.length} temporary file(s) a killed writer left: ${stale.join(', ')}`);
    if (o.resume) {
      const resumeFrom = loadCheckpoint(files.checkpoint);
      if (resumeFrom.exported) throw new Error(`--resume ${o.out}: ${CHECKPOINT_FILE} is a weights-only export (diffactor export: no optimiser, RNG or data state); resuming needs a training checkpoint`);
      const spec = withSteps(resumeFrom.spec);
      const at = resumeFrom.state.step, stored = resumeFrom.spec.train.steps;
      if (spec.train.steps < at) throw new Error(`--resume ${o.out} --steps ${spec.train.steps}: the checkpoint is already at step ${at}; --steps must be above it`);
      if (spec.train.steps === at) throw new Error(`--resume ${o.out}: the run already finished at step ${at}; pass --steps N with N > ${at} to train further`);
      if (spec.train.steps !== stored && spec.train.schedule === 'cosine') {
        notice(o, `--steps ${spec.train.steps}: the cosine learning-rate schedule now spans ${spec.train.steps} steps instead of ${stored}, so from step ${at + 1} on the learning rate differs from the one the run had`);
      }
      warmupNotice(o, spec, stored, at);
      truncateMetrics(files.metrics, at);
      clearFailure(o.out);
      return { spec, resumeFrom, files, lock };
    }
    if (existsSync(files.checkpoint)) {
      throw new Error(`${o.out} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${o.out} or choose another --out`);
    }
    const spec = withSteps(o.spec!);
    warmupNotice(o, spec);
    writeFileAtomic(path.join(o.out, 'spec.yaml'), toYaml(spec));
    if (existsSync(files.metrics)) writeFileSync(files.metrics, '');
    clearFailure(o.out);
    return { spec, resumeFrom: null, files, lock };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** A run stopped on request after writing its checkpoint; `--resume` continues it exactly. */
export class RunInterrupted extends Error {
  constructor(readonly step: number, readonly out: string) {
    super(`interrupted after step ${step}: the checkpoint in ${out} is saved; continue with: npx diffactor train --resume ${out}`);
    this.name = 'RunInterrupted';
  }
}

/**
 * train.warmup_steps above the run's steps is cut to them (build/schedule.ts: the learning rate
 * then reaches train.lr only at the last step): say so once, when the run opens. A resumed run
 * whose --steps moves that cut (`storedSteps` → spec.train.steps) changes its warm-up from step
 * `at` + 1 on: said too, whatever the schedule.
 */
export function warmupNotice(o: OpenRunOptions, spec: RunSpec, storedSteps?: number, at?: number): void {
  const { warmup_steps: w, steps } = spec.train;
  if (w > steps) {
    notice(o, `train.warmup_steps ${w} is more than the run's ${steps} steps: the learning rate warms up over all ${steps} steps instead and reaches train.lr only at the last one; ` +
      `set train.warmup_steps to at most ${steps} (e.g. --set train.warmup_steps=${Math.max(1, Math.round(steps / 10))}) for a shorter warm-up`);
  }
  if (storedSteps !== undefined && at !== undefined && Math.min(w, storedSteps) !== Math.min(w, steps) && at < Math.max(Math.min(w, storedSteps), Math.min(w, steps))) {
    notice(o, `--steps ${steps}: train.warmup_steps ${w} was cut to the ${storedSteps} steps the run had; the warm-up now spans ${Math.min(w, steps)} steps, so from step ${at + 1} on the learning rate differs from the one the run had`);
  }
}

/** One line on stderr, unless the run is quiet. */
function notice(o: OpenRunOptions, line: string): void {
  if (!o.quiet) console.error(line);
}

/**
 * A checkpoint is only as good as its weights: refuse to replace the last one with Inf/NaN.
 * `refuse` makes the engine's error (each engine reports a stop its own way).
 */
export function saveCheckedCheckpoint(file: string, c: Checkpoint, refuse: (tensor: string) => Error): void {
  // Every tensor that would be saved: the weights, the EMA, the heads, the optimiser moments, a joint VAE's.
  const parts: [string, Map<string, Tensor> | undefined][] = [['', c.model], ['ema.', c.ema], ['proj.', c.proj], ['opt.', c.opt], ['vae.', c.vae], ['vae_opt.', c.vaeOpt]];
  for (const [prefix, m] of parts) {
    for (const [name, t] of m ?? []) {
      if (!Number.isFinite(K.sumSquares(t.data, t.size))) throw refuse(`${prefix}${name}`);
    }
  }
  saveCheckpoint(file, c);
}

/** The final grid's labels: `perClass` samples of every class, class by class (one row each). */
export function samplesGridLabels(numClasses: number, perClass: number): number[] {
  return gridLabels(Array.from({ length: numClasses }, (_, i) => i), perClass);
}

/**
 * OUT/samples.png: the images (NCHW, side × side) drawn for `labels`, `perClass` to a row; then the
 * evaluation classifier's agreement with those labels, printed and kept in OUT/samples.json.
 */
export function writeSamplesGrid(out: string, images: Float32Array, labels: readonly number[], channels: number, side: number, perClass: number, check?: { spec: RunSpec; dataset?: string; quiet?: boolean }): GridAccuracy | null {
  writePngGrid(path.join(out, 'samples.png'), images, labels.length, channels, side, side, perClass);
  if (!check) return null;
  const g = gridAccuracy(check.spec, check.dataset ?? check.spec.data.dataset, images, labels, channels, side, (why) => { if (!check.quiet) console.error(gridAccuracySkipped(why)); });
  if (g) {
    writeFileAtomic(path.join(out, 'samples.json'), JSON.stringify({
      class_accuracy: g.accuracy, samples: g.n, classifier: path.basename(g.classifier), classifier_test_accuracy: g.realAccuracy,
      per_class: Object.fromEntries(g.perClass.map(([r, n], k) => [g.classNames[k] ?? String(k), { right: r, drawn: n }])),
    }, null, 2) + '\n');
    if (!check.quiet) console.error(formatGridAccuracy(g));
  }
  return g;
}

/**
 * A run that stopped on an error leaves OUT/failure.json: the step it reached (when the error says),
 * the reason and the time, so that a reader of the directory (`diffactor serve`) can tell a failed
 * run from one that was stopped. A run that opens the directory again (--resume) removes it.
 */
export function recordFailure(out: string, e: Error): void {
  const step = (e as { step?: unknown }).step;
  try {
    writeFileAtomic(path.join(out, FAILURE_FILE), `${JSON.stringify({ step: typeof step === 'number' ? step : null, reason: e.message, error: e.name, time: new Date().toISOString() })}\n`);
  } catch {
    // The directory is gone or not writable: the error itself still reaches the caller.
  }
}

function clearFailure(out: string): void {
  rmSync(path.join(out, FAILURE_FILE), { force: true });
}

/** OUT/evals/step-<N>.png: an evaluation's sample grid (`cols` images to a row). */
export function writeEvalGrid(out: string, step: number, g: { images: Float32Array; n: number; channels: number; side: number; cols: number }): string {
  const file = path.join(out, EVALS_DIR, evalGridName(step));
  mkdirSync(path.dirname(file), { recursive: true });
  writePngGrid(file, g.images, g.n, g.channels, g.side, g.side, g.cols);
  return file;
}
