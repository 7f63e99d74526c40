// Which checkpoints a run keeps (issue 19), for both engines. OUT/checkpoint.safetensors stays the
// newest (what --resume, sample, eval and predict read); after every save it is also linked as
// OUT/checkpoints/step-<N>.safetensors and only the newest train.keep_last of those stay. A hard
// link costs no space (each save writes a new file and renames it over the old one, so an older
// link keeps its own bytes); where links are refused the file is copied. OUT/checkpoints/
// best.safetensors is the checkpointed step that scored best on train.keep_best, with
// best.json saying which step, metric and value. Every file appears whole: written under a
// temporary name and renamed.
//
// What "best" can mean (my choices; docs/training.md says the same):
// - An evaluation metric (fd, sfid lower is better; is, precision, recall, cknna, probe higher):
//   only runs that evaluate (train.eval_every > 0 on the actor engine) have one. The evaluator
//   works beside training, so a step's metrics land a few steps later; the step is kept as best
//   only if it was also checkpointed (eval_every a multiple of checkpoint_every) and its
//   step-<N> file has not been pruned yet.
// - loss: the mean training loss over the steps since the previous checkpoint. The flow-matching
//   loss is noisy and falls slowly; it says little about sample quality, so it is a fallback for
//   runs that evaluate nothing, not a model-selection criterion.
// - auto: fd when the run evaluates, else loss.
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { removeStaleTemps, writeFileAtomic } from '../io/atomic.ts';
import { processAlive } from '../io/lock.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { StepLog } from '../build/stepLog.ts';

export const CHECKPOINTS_DIR = 'checkpoints';
const LOWER_IS_BETTER = new Set(['fd', 'sfid', 'loss']);
const STEP_FILE = /^step-(\d+)\.safetensors$/;

export const stepFile = (out: string, step: number) => path.join(out, CHECKPOINTS_DIR, `step-${String(step).padStart(7, '0')}.safetensors`);
export const bestFile = (out: string) => path.join(out, CHECKPOINTS_DIR, 'best.safetensors');

export interface BestRecord { step: number; metric: string; value: number }

/** The metric train.keep_best selects for a run that does (or does not) evaluate; null: none. */
export function bestMetric(spec: RunSpec, evaluates: boolean): string | null {
  const k = spec.train.keep_best;
  if (k === 'none') return null;
  if (k === 'auto') return evaluates ? 'fd' : 'loss';
  if (k !== 'loss' && !evaluates) {
    throw new Error(`train.keep_best: '${k}' is an evaluation metric, but this run evaluates nothing (train.eval_every > 0 on the actor engine evaluates); use loss, auto or none`);
  }
  return k;
}

/** Put `src`'s bytes at `target` in one step: a link (or copy) under a temporary name, renamed. */
function placeAtomic(src: string, target: string): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    linkSync(src, tmp);
  } catch {
    copyFileSync(src, tmp);
  }
  renameSync(tmp, target);
}

/** The step-<N> files of a run directory, oldest first. */
export function keptSteps(out: string): number[] {
  const dir = path.join(out, CHECKPOINTS_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => STEP_FILE.exec(f)).filter((m) => m).map((m) => Number(m![1])).sort((a, b) => a - b);
}

export class Retention {
  readonly metric: string | null;
  private best: BestRecord | null = null;
  private lastSaved: number;
  private readonly early = new Map<number, number>();

  /**
   * `startStep`: where this process starts (0, or the resumed checkpoint's step); `evaluates`:
   * whether evaluations will arrive (through `evaluated`).
   */
  constructor(readonly out: string, readonly spec: RunSpec, startStep: number, evaluates: boolean, private readonly notice: (line: string) => void = () => {}) {
    this.metric = bestMetric(spec, evaluates);
    this.lastSaved = startStep;
    const dir = path.join(out, CHECKPOINTS_DIR);
    mkdirSync(dir, { recursive: true });
    removeStaleTemps(dir, processAlive);
    // Steps after the one this process starts from belong to a timeline that no longer exists (a
    // restart from an earlier checkpoint): they go, as metrics.jsonl's lines after it do.
    for (const s of keptSteps(out)) if (s > startStep) rmSync(stepFile(out, s), { force: true });
    const record = path.join(dir, 'best.json');
    if (existsSync(record)) {
      const r = JSON.parse(readFileSync(record, 'utf8')) as BestRecord;
      // A best from a metric this run no longer uses, or from a discarded future, is not comparable;
      // its file goes too, or best.safetensors would name a checkpoint this timeline never had.
      if (r.metric === this.metric && r.step <= startStep) this.best = r;
      else {
        rmSync(bestFile(out), { force: true });
        rmSync(record, { force: true });
      }
    } else rmSync(bestFile(out), { force: true }); // a best without its record says nothing
  }

  /** After OUT/checkpoint.safetensors was written for `step`: link it, prune, and score it on the loss. */
  saved(step: number, logs: readonly StepLog[]): void {
    placeAtomic(path.join(this.out, 'checkpoint.safetensors'), stepFile(this.out, step));
    const keep = this.spec.train.keep_last;
    const steps = keptSteps(this.out);
    for (const s of steps.slice(0, Math.max(0, steps.length - keep))) rmSync(stepFile(this.out, s), { force: true });
    if (this.metric === 'loss') {
      const window = logs.filter((l) => l.step > this.lastSaved && l.step <= step);
      if (window.length) this.consider(step, window.reduce((a, l) => a + l.loss, 0) / window.length);
    }
    this.lastSaved = step;
    for (const [s, v] of [...this.early]) {
      if (s > step) continue;
      this.early.delete(s);
      this.evaluated(s, { [this.metric!]: v });
    }
  }

  /** An evaluation of `step` landed. */
  evaluated(step: number, metrics: Record<string, number>): void {
    if (!this.metric || this.metric === 'loss') return;
    const v = metrics[this.metric];
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    if (step > this.lastSaved) {
      this.early.set(step, v); // landed before its checkpoint was written: scored when it is
      return;
    }
    if (!existsSync(stepFile(this.out, step))) {
      if (this.better(v)) this.notice(`keep_best: step ${step} scored best so far (${this.metric} ${v.toFixed(4)}) but has no checkpoint to keep (${step % this.spec.train.checkpoint_every ? 'not a checkpoint step: make eval_every a multiple of checkpoint_every' : `pruned already: raise train.keep_last above ${this.spec.train.keep_last}`})`);
      return;
    }
    this.consider(step, v);
  }

  private better(v: number): boolean {
    if (!this.best) return true;
    return LOWER_IS_BETTER.has(this.metric!) ? v < this.best.value : v > this.best.value;
  }

  private consider(step: number, value: number): void {
    if (!this.better(value)) return;
    placeAtomic(stepFile(this.out, step), bestFile(this.out));
    this.best = { step, metric: this.metric!, value };
    writeFileAtomic(path.join(this.out, CHECKPOINTS_DIR, 'best.json'), `${JSON.stringify(this.best)}\n`);
  }
}
