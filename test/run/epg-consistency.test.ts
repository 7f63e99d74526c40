// EPG stage 'consistency' end to end on the tiny spec (test/actors/specs.ts TINY; a seed-initialised
// encoder, epg.init null — stage 1's checkpoint as init is test/run/epg.test.ts's, the same code path):
// on actors 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with `cm`), the reference
// engine agrees to 1e-6 (losses and weights), the ECT stage rises every 2 steps (ect_d [2, 2]);
// the final grid and `diffactor sample` draw with the consistency sampler at 1 and 2 steps; Heun is
// refused by name. With the perceptual term (a stage-1 model's exported online weights as init):
// resume exact with `cm` and `perceptual`, the frozen network outside the checkpoint.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { sample } from '../../src/cli/sample.ts';
import { Trainer } from '../../src/run/reference.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { EpgModel, EpgPretrainModel } from '../../src/methods/epg/model.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith, readCheckpoint, tmpDir } from './methodRun.ts';

describe('EPG consistency run', () => {
  it("stage 'consistency' on actors: resume exact, the reference engine agrees, one- and two-step sampling", async () => {
    const spec = tinySpec('epg', {
      name: 'tiny-epg-consistency',
      model: { ...tinySpec('epg').model, class_dropout_prob: 0 },
      epg: { stage: 'consistency', decoder_depth: 2, curriculum_steps: 6, ect_d: [2, 2], p_mean: -0.4 },
      sample: { sampler: 'euler', steps: 1, per_class: 1 },
    });
    const { dir, metrics } = await expectResumeExact('epg-consistency', spec, ['cm']);
    for (const l of metrics) {
      expect(l.loss).toBeCloseTo(l.cm, 5);
      expect(Number.isFinite(l.cm) && l.cm > 0).toBe(true);
    }
    const ref = new Trainer({ ...spec, train: { ...spec.train, steps: 6, checkpoint_every: 3, schedule: 'constant' } }, openTrainData(spec));
    const refLogs = Array.from({ length: 6 }, () => ref.trainStep());
    refLogs.forEach((r, i) => expect(Math.abs(r.loss - metrics[i].loss) / Math.abs(r.loss), `loss at step ${i + 1}`).toBeLessThanOrEqual(1e-6));
    const c = readCheckpoint(dir);
    for (const [k, t] of ref.checkpoint().model) {
      const got = c.model.get(k)!.data;
      let d = 0, mx = 0;
      t.data.forEach((v, i) => { d = Math.max(d, Math.abs(v - got[i])); mx = Math.max(mx, Math.abs(v)); });
      expect(mx === 0 ? d : d / mx, `reference vs actors: ${k}`).toBeLessThanOrEqual(1e-6);
    }
    const model = expectSamplesWith('epg-consistency', dir, EpgModel) as EpgModel;
    expect(model.boundary).not.toBeNull();
    for (const steps of [1, 2]) {
      const png = path.join(tmpDir('epg-consistency', `steps${steps}`), 'grid.png');
      sample({ checkpoint: path.join(dir, 'checkpoint.safetensors'), out: png, sampler: 'euler', steps, perClass: 1 });
      expect(existsSync(png)).toBe(true);
    }
    expect(() => sample({ checkpoint: path.join(dir, 'checkpoint.safetensors'), out: path.join(tmpDir('epg-consistency', 'heun'), 'grid.png'), sampler: 'heun', steps: 2, perClass: 1 })).toThrow(/sample\.sampler must be euler/);
  }, 300_000);

  it('with the perceptual term through the frozen stage-1 network of init: resume exact, the network not in the checkpoint', async () => {
    const pre = tinySpec('epg', { name: 'tiny-epg-pretrain', epg: { stage: 'pretrain', curriculum: [2, 8], projector_dim: 16, projector_out: 8, ref_per_class: 1 } });
    const stage1 = new Trainer(pre, openTrainData(pre)).model as EpgPretrainModel;
    const init = path.join(tmpDir('epg-consistency', 'init'), 'stage1.safetensors');
    writeSafetensors(init, new Map(stage1.online.namedParameters().map(([k, t]) => [`online.${k}`, t])), { format: 'diffactor-weights/1' });
    const spec = tinySpec('epg', {
      name: 'tiny-epg-consistency-perceptual',
      model: { ...tinySpec('epg').model, class_dropout_prob: 0 },
      epg: { stage: 'consistency', init, decoder_depth: 2, curriculum_steps: 6, ect_d: [2, 2], perceptual_weight: 1, projector_dim: 16, projector_out: 8 },
      sample: { sampler: 'euler', steps: 1, per_class: 1 },
    });
    const { metrics, checkpoint } = await expectResumeExact('epg-consistency-perceptual', spec, ['cm', 'perceptual']);
    for (const l of metrics) {
      expect(l.loss).toBeCloseTo(l.cm + l.perceptual, 4);
      expect(l.perceptual).toBeGreaterThan(0);
    }
    expect([...checkpoint.model.keys()].some((k) => k.includes('projector'))).toBe(false);
  }, 300_000);
});
