// What a run directory records for its readers (`diffactor serve`, issue 17): a sample grid per
// evaluation step (evals/step-<N>.png) drawn from the same EMA weights the evaluation measured —
// byte-equal to a grid drawn in process from the checkpoint of that step — and failure.json when a
// run stops on an error (not when it is interrupted), removed when the directory is opened again;
// an evaluation lost with a stopped run is taken when it resumes.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { runActors } from '../../src/run/actorRun.ts';
import { runTraining } from '../../src/run/run.ts';
import { openRun, RunInterrupted } from '../../src/run/runDir.ts';
import { EVALS_DIR, FAILURE_FILE, evalGridName } from '../../src/run/layout.ts';
import { NonFiniteLossError } from '../../src/run/reference.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { backboneForWeights } from '../../src/build/parts.ts';
import { drawSamples } from '../../src/build/draw.ts';
import { gridPng } from '../../src/io/png.ts';
import { evalSampleSettings } from '../../src/eval/evaluate.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { EVAL_GRID_ROWS } from '../../src/actors/roles/evaluator.ts';
import type { SiT } from '../../src/models/sit.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = (p: string) => mkdtempSync(path.join(tmpdir(), p));

/** A tiny sit-baseline run of 6 steps, checkpointed and evaluated every 3, with stand-ins written to dir. */
function evaluatingSpec(dir: string) {
  const { classifier, encoder } = writeTestStandins(dir);
  const base = tinySpec('sit-baseline');
  return tinySpec('sit-baseline', {
    train: { ...base.train, steps: 6, checkpoint_every: 3, eval_every: 3 },
    eval: { samples: 20, steps: 2, reference: 30, probe_train: 30, probe_test: 20, classifier, encoder, sfid_channels: 2 },
  });
}

describe('evaluation grids', () => {
  it('evals/step-<N>.png at each evaluation step: one sample of every class per row, the evaluated EMA weights, drawn as the evaluation draws', async () => {
    const dir = tmp('evalgrid-');
    const spec = evaluatingSpec(dir);
    const out = path.join(dir, 'run');
    await runActors({ spec, out, quiet: true, samples: false });
    expect(existsSync(path.join(out, EVALS_DIR, evalGridName(3)))).toBe(true);
    const file = path.join(out, EVALS_DIR, evalGridName(6));
    expect(path.basename(file)).toBe('step-000006.png');
    const png = PNG.sync.read(readFileSync(file));
    // The step-6 checkpoint's EMA, drawn here as the evaluation draws (eval.steps, eval.cfg, its seed): the same bytes.
    const c = loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
    expect(c.state.step).toBe(6);
    const K = c.config.numClasses, side = c.config.inputSize;
    const model = backboneForWeights(c.spec, c.config, c.ema);
    model.loadStateDict(c.ema);
    model.eval();
    const labels = Array.from({ length: K * EVAL_GRID_ROWS }, (_, i) => i % K);
    const images = drawSamples(model as SiT, evalSampleSettings(c.spec), { seed: c.spec.seed + 7919, labels });
    const expected = gridPng(images, labels.length, c.config.inChannels, side, side, K, 1, 2);
    const want = PNG.sync.read(expected);
    expect([png.width, png.height]).toEqual([(K * (side + 1) + 1) * 2, (EVAL_GRID_ROWS * (side + 1) + 1) * 2]);
    expect([png.width, png.height]).toEqual([want.width, want.height]);
    expect(Buffer.compare(png.data, want.data)).toBe(0);
    // The step-3 grid is of other weights.
    const at3 = PNG.sync.read(readFileSync(path.join(out, EVALS_DIR, evalGridName(3))));
    expect(Buffer.compare(at3.data, want.data)).not.toBe(0);
  }, 120_000);
});

describe('failure.json', () => {
  const tiny = (over: Record<string, unknown> = {}) => parseSpec({
    name: 'tiny', seed: 3,
    data: { dataset: 'builtin', size: 16, builtin_count: 64 },
    model: { preset: 'SiT-S/4', hidden_size: 32, depth: 2, num_heads: 2 },
    train: { steps: 10, batch_size: 8, lr: 1e12, checkpoint_every: 1, log_every: 1, warmup_steps: 0, grad_clip: 1e30 },
    sample: { sampler: 'euler', steps: 2, per_class: 1 },
    ...over,
  });

  it('a diverged run records its step and reason; opening the directory again removes it', () => {
    const out = tmp('failure-');
    let err: unknown;
    try { runTraining({ spec: tiny(), out, quiet: true, samples: false }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NonFiniteLossError);
    const f = JSON.parse(readFileSync(path.join(out, FAILURE_FILE), 'utf8'));
    expect(f.step).toBe((err as NonFiniteLossError).step);
    expect(f.reason).toBe((err as Error).message);
    expect(f.reason).toMatch(/step \d+/);
    expect(Number.isNaN(Date.parse(f.time))).toBe(false);
    const again = openRun({ out, resume: true, quiet: true }, 'test');
    again.lock.release();
    expect(existsSync(path.join(out, FAILURE_FILE))).toBe(false);
  });

  it('an interrupted run is not a failure', () => {
    const out = tmp('interrupted-');
    const ctl = new AbortController();
    ctl.abort();
    expect(() => runTraining({ spec: tiny({ train: { steps: 10, batch_size: 8, lr: 1e-3, checkpoint_every: 5, warmup_steps: 0 } }), out, quiet: true, samples: false, signal: ctl.signal })).toThrow(RunInterrupted);
    expect(existsSync(path.join(out, FAILURE_FILE))).toBe(false);
  });
});

describe('an evaluation lost with its run', () => {
  it('a run stopped while the evaluation at its checkpoint step was in flight takes it on resume, once', async () => {
    const dir = tmp('evalresume-');
    const spec = evaluatingSpec(dir);
    const out = path.join(dir, 'run');
    const stop = new AbortController();
    await expect(runActors({ spec, out, quiet: true, samples: false, signal: stop.signal, onStep: (l) => { if (l.step === 3) stop.abort(); } })).rejects.toBeInstanceOf(RunInterrupted);
    const metrics = path.join(out, 'metrics.jsonl');
    // As when the process dies before the step-3 evaluation lands (the claim run killed mid-evaluation).
    writeFileSync(metrics, readFileSync(metrics, 'utf8').split('\n').filter((l) => !l.includes('"eval":true')).join('\n'));
    expect(loadCheckpoint(path.join(out, 'checkpoint.safetensors')).state.step).toBe(3);
    await runActors({ out, resume: true, quiet: true, samples: false });
    const evals = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.eval);
    expect(evals.map((r) => r.step)).toEqual([3, 6]);
    expect(Number.isFinite(evals[0].fd)).toBe(true);
    // Resuming a run whose evaluation at the checkpoint step landed adds none.
    const again = tmp('evalresume2-');
    const out2 = path.join(again, 'run');
    const stop2 = new AbortController();
    await expect(runActors({ spec, out: out2, quiet: true, samples: false, signal: stop2.signal, onStep: (l) => { if (l.step === 3) stop2.abort(); } })).rejects.toBeInstanceOf(RunInterrupted);
    await runActors({ out: out2, resume: true, quiet: true, samples: false });
    const steps2 = readFileSync(path.join(out2, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.eval).map((r) => r.step);
    expect(steps2).toEqual([3, 6]); // step 3 once: before the stop or on resume, never both
  }, 180_000);
});
