// `diffactor predict` runs the model a checkpoint's methods sample with: REPA-E's SiT without its
// latent BN (x is a BN-normalised latent), REG's SiT with its noisy class token `cls` as an extra
// input and output. Missing or misshapen inputs are refused in one line, not a key dump.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { predict } from '../../src/cli/predict.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { createSiT } from '../../src/models/sit.ts';
import { createRegSiT } from '../../src/models/reg.ts';
import { noGrad } from '../../src/autograd/index.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { fromData, type Tensor } from '../../src/tensor/tensor.ts';
import { untrainedCheckpoint } from './checkpoints.ts';

describe('diffactor predict', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'predict-cli-'));
  const t = fromData(new Float32Array([0.3, 0.7]), [2]), y = fromData(new Float32Array([1, 2]), [2]);
  const inputs = (name: string, extra: Record<string, Tensor>, x: Tensor) => {
    const file = path.join(dir, `${name}-in.safetensors`);
    writeSafetensors(file, new Map([['x', x], ['t', t], ['y', y], ...Object.entries(extra)]));
    return file;
  };

  it('runs a REPA-E checkpoint\'s SiT on BN-normalised latents (its BN is not applied)', () => {
    const { file, c } = untrainedCheckpoint(dir, 'repa-e');
    expect([...c.ema.keys()].some((k) => k.startsWith('bn.'))).toBe(true);
    const { inChannels: C, inputSize: S } = c.config;
    const x = new Rng(1).normal([2, C, S, S]);
    const out = path.join(dir, 'repae-out.safetensors');
    predict({ checkpoint: file, inputs: inputs('repae', {}, x), out, ema: true });
    const plain = createSiT(c.config, 0).eval();
    plain.loadStateDict(new Map([...c.ema].filter(([k]) => !k.startsWith('bn.'))));
    const want = noGrad(() => plain.forward(x, t, y).out);
    expect(Array.from(readSafetensors(out).tensors.get('out')!.data)).toEqual(Array.from(want.data));
    expect(() => predict({ checkpoint: file, inputs: inputs('repae-pixels', {}, new Rng(1).normal([2, 3, 16, 16])), out }))
      .toThrow(/^\S+: x is \(2,3,16,16\) but this model reads \(B,4,4,4\) BN-normalised repa-e latents$/);
  });

  it('runs a REG checkpoint with its class token and writes both outputs; without cls it says so in one line', () => {
    const { file, c } = untrainedCheckpoint(dir, 'reg');
    const { inChannels: C, inputSize: S } = c.config;
    const d = c.model.get('cls_projectors2.weight')!.shape[1];
    const x = new Rng(2).normal([2, C, S, S]), cls = new Rng(3).normal([2, d]);
    const out = path.join(dir, 'reg-out.safetensors');
    predict({ checkpoint: file, inputs: inputs('reg', { cls }, x), out });
    const m = createRegSiT(c.config, d, 0).eval();
    m.loadStateDict(c.model);
    const want = noGrad(() => m.forward(x, t, y, { cls }));
    const got = readSafetensors(out).tensors;
    expect(Array.from(got.get('out')!.data)).toEqual(Array.from(want.out.data));
    expect(Array.from(got.get('cls')!.data)).toEqual(Array.from(want.cls.data));
    expect(() => predict({ checkpoint: file, inputs: inputs('reg-nocls', {}, x), out }))
      .toThrow(/^\S+: missing tensor 'cls' \(\S+ needs x, t, y, cls; see `diffactor predict --help`\)$/);
  });
});
