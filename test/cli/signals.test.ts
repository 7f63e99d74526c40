// Signals (a run must not go wrong silently): SIGINT stops `diffactor train` after the step in
// flight with a checkpoint, prints how to resume and exits 130; `--resume` then reaches exactly
// the numbers of an uninterrupted run. A trainer whose parent (the `npx` wrapper) is killed stops
// the same way instead of training on as an orphan. A second signal exits at once.
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { runActors } from '../../src/run/actorRun.ts';
import { runTraining } from '../../src/run/run.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { processAlive } from '../../src/io/lock.ts';
import { tinySpec } from '../actors/specs.ts';
import { readMetrics as metrics } from '../run/methodRun.ts';

const bin = path.resolve(import.meta.dirname, '../../bin/diffactor.js');
const STEPS = 40;
const ORPHAN_STEPS = 5000;
const spec = () => tinySpec('sit-baseline', { train: { ...tinySpec('sit-baseline').train, steps: STEPS, checkpoint_every: 1000, log_every: 1 } });
const lines = (d: string) => (existsSync(path.join(d, 'metrics.jsonl')) ? readFileSync(path.join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length : 0);

async function until(cond: () => boolean, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => p.on('exit', (code) => r(code)));

describe('signals', () => {
  // The reference engine's loop is synchronous: without a turn of the event loop between steps the
  // handler would run only after the last step (the run "ignored" Ctrl-C).
  it.each(['actors', 'reference'] as const)('SIGINT (%s engine): checkpoint, resume command, exit 130; --resume equals an uninterrupted run', async (engine) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sigint-'));
    const file = path.join(dir, 'spec.yaml');
    writeFileSync(file, stringify(spec()));
    const out = path.join(dir, 'run');
    const p = spawn(process.execPath, [bin, 'train', '--spec', file, '--out', out, '--no-samples', '--engine', engine], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d) => { stderr += String(d); });
    const code = exited(p);
    await until(() => lines(out) >= 3);
    p.kill('SIGINT');
    expect(await code).toBe(130);
    expect(stderr).toMatch(/interrupted \(SIGINT\): stopping after this step/);
    expect(stderr).toMatch(new RegExp(`interrupted after step \\d+: the checkpoint in ${out} is saved; continue with: npx diffactor train --resume ${out}`));
    const at = loadCheckpoint(path.join(out, 'checkpoint.safetensors')).state.step;
    expect(at).toBeGreaterThanOrEqual(3);
    expect(at).toBeLessThan(STEPS);
    expect(existsSync(path.join(out, '.lock'))).toBe(false);
    const r = spawn(process.execPath, [bin, 'train', '--resume', out, '--no-samples', '--engine', engine], { stdio: 'ignore' });
    expect(await exited(r)).toBe(0);
    const whole = path.join(dir, 'whole');
    if (engine === 'actors') await runActors({ spec: spec(), out: whole, quiet: true, samples: false });
    else runTraining({ spec: spec(), out: whole, quiet: true, samples: false });
    expect(metrics(out)).toEqual(metrics(whole));
  }, 180_000);

  it('the trainer stops with a checkpoint when its parent (the npx wrapper) is killed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'orphan-'));
    const file = path.join(dir, 'spec.yaml');
    // Many tiny steps: the trainer checks its parent every 0.5 s, and on a quiet machine 40 steps
    // of the tiny spec end sooner than that (CI on 7b60f0c: the run finished before it noticed).
    const long = spec();
    writeFileSync(file, stringify({ ...long, train: { ...long.train, steps: ORPHAN_STEPS } }));
    const out = path.join(dir, 'run'), pidFile = path.join(dir, 'child.pid');
    // A wrapper like npm exec: starts the trainer and does not pass signals on.
    const wrapper = spawn(process.execPath, ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ${JSON.stringify([bin, 'train', '--spec', file, '--out', out, '--no-samples'])}, { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));
      setInterval(() => {}, 1000);
    `], { stdio: 'ignore' });
    await until(() => existsSync(pidFile) && lines(out) >= 2);
    const child = Number(readFileSync(pidFile, 'utf8'));
    wrapper.kill('SIGKILL');
    await until(() => !processAlive(child));
    const c = loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
    expect(c.state.step).toBeGreaterThanOrEqual(2);
    expect(c.state.step).toBeLessThan(ORPHAN_STEPS);
  }, 180_000);
});
