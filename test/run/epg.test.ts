// EPG end to end on the tiny specs (test/actors/specs.ts TINY: 16 px, a 3-block encoder of width
// 32, patch 4). Stage 1 ('pretrain', curriculum 2 → 8 over 6 steps): on actors, 6 steps equal
// 3 steps + a resume of 3 bit for bit (metrics with `contrastive` and `consistency`, weights, the
// EMA target buffers, optimiser, RNG) and agree with the reference engine to 1e-6; the target moved away from the online weights and its step
// counter is 6; the grid (view pairs) and `sample` draw with the stage-1 model. Stage 2
// ('diffusion') from that checkpoint (`init`): its encoder starts as stage 1's EMA encoder; 6 steps
// == 3 + resume 3 (`x0`, `diff`); the final grid, `diffactor sample` with --steps 1 and 2; a plain
// SiT refuses its weights, and stage 2 refuses a stage-1 file's weights as its own.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { sample } from '../../src/cli/sample.ts';
import { Trainer } from '../../src/run/reference.ts';
import { checkSpecConsistency, openTrainData } from '../../src/build/setup.ts';
import { samplingModel } from '../../src/build/parts.ts';
import { EPG_PREFIX, EpgModel, EpgPretrainModel } from '../../src/methods/epg/model.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { noGrad, slice } from '../../src/autograd/index.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { expectClose } from '../kernels/expectClose.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith, readCheckpoint, tmpDir } from './methodRun.ts';

const PRE = { stage: 'pretrain', curriculum: [2, 8], curriculum_steps: 6, projector_dim: 16, projector_out: 8, ref_per_class: 1 };

describe('EPG runs', () => {
  it('stage 1 then stage 2 on actors: resume exact, the target in the checkpoint, init from stage 1, grids and `sample --steps 1`', async () => {
    const pre = tinySpec('epg', { name: 'tiny-epg-pretrain', epg: PRE });
    const { dir: a, metrics: m1, checkpoint: c1 } = await expectResumeExact('epg-pretrain', pre, ['contrastive', 'consistency']);
    for (const l of m1) {
      expect(l.loss).toBeCloseTo(l.contrastive + l.consistency, 5);
      expect(l.diff).toBe(0); // out = target = x, at weight 0
    }
    expect(c1.model.get('target_step')!.data[0]).toBe(6);
    const online = c1.model.get('online.encoder.blocks.0.attn.qkv.weight')!, target = c1.model.get('target.encoder_blocks_0_attn_qkv_weight')!;
    expect(Array.from(target.data)).not.toEqual(Array.from(online.data));
    expect(Array.from(c1.ema.get('target.encoder_blocks_0_attn_qkv_weight')!.data)).toEqual(Array.from(target.data)); // copied, not averaged
    expectSamplesWith('epg-pretrain', a, EpgPretrainModel);
    // The reference engine (one tape) gives the same stage-1 run: losses, weights, target buffers.
    const ref = new Trainer({ ...pre, train: { ...pre.train, steps: 6, checkpoint_every: 3, schedule: 'constant' } }, openTrainData(pre));
    const refLogs = Array.from({ length: 6 }, () => ref.trainStep());
    refLogs.forEach((r, i) => expect(Math.abs(r.loss - m1[i].loss) / Math.abs(r.loss), `loss at step ${i + 1}`).toBeLessThanOrEqual(1e-6));
    for (const [k, t] of ref.checkpoint().model) {
      const got = c1.model.get(k)!.data;
      let d = 0, mx = 0;
      t.data.forEach((v, i) => { d = Math.max(d, Math.abs(v - got[i])); mx = Math.max(mx, Math.abs(v)); });
      expect(mx === 0 ? d : d / mx, `reference vs actors: ${k}`).toBeLessThanOrEqual(1e-6);
    }

    const init = path.join(a, 'checkpoint.safetensors');
    const spec2 = tinySpec('epg', { epg: { stage: 'diffusion', decoder_depth: 2, init } });
    const t = new Trainer(spec2, openTrainData(spec2));
    const enc = c1.ema.get('online.encoder.pos_embed')!;
    expect(Array.from((t.model as EpgModel).encoder.pos_embed.data)).toEqual(Array.from(enc.data));
    const { dir: b, metrics: m2 } = await expectResumeExact('epg', spec2, ['x0', 'diff']);
    for (const l of m2) expect(l.loss).toBeCloseTo(l.x0, 4);
    const model = expectSamplesWith('epg', b, EpgModel);
    expect(model).toBeInstanceOf(EpgModel);
    for (const steps of [1, 2]) {
      const png = path.join(tmpDir('epg', `steps${steps}`), 'grid.png');
      sample({ checkpoint: path.join(b, 'checkpoint.safetensors'), out: png, sampler: 'heun', steps, perClass: 1 });
      expect(existsSync(png)).toBe(true);
    }
    const c2 = readCheckpoint(b);
    expect(() => samplingModel({ ...c2.spec, epg: { ...(c2.spec as never as { epg: object }).epg, stage: 'pretrain' } } as never, c2.config, c2.ema)).toThrow(/stage 'diffusion' model but epg.stage is 'pretrain'/);
  }, 300_000);
});

describe('EPG stage 2 under the evaluator', () => {
  it('hiddenAfter reads the linear-path point x_t in VE form: the encoder on x + σ·ε at σ = t/(1 − t), patch tokens after block k', () => {
    const trainer = new Trainer(tinySpec('epg'), openTrainData(tinySpec('epg')));
    const m = trainer.model as EpgModel;
    m.eval();
    const rng = new Rng(3), x = rng.normal([2, 3, 16, 16]), eps = rng.normal([2, 3, 16, 16]), t = [0.3, 0.7];
    const xt = tensor(Float32Array.from(x.data, (v, i) => (1 - t[Math.floor(i / 768)]) * v + t[Math.floor(i / 768)] * eps.data[i]), [2, 3, 16, 16]);
    const labels = Int32Array.from([1, m.config.numClasses]); // a class and the null class
    const sigmas = Float64Array.from(t, (v) => v / (1 - v));
    const xSigma = tensor(Float32Array.from(x.data, (v, i) => v + sigmas[Math.floor(i / 768)] * eps.data[i]), [2, 3, 16, 16]);
    for (const k of [1, 3]) {
      const got = noGrad(() => m.hiddenAfter(xt, t, labels, k));
      const want = noGrad(() => m.encoder.forward(xSigma, sigmas, m.y_embedder.forward(labels)).hs[k - 1]);
      expect(got.shape).toEqual([2, 16, want.shape[2]]);
      expectClose(`block ${k}`, got.data, slice(want, 1, EPG_PREFIX).data, 1e-4, 1e-4);
    }
    expect(() => m.hiddenAfter(xt, t, labels, 4)).toThrow(/block 4 is not in 1\.\.3/);
  });

  it('the evaluator measures stage 2 (FD on its samples, probe and CKNNA through hiddenAfter); stage 1 refuses train.eval_every', () => {
    expectEvaluates('epg', EpgModel, { block: 1 });
    const pre = tinySpec('epg', { epg: PRE });
    expect(() => checkSpecConsistency(parseSpec({ ...pre, train: { ...pre.train, eval_every: 5 } }))).toThrow(/epg: train\.eval_every is 5 but stage 'pretrain' trains an encoder that draws no samples/);
  }, 120_000);
});
