// train.precision: the spec field (default fp32, bf16, a clear error otherwise), the role wrapper
// that runs a trained role's methods with bf16 Linear products (atTrainPrecision), and both
// engines on a tiny run: bf16 losses are not fp32's yet stay within 1e-3 relative over 4 steps,
// and the actor run (in-thread actors) gives the reference engine's bf16 losses.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSpec } from '../../src/spec/load.ts';
import { runTraining } from '../../src/run/run.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { atTrainPrecision } from '../../src/actors/roles/common.ts';
import { getLinearPrecision } from '../../src/autograd/index.ts';

const tiny = (precision?: 'fp32' | 'bf16') => parseSpec({
  name: 'tiny',
  seed: 3,
  data: { dataset: 'builtin', size: 16, builtin_count: 64 },
  model: { preset: 'SiT-S/4', hidden_size: 32, depth: 2, num_heads: 2 },
  train: { steps: 4, batch_size: 8, lr: 1e-3, checkpoint_every: 100, log_every: 1, ...(precision ? { precision } : {}) },
  sample: { sampler: 'euler', steps: 2, per_class: 1 },
});
const dir = () => mkdtempSync(path.join(tmpdir(), 'precision-'));

describe('train.precision', () => {
  it('defaults to fp32, takes bf16, and names the field on a bad value', () => {
    expect(tiny().train.precision).toBe('fp32');
    expect(tiny('bf16').train.precision).toBe('bf16');
    expect(() => parseSpec({ name: 'x', train: { precision: 'fp16' } })).toThrow(/train\.precision: must be one of "fp32", "bf16"/);
  });

  it('atTrainPrecision: bf16 inside the role\'s methods only; fp32 leaves the behaviour as it is', () => {
    const seen: string[] = [];
    const b = { n: 1, forward(x: number) { seen.push(getLinearPrecision()); return x + this.n; } };
    expect(atTrainPrecision(tiny('fp32'), b)).toBe(b);
    const w = atTrainPrecision(tiny('bf16'), b);
    expect(w.forward(2)).toBe(3);
    expect(w.n).toBe(1);
    expect(seen).toEqual(['bf16']);
    expect(getLinearPrecision()).toBe('fp32');
  });

  it('bf16 runs follow fp32 within 1e-3 relative, and the actor run equals the reference engine', async () => {
    const f32 = runTraining({ spec: tiny(), out: dir(), quiet: true, samples: false }).logs.map((l) => l.loss);
    const ref = runTraining({ spec: tiny('bf16'), out: dir(), quiet: true, samples: false }).logs.map((l) => l.loss);
    const act = (await runActors({ spec: tiny('bf16'), out: dir(), quiet: true, samples: false, placement: 'local' })).logs.map((l) => l.loss);
    expect(ref).toHaveLength(4);
    expect(ref.slice(1).some((v, i) => v !== f32[i + 1])).toBe(true);
    for (let i = 0; i < 4; i++) expect(Math.abs(ref[i] - f32[i]) / f32[i]).toBeLessThan(1e-3);
    expect(act).toEqual(ref);
  });
});
