// DDT end to end on the tiny spec (test/actors/specs.ts TINY: 3 blocks, encoder 2, decoder 1,
// sharing period 2): on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics,
// weights, EMA, optimiser, RNG); the checkpoint holds both embedders, the q/k norms and SwiGLU
// under the official names; the final grid and `diffactor sample` draw with the DDT (its Euler
// sampler with encoder sharing; the DP schedule and its period through --set; a generic sampler
// with sharing on is refused, naming the field); the evaluation (FD, probe on an encoder block) runs on it.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { DDT } from '../../src/methods/ddt/model.ts';
import { sample } from '../../src/cli/sample.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith, tmpDir } from './methodRun.ts';

describe('DDT runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; DDT weights in the checkpoint; the grid and `sample` draw with the DDT', async () => {
    const { dir, checkpoint } = await expectResumeExact('ddt', tinySpec('ddt'), ['diff']);
    const keys = [...checkpoint.model.keys()];
    for (const k of ['s_embedder.proj.weight', 'x_embedder.proj.weight', 'blocks.0.attn.q_norm.weight', 'blocks.2.attn.k_norm.weight', 'blocks.1.mlp.w3.weight', 'blocks.2.adaLN_modulation.0.weight', 'final_layer.adaLN_modulation.0.weight']) {
      expect(keys, k).toContain(k);
    }
    const model = expectSamplesWith('ddt', dir, DDT) as DDT;
    expect(model.sampling.period).toBe(2);
    const ckpt = path.join(dir, 'checkpoint.safetensors');
    const png = path.join(tmpDir('ddt', 'dp'), 'grid.png');
    sample({ checkpoint: ckpt, out: png, sampler: 'euler', steps: 4, perClass: 1, set: ['ddt.share_schedule=dp', 'ddt.share_period=2', 'ddt.dp_template_images=2'] });
    expect(existsSync(png)).toBe(true);
    expect(() => sample({ checkpoint: ckpt, out: png, sampler: 'heun', steps: 2, perClass: 1 })).toThrow(/ddt\.share_period 2 .* must be euler, got heun/);
    sample({ checkpoint: ckpt, out: png, sampler: 'heun', steps: 2, perClass: 1, set: ['ddt.share_period=1'] });
  }, 240_000);

  it('evaluation: finite metrics from the DDT, the probe reading encoder block 1', () => {
    expectEvaluates('ddt', DDT, { block: 1, moves: true });
  }, 120_000);
});
