// UniFlow's tokenizer end to end on the tiny spec (test/actors/specs.ts TINY: the student copies the
// 1-block encoder, 4×4×16 tokens → z 2×2×4 → 3 GTBs of width 32 → a 2-block flow MLP on 4×4 patches):
// on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics, weights, EMA, optimiser,
// RNG); every loss term is logged and finite; step 1 starts from the teacher (α_l = 0, w_l = l/Σk)
// and training moves the student away from it (α > 0 later); the checkpoint holds the student
// encoder, the decoder and the reference images and no teacher tensor; the final grid and
// `diffactor sample` render reconstructions with the tokenizer; a plain SiT refuses its weights.
import { describe, expect, it } from 'vitest';
import { UniFlowModel } from '../../src/methods/uniflow/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith } from './methodRun.ts';

describe('UniFlow tokenizer runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; student, decoder and references in the checkpoint; the grid and `sample` reconstruct', async () => {
    const { dir, metrics, checkpoint } = await expectResumeExact('uniflow', tinySpec('uniflow'), ['diff', 'dist', 'alpha_1', 'w_1']);
    expect(metrics[0].alpha_1).toBeLessThan(1e-6); // the student is the teacher at step 1
    expect(metrics[0].w_1).toBeCloseTo(1, 6); // one encoder block: w_1 = 1
    expect(metrics[5].alpha_1).toBeGreaterThan(0);
    const keys = [...checkpoint.model.keys()];
    for (const k of ['encoder.cls_token', 'encoder.blocks.0.attn.qkv.weight', 'encoder.norm.weight', 'decoder.down.0.weight', 'decoder.up.weight', 'decoder.blocks.2.attn.qkv.weight', 'decoder.flow.final_linear.weight', 'decoder.pos_embed', 'ref_images']) expect(keys, k).toContain(k);
    expect(keys.filter((k) => /teacher/.test(k))).toEqual([]);
    const m = checkpoint.opt.get('encoder.blocks.0.attn.qkv.weight.exp_avg');
    expect(m && m.data.some((v) => v !== 0)).toBe(true); // the student trains
    expectSamplesWith('uniflow', dir, UniFlowModel);
  }, 240_000);
});
