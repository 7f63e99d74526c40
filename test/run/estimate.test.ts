// The expected duration every `train` prints near its start (issue 19): both engines, fresh and
// --resume, print it after timing their own first steps, and a run that printed it writes the same
// checkpoint, byte for byte, as one that did not (the measurement adds no computation: no random
// stream, weight or data position can differ).
import { describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { DurationEstimate, MEASURED, gridSeconds } from '../../src/run/estimate.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'estimate-'));
const spec = (steps: number) => tinySpec('sit-baseline', { train: { ...tinySpec('sit-baseline').train, steps, checkpoint_every: 4 } });

/** Run `f` with stderr lines captured; returns the lines that are estimates. */
async function estimates(f: () => unknown): Promise<string[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    await f();
  } finally {
    spy.mockRestore();
  }
  return lines.filter((l) => l.includes('expected duration'));
}

describe('expected duration', () => {
  it('times the steps after the first, then prints steps × s/step', () => {
    const e = new DurationEstimate({ startStep: 0, startWall: 0, total: 100, batchSize: 8, grid: null });
    expect(e.printAt).toBe(1 + MEASURED);
    // The first step is slow (warm-up), the next ones take 0.5 s each.
    const walls = [0, 5, 5.5, 6, 6.5];
    for (let k = 1; k < e.printAt; k++) expect(e.observe(k, walls[k])).toBeNull();
    const line = e.observe(e.printAt, walls[e.printAt])!;
    expect(line).toMatch(/^expected duration: 100 steps × 500 ms\/step ≈ 50s; about 48s from now/);
    expect(line).toMatch(/measured over steps 2–4, the first step left out as warm-up/);
    expect(e.observe(5, 7)).toBeNull(); // once
  });

  it('a resumed run with few steps left times what there is', () => {
    const e = new DurationEstimate({ startStep: 40, startWall: 100, total: 43, batchSize: 8, grid: null });
    expect(e.printAt).toBe(42);
    expect(e.observe(41, 102)).toBeNull();
    expect(e.observe(42, 104)).toMatch(/^expected duration: 3 steps × 2\.00 s\/step ≈ 6s; about 2s from now.*steps 41–42, including the first step's warm-up/);
    expect(new DurationEstimate({ startStep: 42, startWall: 0, total: 43, batchSize: 8, grid: null }).observe(43, 1)).toBeNull();
  });

  it('the grid costs NFE forwards of its images, a third of a training image each, doubled under guidance', () => {
    const sample = { sampler: 'heun', steps: 10, cfg: 2, guidance_low: 0, guidance_high: 1, per_class: 4 } as const;
    // 40 images × 19 calls × 2 (cfg) forwards; a step is 3 × 8 forwards in 1.2 s.
    expect(gridSeconds(1.2, 8, { images: 40, sample })).toBeCloseTo((1.2 / 24) * 40 * 19 * 2, 9);
  });

  it('the reference engine prints it, fresh and resumed, and the checkpoint equals a quiet run\'s', async () => {
    const loud = tmp(), quiet = tmp();
    const fresh = await estimates(() => runTraining({ spec: spec(6), out: loud, samples: false }));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatch(/^expected duration: 6 steps × .*measured over steps 2–4/);
    const resumed = await estimates(() => runTraining({ out: loud, resume: true, steps: 12, samples: false }));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatch(/^expected duration: 6 steps × .*measured over steps 8–10/);
    // The same runs (6 steps, then resumed to 12) with nothing printed.
    runTraining({ spec: spec(6), out: quiet, samples: false, quiet: true });
    runTraining({ out: quiet, resume: true, steps: 12, samples: false, quiet: true });
    expect(readFileSync(path.join(loud, 'checkpoint.safetensors')).equals(readFileSync(path.join(quiet, 'checkpoint.safetensors')))).toBe(true);
  }, 120_000);

  it('the actor engine prints it, fresh and resumed, and the checkpoint equals a quiet run\'s', async () => {
    const loud = tmp(), quiet = tmp();
    const fresh = await estimates(() => runActors({ spec: spec(6), out: loud, samples: false, placement: 'local' }));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatch(/^expected duration: 6 steps × /);
    const resumed = await estimates(() => runActors({ out: loud, resume: true, steps: 12, samples: false, placement: 'local' }));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatch(/measured over steps 8–10/);
    await runActors({ spec: spec(6), out: quiet, samples: false, quiet: true, placement: 'local' });
    await runActors({ out: quiet, resume: true, steps: 12, samples: false, quiet: true, placement: 'local' });
    expect(readFileSync(path.join(loud, 'checkpoint.safetensors')).equals(readFileSync(path.join(quiet, 'checkpoint.safetensors')))).toBe(true);
  }, 120_000);
});
