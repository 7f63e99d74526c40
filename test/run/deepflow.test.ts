// DeepFlow end to end on the tiny spec (test/actors/specs.ts TINY: 3 blocks cut after 1 and 2, K = 3):
// on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with its `ds_1`, `ds_2`,
// `acc` terms and the batch's gap sign, weights, EMA, optimiser, RNG); the checkpoint holds the VeRA
// blocks and both velocity heads under official names; the final grid and `diffactor sample` draw
// with the DeepFlow SiT (v_K, every branch at t); the evaluation (FD, probe after a cut) runs on it.
import { describe, expect, it } from 'vitest';
import { DeepFlowSiT } from '../../src/methods/deepflow/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith } from './methodRun.ts';

describe('DeepFlow runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; VeRA blocks in the checkpoint; the grid and `sample` draw with the DeepFlow SiT', async () => {
    const { dir, metrics, checkpoint } = await expectResumeExact('deepflow', tinySpec('deepflow'), ['diff', 'ds_1', 'ds_2', 'acc']);
    for (const l of metrics) expect([1, -1]).toContain(l.gap_sign);
    const keys = [...checkpoint.model.keys()];
    for (const k of ['df_blocks.0.acc_mlp.6.weight', 'df_blocks.1.cross_attention.multihead_attn.in_proj_weight', 'dt_embedder.mlp.0.weight', 'final_layer.0.linear.weight', 'final_layer.1.linear.weight', 'final_acc_layer.linear.weight']) {
      expect(keys, k).toContain(k);
    }
    expectSamplesWith('deepflow', dir, DeepFlowSiT);
  }, 240_000);

  it('evaluation: finite metrics from the DeepFlow SiT, the probe reading h\' after the first cut', () => {
    expectEvaluates('deepflow', DeepFlowSiT, { block: 1, moves: true });
  }, 120_000);
});
