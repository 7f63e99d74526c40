// metrics.jsonl's it_s: steps per second of training time between two lines, also for the last
// line of a run whose final step is not a multiple of log_every, and for a resumed run's first line.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLog } from '../../src/run/runLog.ts';
import type { StepLog } from '../../src/build/stepLog.ts';

const stepLog = (step: number): StepLog => ({ step, loss: 1, lr: 1e-4, grad_norm: 1, terms: {} } as unknown as StepLog);
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; it_s: number; wall_s: number });

describe('RunLog it_s', () => {
  it('counts the steps since the previous line, including a short last window', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'runlog-')), 'metrics.jsonl');
    const log = new RunLog(file, { steps: 25, log_every: 10 });
    log.startBar('t', 0, true, 0);
    // 4 steps per second of training time (0.25 s a step).
    for (let k = 1; k <= 25; k++) log.step(stepLog(k), k * 0.25);
    const got = lines(file);
    expect(got.map((l) => l.step)).toEqual([10, 20, 25]);
    for (const l of got) expect(l.it_s).toBeCloseTo(4, 6);
  });

  it('a resumed run counts from the checkpoint step and its training time', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'runlog-')), 'metrics.jsonl');
    const log = new RunLog(file, { steps: 37, log_every: 10 });
    log.startBar('t', 15, true, 30); // resumed at step 15 after 30 s: 2 s a step from here on
    for (let k = 16; k <= 37; k++) log.step(stepLog(k), 30 + (k - 15) * 2);
    const got = lines(file);
    expect(got.map((l) => l.step)).toEqual([20, 30, 37]);
    for (const l of got) expect(l.it_s).toBeCloseTo(0.5, 6);
  });

  it('after truncate (a restart from a checkpoint) the next line counts from that checkpoint', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'runlog-')), 'metrics.jsonl');
    const log = new RunLog(file, { steps: 30, log_every: 10 });
    log.startBar('t', 0, true, 0);
    for (let k = 1; k <= 14; k++) log.step(stepLog(k), k);
    log.truncate(10, 10);
    for (let k = 11; k <= 30; k++) log.step(stepLog(k), 10 + (k - 10) * 0.5);
    expect(lines(file).map((l) => [l.step, l.it_s])).toEqual([[10, 1], [20, 2], [30, 2]]);
  });
});
