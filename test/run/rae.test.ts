// RAE stage 1 (the decoder) end to end on the tiny spec (test/actors/specs.ts TINY: the encoder's
// 4×4×16 tokens → a 3-block ViT decoder → 16 px; D from step 2, the GAN term from step 3): on
// actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics, weights, EMA, optimiser, RNG);
// every loss term is logged and finite, the GAN terms are 0 before their steps and not after; the
// checkpoint holds the decoder, the discriminator and the buffers; the final grid and `diffactor
// sample` render reconstructions with the decoder; a plain SiT refuses its weights.
import { describe, expect, it } from 'vitest';
import { RaeDecoderModel } from '../../src/methods/rae/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith } from './methodRun.ts';

describe('RAE stage 1 runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; decoder and D in the checkpoint; the grid and `sample` draw with the decoder', async () => {
    const { dir, metrics, checkpoint } = await expectResumeExact('rae', tinySpec('rae'), ['diff', 'l1', 'lpips', 'gan', 'disc']);
    // Step 1: neither GAN term; step 2: D only; from step 3 both (terms logged before weighting).
    expect(metrics[0].disc).toBe(0);
    expect(metrics[0].gan).toBe(0);
    expect(metrics[1].disc).toBeGreaterThan(0);
    expect(metrics[1].gan).toBe(0);
    expect(metrics[2].gan).not.toBe(0);
    const keys = [...checkpoint.model.keys()];
    for (const k of ['decoder.decoder_embed.weight', 'decoder.decoder_pred.weight', 'decoder.trainable_cls_token', 'disc.main.0.weight', 'enc_norm_weight', 'enc_norm_bias', 'ref_tokens']) expect(keys, k).toContain(k);
    // D's parameters were updated by the shared optimiser (its first moment is non-zero).
    const m = checkpoint.opt.get('disc.main.0.weight.exp_avg');
    expect(m && m.data.some((v) => v !== 0)).toBe(true);
    expectSamplesWith('rae', dir, RaeDecoderModel);
  }, 240_000);
});
