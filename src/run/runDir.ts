// The run directory both engines write (run.ts: the reference trainer; actorRun.ts: actors): open
// it fresh or for --resume, save checkpoints that are never worse than the last one, and write the
// final samples.png grid. What a step reports (metrics.jsonl, the bar) is runLog.ts; how a step is
// trained, when a checkpoint is due and how a NaN stops the run are the engines'.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { K } from '../kernels/index.ts';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../build/checkpoint.ts';
import { gridLabels } from '../build/draw.ts';
import { writePngGrid } from '../io/png.ts';
import { truncateMetrics } from './runLog.ts';
import type { RunSpec } from '../spec/schema.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface RunFiles { checkpoint: string; metrics: string }

export interface OpenedRun {
  /** The spec the run trains with: the given one (fresh) or the checkpoint's (resume), train.steps overridden. */
  spec: RunSpec;
  /** The checkpoint to continue from (resume), or null (fresh). */
  resumeFrom: Checkpoint | null;
  files: RunFiles;
}

export interface OpenRunOptions {
  /** The spec of a fresh run (a resumed run reads its checkpoint's). */
  spec?: RunSpec;
  out: string;
  /** Total steps (overrides the spec's train.steps). */
  steps?: number;
  resume?: boolean;
}

/** What a run takes on either engine (runActors adds its own options). */
export interface RunOptions extends OpenRunOptions {
  /** Dataset override (builtin | fashion-mnist | cifar10 | folder). */
  data?: string;
  /** Skip the end-of-run sample grid (tests). */
  samples?: boolean;
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
  if (o.resume) {
    if (!existsSync(files.checkpoint)) throw new Error(`--resume ${o.out}: no ${CHECKPOINT_FILE} there to resume from`);
    const resumeFrom = loadCheckpoint(files.checkpoint);
    truncateMetrics(files.metrics, resumeFrom.state.step);
    return { spec: withSteps(resumeFrom.spec), resumeFrom, files };
  }
  if (!o.spec) throw new Error(`${engine}: a spec is needed unless resuming`);
  if (existsSync(files.checkpoint)) {
    throw new Error(`${o.out} already holds a run (${CHECKPOINT_FILE}); continue it with --resume ${o.out} or choose another --out`);
  }
  const spec = withSteps(o.spec);
  mkdirSync(o.out, { recursive: true });
  writeFileSync(path.join(o.out, 'spec.yaml'), toYaml(spec));
  if (existsSync(files.metrics)) writeFileSync(files.metrics, '');
  return { spec, resumeFrom: null, files };
}

/**
 * A checkpoint is only as good as its weights: refuse to replace the last one with Inf/NaN.
 * `refuse` makes the engine's error (each engine reports a stop its own way).
 */
export function saveCheckedCheckpoint(file: string, c: Checkpoint, refuse: (parameter: string) => Error): void {
  for (const [name, t] of c.model) {
    if (!Number.isFinite(K.sumSquares(t.data, t.size))) throw refuse(name);
  }
  saveCheckpoint(file, c);
}

/** The final grid's labels: `perClass` samples of every class, class by class (one row each). */
export function samplesGridLabels(numClasses: number, perClass: number): number[] {
  return gridLabels(Array.from({ length: numClasses }, (_, i) => i), perClass);
}

/** OUT/samples.png: `n` images (NCHW, side × side), `perClass` to a row. */
export function writeSamplesGrid(out: string, images: Float32Array, n: number, channels: number, side: number, perClass: number): void {
  writePngGrid(path.join(out, 'samples.png'), images, n, channels, side, side, perClass);
}
