// A training checkpoint, filtered of its prefixed keys, loads into the PyTorch reference SiT with
// load_state_dict(strict=True), and PyTorch's output equals `diffactor predict`'s.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSpec } from '../../src/spec/load.ts';
import { runTraining } from '../../src/run/run.ts';
import { predict } from '../../src/cli/predict.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';

const python = '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const noTorch = probe.status === 0 ? null : `${python} has no torch/numpy`;
const script = path.resolve(import.meta.dirname, '../fixtures/check_sit_checkpoint.py');

describe('checkpoint interop with PyTorch', () => {
  it.skipIf(noTorch !== null)(`loads strictly after dropping prefixed keys and predicts the same${noTorch ? ` (skipped: ${noTorch})` : ''}`, () => {
    const d = mkdtempSync(path.join(tmpdir(), 'interop-'));
    const spec = parseSpec({
      name: 'interop', seed: 1, data: { dataset: 'builtin', size: 16, builtin_count: 32 },
      model: { preset: 'SiT-S/4', hidden_size: 32, depth: 2, num_heads: 2 },
      train: { steps: 3, batch_size: 8, lr: 1e-2, warmup_steps: 0 },
    });
    runTraining({ spec, out: d, quiet: true, samples: false });
    const ckpt = path.join(d, 'checkpoint.safetensors');
    const rng = new Rng(5);
    const inputs = path.join(d, 'inputs.safetensors');
    writeSafetensors(inputs, { x: rng.normal([4, 3, 16, 16]), t: rng.uniform([4]), y: tensor([0, 3, 9, 10], [4]) });
    predict({ checkpoint: ckpt, inputs, out: path.join(d, 'ours.safetensors') });
    const r = spawnSync(python, [script, ckpt, inputs, path.join(d, 'torch.safetensors')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const ours = readSafetensors(path.join(d, 'ours.safetensors')).tensors.get('out')!;
    const theirs = readSafetensors(path.join(d, 'torch.safetensors')).tensors.get('out.pred')!;
    expect(theirs.shape).toEqual(ours.shape);
    let maxDiff = 0, maxAbs = 0;
    for (let i = 0; i < ours.size; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours.data[i] - theirs.data[i]));
      maxAbs = Math.max(maxAbs, Math.abs(theirs.data[i]));
    }
    expect(maxAbs).toBeGreaterThan(0); // three steps of training moved the zero-initialised output
    expect(maxDiff, `first values ours ${Array.from(ours.data.slice(0, 4))} torch ${Array.from(theirs.data.slice(0, 4))}`).toBeLessThan(1e-4 * Math.max(1, maxAbs));
  });
});
