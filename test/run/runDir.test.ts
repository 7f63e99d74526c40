// What the run directory guarantees (issue: runs that cannot be silently wrong): a second run on a
// directory is refused naming the first; a torn last line of metrics.jsonl is dropped with a notice
// and a damaged earlier line is refused naming file and line; a failed append names the file; the
// temporary files of killed writers are removed; `--resume --steps N` below the checkpoint and a
// resume of a finished run are refused; extending a cosine schedule says so; a checkpoint with a
// non-finite tensor anywhere (weights, EMA, heads, optimiser) is refused, the last one kept.
import { describe, expect, it, vi } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { openRun, saveCheckedCheckpoint } from '../../src/run/runDir.ts';
import { RunLog, truncateMetrics } from '../../src/run/runLog.ts';
import { RunDirLocked } from '../../src/io/lock.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'rundir-'));
const spec = (steps: number, over: Record<string, unknown> = {}) => tinySpec('sit-baseline', { train: { ...tinySpec('sit-baseline').train, steps, checkpoint_every: 2, ...over } });

describe('run directory', () => {
  it('a second run on the same directory is refused while the first holds it, naming the holder', async () => {
    const out = tmp();
    let second: unknown = null;
    await runActors({
      spec: spec(3), out, quiet: true, samples: false, placement: 'local',
      onStep: (l) => { if (l.step === 1) { try { runTraining({ spec: spec(3), out, quiet: true, samples: false }); } catch (e) { second = e; } } },
    });
    expect(second).toBeInstanceOf(RunDirLocked);
    expect((second as Error).message).toMatch(new RegExp(`${out} is in use by another run: pid ${process.pid}`));
    // The first run was not disturbed, and the lock went with it.
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    expect(existsSync(path.join(out, '.lock'))).toBe(false);
  }, 60_000);

  it('a torn last metrics line is dropped with a notice on resume; a bad earlier line is refused naming file and line', () => {
    const out = tmp();
    runTraining({ spec: spec(4), out, quiet: true, samples: false });
    const m = path.join(out, 'metrics.jsonl');
    appendFileSync(m, '{"step":5,"loss":0.4,"terms":{"di'); // a kill mid-append
    const warned: string[] = [];
    truncateMetrics(m, 4, (l) => warned.push(l));
    expect(warned[0]).toMatch(/metrics\.jsonl: dropped a torn last line \(line 5/);
    expect(readFileSync(m, 'utf8').trim().split('\n')).toHaveLength(4);
    const lines = readFileSync(m, 'utf8').split('\n');
    lines[1] = '{"step":2,"lo';
    writeFileSync(m, lines.join('\n'));
    expect(() => truncateMetrics(m, 4, () => {})).toThrow(new RegExp(`${m.replace(/[.]/g, '\\.')}: line 2 is not JSON .*not the last line`));
  }, 60_000);

  it('a failed append names the file', () => {
    const dir = tmp();
    const file = path.join(dir, 'metrics.jsonl');
    mkdirSync(file); // appending to a directory fails like a full disk would: with an errno
    const log = new RunLog(file, { steps: 1, log_every: 1 });
    expect(() => log.step({ step: 1, loss: 1, terms: {}, lr: 1, grad_norm: 1 }, 0)).toThrow(new RegExp(`cannot append to ${file.replace(/[.]/g, '\\.')}: `));
  });

  it('removes the temporary files a killed checkpoint write left, on resume', () => {
    const out = tmp();
    runTraining({ spec: spec(2), out, quiet: true, samples: false });
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    const stale = path.join(out, `.checkpoint.safetensors.${dead}.0a1b2c3d4e5f.tmp`);
    writeFileSync(stale, 'half a checkpoint');
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      runTraining({ out, resume: true, steps: 3, samples: false, quiet: false });
      expect(spy.mock.calls.map((c) => String(c[0])).some((l) => /removed 1 temporary file\(s\) a killed writer left/.test(l))).toBe(true);
    } finally {
      spy.mockRestore();
    }
    expect(existsSync(stale)).toBe(false);
  }, 60_000);

  it('refuses --steps at or below the checkpoint, and a resume of a finished run; says when a cosine schedule is stretched', () => {
    const out = tmp();
    runTraining({ spec: spec(4, { schedule: 'cosine' }), out, quiet: true, samples: false });
    expect(() => openRun({ out, resume: true, steps: 3, quiet: true }, 'test')).toThrow(/--steps 3: the checkpoint is already at step 4; --steps must be above it/);
    expect(() => openRun({ out, resume: true, quiet: true }, 'test')).toThrow(/the run already finished at step 4; pass --steps N with N > 4/);
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      openRun({ out, resume: true, steps: 6 }, 'test').lock.release();
      expect(String(spy.mock.calls[0]?.[0])).toMatch(/cosine learning-rate schedule now spans 6 steps instead of 4, so from step 5 on/);
    } finally {
      spy.mockRestore();
    }
  }, 60_000);

  it('a non-finite tensor anywhere in a checkpoint is refused naming it; the last checkpoint stays', () => {
    const out = tmp();
    runTraining({ spec: spec(2), out, quiet: true, samples: false });
    const file = path.join(out, 'checkpoint.safetensors');
    const before = readFileSync(file);
    const c = loadCheckpoint(file);
    const [name, t] = [...c.opt].find(([k]) => k.endsWith('exp_avg_sq'))!;
    t.data[0] = Infinity;
    expect(() => saveCheckedCheckpoint(file, c, (n) => new Error(`not finite: ${n}`))).toThrow(`not finite: opt.${name}`);
    expect(readFileSync(file).equals(before)).toBe(true);
  }, 60_000);
});
