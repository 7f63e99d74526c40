// What a training run reports about its steps, for both engines: the step logs it returns,
// metrics.jsonl (a line every log_every steps and at the last step, evaluations as they land) and
// the progress bar. It does not time steps (each engine measures its own wall time) and does not
// decide anything about the run.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';
import { progressBar, type Progress } from '../progress.ts';
import type { StepLog } from '../build/stepLog.ts';
import { DurationEstimate, type EstimateContext } from './estimate.ts';
import type { RunSpec } from '../spec/schema.ts';

/**
 * Keep metrics.jsonl consistent with a checkpoint: drop lines logged after it. A torn last line (a
 * kill or a full disk mid-append) is dropped and said so; a bad line before it means the file was
 * damaged some other way, and resuming stops, naming the file and the line.
 */
export function truncateMetrics(file: string, step: number, warn: (line: string) => void = (l) => console.error(l)): void {
  if (!existsSync(file)) return;
  const lines = readFileSync(file, 'utf8').split('\n');
  while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
  const keep: string[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    let rec: { step?: number };
    try {
      rec = JSON.parse(l) as { step?: number };
    } catch (e) {
      if (i === lines.length - 1) {
        warn(`${file}: dropped a torn last line (line ${i + 1}, ${l.length} characters: ${(e as Error).message})`);
        return;
      }
      throw new Error(`${file}: line ${i + 1} is not JSON (${(e as Error).message}); it is not the last line, so the file was damaged some other way — fix or remove that line to resume`);
    }
    if (typeof rec.step === 'number' && rec.step <= step) keep.push(l);
  });
  writeFileAtomic(file, keep.map((l) => `${l}\n`).join(''));
}

/** Whether metrics.jsonl holds an evaluation at `step` (after truncateMetrics: its lines are JSON). */
export function hasEvaluation(file: string, step: number): boolean {
  if (!existsSync(file)) return false;
  return readFileSync(file, 'utf8').split('\n').some((l) => {
    if (!l.includes('"eval":true')) return false;
    const rec = JSON.parse(l) as { step?: number; eval?: boolean };
    return rec.eval === true && rec.step === step;
  });
}

/** Append one line, naming the file when the disk refuses (ENOSPC and the like). */
function appendLine(file: string, line: string): void {
  try {
    appendFileSync(file, line);
  } catch (e) {
    throw new Error(`cannot append to ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export class RunLog {
  /** Every step logged in this process (what the engines return). */
  readonly logs: StepLog[] = [];
  private bar: Progress | null = null;
  // it_s is measured between two metrics lines on the engine's training clock (wallSeconds):
  // the steps and training seconds since the previous line (or since where this process started).
  private mark = { step: 0, wall: 0 };
  private estimate: DurationEstimate | null = null;
  private quiet = false;

  constructor(readonly file: string, private readonly train: Pick<RunSpec['train'], 'steps' | 'log_every'>) {}

  /**
   * Show a progress bar from `step` on (unless quiet); `wallSeconds` is the run's training time at
   * that step (a resumed run's), where the first line's it_s starts counting. With `expect`, the
   * expected duration is printed once the first steps are timed (estimate.ts; not when quiet).
   */
  startBar(label: string, step: number, quiet: boolean | undefined, wallSeconds = 0, expect?: Pick<EstimateContext, 'batchSize' | 'grid'>): void {
    this.mark = { step, wall: wallSeconds };
    this.quiet = !!quiet;
    this.estimate = expect ? new DurationEstimate({ ...expect, startStep: step, startWall: wallSeconds, total: this.train.steps }) : null;
    // Rate and ETA count from `step`: a resumed run's earlier steps were not timed in this process.
    if (!quiet) this.bar = progressBar(this.train.steps, label, undefined, step);
    this.bar?.update(step, {});
  }

  stopBar(): void {
    this.bar?.stop();
    this.bar = null;
  }

  /** One trained step; `wallSeconds` is the run's training time so far (resumed runs included). */
  step(log: StepLog, wallSeconds: number): void {
    this.logs.push(log);
    const { steps: total, log_every: every } = this.train;
    if (log.step % every === 0 || log.step === total) {
      // A line at the last step may follow the previous one by fewer than log_every steps: count the steps there were.
      const itS = (log.step - this.mark.step) / Math.max(wallSeconds - this.mark.wall, 1e-9);
      this.mark = { step: log.step, wall: wallSeconds };
      appendLine(this.file, `${JSON.stringify({ ...log, ...log.terms, terms: undefined, wall_s: +wallSeconds.toFixed(3), it_s: +itS.toFixed(3) })}\n`);
    }
    this.bar?.update(log.step, { loss: log.loss });
    const expected = this.estimate?.observe(log.step, wallSeconds);
    // Below a redrawn bar the line would be overwritten: start it on a line of its own.
    if (expected && !this.quiet) console.error(`${this.bar && process.stderr.isTTY ? '\n' : ''}${expected}`);
  }

  /** An evaluation's metrics, at the wall time of the step it evaluated. */
  evaluation(step: number, wallSeconds: number, metrics: Record<string, number>): void {
    appendLine(this.file, `${JSON.stringify({ step, eval: true, wall_s: +wallSeconds.toFixed(3), ...metrics })}\n`);
  }

  /** Back to a checkpoint at `step` (trained for `wallSeconds`): forget what was logged after it, in memory and in the file. */
  truncate(step: number, wallSeconds: number): void {
    truncateMetrics(this.file, step);
    this.mark = { step, wall: wallSeconds };
    this.logs.splice(this.logs.findIndex((l) => l.step > step) >>> 0);
  }

  /** Back to step 0 (no checkpoint to return to). */
  clear(): void {
    writeFileSync(this.file, '');
    this.logs.length = 0;
    this.mark = { step: 0, wall: 0 };
  }
}
