// Checkpoint retention (issue 19, src/run/retention.ts): OUT/checkpoints/step-<N> keeps exactly the
// newest train.keep_last checkpoints, each with the bytes its step wrote; best.safetensors is the
// checkpointed step that scored best on train.keep_best (lowest loss window, lowest fd, highest IS),
// even after that step's own file was pruned; files appear whole (a reader of the old best keeps
// its bytes); a resumed run continues the same bookkeeping; a restart drops a discarded future.
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Retention, bestFile, keptSteps, stepFile, CHECKPOINTS_DIR, type BestRecord } from '../../src/run/retention.ts';
import { writeFileAtomic } from '../../src/io/atomic.ts';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import type { StepLog } from '../../src/build/stepLog.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'retention-'));
const base = tinySpec('sit-baseline');
const specWith = (train: Record<string, unknown>, over: Record<string, unknown> = {}) => tinySpec('sit-baseline', { ...over, train: { ...base.train, ...train } });
const log = (step: number, loss: number): StepLog => ({ step, loss, terms: {}, lr: 1e-3, grad_norm: 1 });
const bestRecord = (out: string): BestRecord => JSON.parse(readFileSync(path.join(out, CHECKPOINTS_DIR, 'best.json'), 'utf8'));
const temps = (out: string) => readdirSync(path.join(out, CHECKPOINTS_DIR)).filter((f) => f.endsWith('.tmp'));

/** What an engine does at a checkpoint: replace OUT/checkpoint.safetensors (by rename), then tell the retention. */
function fakeSave(out: string, keep: Retention, step: number, logs: StepLog[]): void {
  writeFileAtomic(path.join(out, 'checkpoint.safetensors'), `checkpoint of step ${step}`);
  keep.saved(step, logs);
}

describe('retention bookkeeping', () => {
  it('keeps exactly the newest keep_last step files with their own bytes, and the lowest-loss window as best', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 4, maxLength: 4 })), { minLength: 1, maxLength: 10 }),
      (keepLast, saves) => {
        const out = tmp();
        const keep = new Retention(out, specWith({ keep_last: keepLast, keep_best: 'loss' }), 0, false);
        const logs: StepLog[] = [];
        const steps: number[] = [], means: number[] = [];
        let step = 0;
        for (const [gap, losses] of saves) {
          const from = step;
          for (let k = 0; k < gap; k++) logs.push(log(++step, losses[k]));
          fakeSave(out, keep, step, logs);
          steps.push(step);
          means.push(losses.slice(0, step - from).reduce((a, b) => a + b, 0) / (step - from));
        }
        const want = steps.slice(-keepLast);
        expect(keptSteps(out)).toEqual(want);
        for (const s of want) expect(readFileSync(stepFile(out, s), 'utf8')).toBe(`checkpoint of step ${s}`);
        // The best is the first lowest window mean, kept even when its step file was pruned.
        const i = means.indexOf(Math.min(...means));
        expect(bestRecord(out)).toEqual({ step: steps[i], metric: 'loss', value: means[i] });
        expect(readFileSync(bestFile(out), 'utf8')).toBe(`checkpoint of step ${steps[i]}`);
        expect(temps(out)).toEqual([]);
      },
    ), { numRuns: 40 });
  });

  it('by an evaluation metric: lowest fd, highest IS; an evaluation landing before its checkpoint is scored when it is written', () => {
    for (const [metric, values, bestAt] of [['fd', [5, 3, 4], 4], ['is', [1, 3, 2], 4]] as const) {
      const out = tmp();
      const keep = new Retention(out, specWith({ keep_last: 5, keep_best: metric, checkpoint_every: 2, eval_every: 2 }), 0, true);
      fakeSave(out, keep, 2, []);
      keep.evaluated(2, { [metric]: values[0] });
      expect(bestRecord(out)).toEqual({ step: 2, metric, value: values[0] });
      keep.evaluated(4, { [metric]: values[1] }); // lands before step 4's checkpoint
      expect(bestRecord(out).step).toBe(2);
      fakeSave(out, keep, 4, []);
      fakeSave(out, keep, 6, []);
      keep.evaluated(6, { [metric]: values[2] });
      expect(bestRecord(out)).toEqual({ step: bestAt, metric, value: values[1] });
      expect(readFileSync(bestFile(out), 'utf8')).toBe(`checkpoint of step ${bestAt}`);
    }
  });

  it('says so when the best evaluation has no checkpoint to keep (pruned, or not a checkpoint step)', () => {
    const out = tmp();
    const notices: string[] = [];
    const keep = new Retention(out, specWith({ keep_last: 1, keep_best: 'fd', checkpoint_every: 2, eval_every: 1 }), 0, true, (l) => notices.push(l));
    fakeSave(out, keep, 2, []);
    fakeSave(out, keep, 4, []);
    keep.evaluated(2, { fd: 1 });
    keep.evaluated(3, { fd: 0.5 });
    expect(notices).toEqual([
      'keep_best: step 2 scored best so far (fd 1.0000) but has no checkpoint to keep (pruned already: raise train.keep_last above 1)',
      'keep_best: step 3 scored best so far (fd 0.5000) but has no checkpoint to keep (not a checkpoint step: make eval_every a multiple of checkpoint_every)',
    ]);
    expect(existsSync(bestFile(out))).toBe(false);
  });

  it('refuses an evaluation metric for a run that evaluates nothing, naming train.keep_best', () => {
    expect(() => new Retention(tmp(), specWith({ keep_best: 'fd' }), 0, false))
      .toThrow(/^train\.keep_best: 'fd' is an evaluation metric, but this run evaluates nothing .*use loss, auto or none$/);
    expect(new Retention(tmp(), specWith({ keep_best: 'auto' }), 0, true).metric).toBe('fd');
    expect(new Retention(tmp(), specWith({ keep_best: 'auto' }), 0, false).metric).toBe('loss');
    const out = tmp();
    const none = new Retention(out, specWith({ keep_best: 'none' }), 0, false);
    fakeSave(out, none, 1, [log(1, 0.5)]);
    expect(existsSync(bestFile(out))).toBe(false);
    expect(keptSteps(out)).toEqual([1]);
  });

  it('the spec refuses keep_last 0 and an unknown keep_best, naming the field', () => {
    expect(() => specWith({ keep_last: 0 })).toThrow(/train\.keep_last/);
    expect(() => specWith({ keep_best: 'accuracy' })).toThrow(/train\.keep_best/);
  });

  it('replaces files whole: a reader of the old best keeps its bytes; stale temporaries of dead writers are removed', () => {
    const out = tmp();
    const keep = new Retention(out, specWith({ keep_last: 3, keep_best: 'loss' }), 0, false);
    fakeSave(out, keep, 1, [log(1, 2)]);
    const fd = openSync(bestFile(out), 'r');
    try {
      fakeSave(out, keep, 2, [log(1, 2), log(2, 1)]); // a better window: a new best.safetensors
      const buf = Buffer.alloc(64);
      expect(buf.subarray(0, readSync(fd, buf, 0, 64, 0)).toString()).toBe('checkpoint of step 1');
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(bestFile(out), 'utf8')).toBe('checkpoint of step 2');
    // A hard link, not a copy: the best and its step file are one inode (no extra space).
    expect(statSync(bestFile(out)).ino).toBe(statSync(stepFile(out, 2)).ino);
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const stale = path.join(out, CHECKPOINTS_DIR, `.best.safetensors.${dead}.0a1b2c3d4e5f.tmp`);
    writeFileSync(stale, 'half a link');
    new Retention(out, specWith({ keep_last: 3, keep_best: 'loss' }), 2, false);
    expect(existsSync(stale)).toBe(false);
  });

  it('a restart from an earlier checkpoint drops the step files and the best of the discarded future', () => {
    const out = tmp();
    const keep = new Retention(out, specWith({ keep_last: 5, keep_best: 'loss' }), 0, false);
    const logs = [log(1, 3), log(2, 3), log(3, 1), log(4, 1)];
    fakeSave(out, keep, 2, logs);
    fakeSave(out, keep, 4, logs);
    expect(bestRecord(out).step).toBe(4);
    // Back to step 2 (its checkpoint): step 4 never happened in this timeline.
    const again = new Retention(out, specWith({ keep_last: 5, keep_best: 'loss' }), 2, false);
    expect(keptSteps(out)).toEqual([2]);
    expect(existsSync(bestFile(out))).toBe(false);
    expect(existsSync(path.join(out, CHECKPOINTS_DIR, 'best.json'))).toBe(false);
    fakeSave(out, again, 4, [log(3, 5), log(4, 5)]);
    expect(bestRecord(out)).toEqual({ step: 4, metric: 'loss', value: 5 });
  });
});

describe('retention in training runs', () => {
  it('reference engine: the newest keep_last checkpoints and the best loss window; a resumed run continues both', () => {
    const out = tmp();
    const spec = specWith({ steps: 8, checkpoint_every: 2, keep_last: 2, keep_best: 'loss', log_every: 1 });
    const first = runTraining({ spec, out, quiet: true, samples: false });
    expect(keptSteps(out)).toEqual([6, 8]);
    expect(loadCheckpoint(stepFile(out, 6)).state.step).toBe(6);
    expect(readFileSync(stepFile(out, 8))).toEqual(readFileSync(path.join(out, 'checkpoint.safetensors')));
    const resumed = runTraining({ out, resume: true, steps: 12, quiet: true, samples: false });
    expect(keptSteps(out)).toEqual([10, 12]);
    // The best over both processes: window means of the losses between checkpoints.
    const losses = new Map([...first.logs, ...resumed.logs].map((l) => [l.step, l.loss]));
    expect(losses.size).toBe(12);
    let want: BestRecord | null = null;
    for (let s = 2; s <= 12; s += 2) {
      const mean = (losses.get(s - 1)! + losses.get(s)!) / 2;
      if (!want || mean < want.value) want = { step: s, metric: 'loss', value: mean };
    }
    expect(bestRecord(out)).toEqual(want);
    const best = loadCheckpoint(bestFile(out));
    expect(best.state.step).toBe(want!.step);
    if (want!.step >= 10) expect(readFileSync(bestFile(out))).toEqual(readFileSync(stepFile(out, want!.step)));
  }, 120_000);

  it('actor engine: best by fd among the evaluated checkpoints', async () => {
    const dir = tmp();
    const { classifier, encoder } = writeTestStandins(dir);
    const spec = specWith({ steps: 6, checkpoint_every: 2, eval_every: 2, keep_last: 3, keep_best: 'auto' },
      { eval: { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, encoder, sfid_channels: 2 } });
    const out = path.join(dir, 'run');
    const r = await runActors({ spec, out, quiet: true, samples: false, placement: 'local' });
    expect(keptSteps(out)).toEqual([2, 4, 6]);
    const best = r.evals.reduce((a, e) => (e.metrics.fd < a.metrics.fd ? e : a));
    expect(bestRecord(out)).toEqual({ step: best.step, metric: 'fd', value: best.metrics.fd });
    expect(statSync(bestFile(out)).ino).toBe(statSync(stepFile(out, best.step)).ino);
  }, 180_000);

  it('the reference engine refuses keep_best fd (it evaluates nothing) before training', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(() => runTraining({ spec: specWith({ steps: 2, keep_best: 'fd' }), out: tmp(), quiet: true, samples: false })).toThrow(/train\.keep_best: 'fd'/);
    } finally {
      spy.mockRestore();
    }
  });
});

