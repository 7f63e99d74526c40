// ReDi end to end on the tiny spec (test/actors/specs.ts TINY: rank 2, drop_prob 0.5, rg_scale
// 1.5): on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with `feat` and
// `feat_dropped`, weights, EMA, optimiser, RNG); the checkpoint's model and EMA hold the PCA fitted
// on the training set (pca.*, equal to a fresh fit) and a patch embedding over C + r channels; the
// final grid and `diffactor sample` draw with the joint model, with RG (the spec's 1.5) and
// without (--set redi.rg_scale=1), which differ, and CFG on the image channels only (cfg_image_only)
// differs from CFG on all; the evaluation runs on the model.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildEncoder, samplingModel } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { drawSamples } from '../../src/build/draw.ts';
import { sample } from '../../src/cli/sample.ts';
import { RediSiT } from '../../src/methods/redi/model.ts';
import { fitOnTrainingSet, redi } from '../../src/methods/redi/index.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectEvaluates, expectResumeExact, expectSamplesWith, tmpDir } from './methodRun.ts';

describe('ReDi runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; the PCA in the checkpoint; the grid and `sample` with and without RG', async () => {
    const spec = tinySpec('redi');
    const { dir: a, metrics: m, checkpoint: ca } = await expectResumeExact('redi', spec, ['diff', 'feat', 'feat_dropped']);
    const drops = m.map((l) => l.feat_dropped);
    expect(drops.every((d) => d === 0 || d === 1)).toBe(true);
    // L = diff + λ·feat, λ = 0 on a dropped step
    for (const l of m) expect(l.loss).toBeCloseTo(l.diff + (l.feat_dropped ? 0 : l.feat), 5);

    // The fit: the checkpoint's buffers are the fit on the spec's training set (float32 of the float64 fit).
    const data = openTrainData(spec);
    const config = modelConfigFor(spec, data);
    const fit = fitOnTrainingSet({ data, encoder: buildEncoder(spec, data, config) }, sectionOf(spec, redi).pca_images);
    for (const w of [ca.model, ca.ema]) {
      expect(Array.from(w.get('pca.feat_mean')!.data)).toEqual(Array.from(Float32Array.from(fit.featMean)));
      expect(Array.from(w.get('pca.components')!.data)).toEqual(Array.from(Float32Array.from(fit.components.subarray(0, 2 * fit.dim))));
    }
    expect(ca.model.get('x_embedder.proj.weight')!.shape[1]).toBe(config.inChannels + 2);
    expect(ca.model.get('final_layer.linear.weight')!.shape[0]).toBe(4 * 4 * (config.inChannels + 2));

    // Sampling rebuilds the joint model from the spec the checkpoint carries, with its RG scale.
    const model = expectSamplesWith('redi', a, RediSiT, /unexpected keys: pca/);
    expect((model as RediSiT).rgScale).toBe(1.5);
    const settings = { ...ca.spec.sample, sampler: 'euler' as const, steps: 2, cfg: 1 };
    const withRg = drawSamples(model, settings, { seed: 3, labels: [0, 1] });
    expect(withRg.length).toBe(2 * config.inChannels * config.inputSize ** 2); // the image channels only
    (model as RediSiT).rgScale = 1;
    const plain = drawSamples(model, settings, { seed: 3, labels: [0, 1] });
    expect(Array.from(plain)).not.toEqual(Array.from(withRg));
    // CFG on the image channels only (--cfg-vae) reaches the sampler: it draws other images than CFG on every channel.
    const cfg = { ...settings, cfg: 2 };
    const allGuided = drawSamples(model, cfg, { seed: 3, labels: [0, 1] });
    (model as RediSiT).cfgImageOnly = true;
    expect(Array.from(drawSamples(model, cfg, { seed: 3, labels: [0, 1] }))).not.toEqual(Array.from(allGuided));
    expect(samplingModel(parseSpec({ ...ca.spec, redi: { ...sectionOf(ca.spec, redi), cfg_image_only: true } }), ca.config, ca.ema)).toHaveProperty('guidedChannels', config.inChannels);
    const dir = tmpDir('redi', 'sample');
    const file = path.join(a, 'checkpoint.safetensors');
    sample({ checkpoint: file, out: path.join(dir, 'rg.png'), sampler: 'euler', steps: 2, perClass: 1 });
    sample({ checkpoint: file, out: path.join(dir, 'plain.png'), sampler: 'euler', steps: 2, perClass: 1, set: ['redi.rg_scale=1'] });
    expect(readFileSync(path.join(dir, 'rg.png')).equals(readFileSync(path.join(dir, 'plain.png')))).toBe(false);
    expect(() => sample({ checkpoint: file, out: path.join(dir, 'x.png'), set: ['redi.rg_scale=-1'] })).toThrow(/redi.rg_scale/);
  }, 240_000);

  it('evaluation: finite metrics from the joint model (samples cut to the image, probe on a zero-feature input)', () => {
    expectEvaluates('redi', RediSiT, { block: 2, moves: true });
  }, 120_000);
});
