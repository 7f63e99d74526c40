// DiGIT end to end on the tiny spec (test/actors/specs.ts TINY: 8 codes over the encoder's 4×4
// tokens, a 3-block GPT of width 32, a width-8 decoder): on actors, 6 steps equal 3 steps + a
// resume of 3 bit for bit (metrics with `ar` and `diff`, weights, EMA, optimiser, RNG); the
// checkpoint's model and EMA hold the codebook fitted on the training set (equal to a fresh fit);
// the final grid and `diffactor sample` draw with the DiGIT model; greedy sampling (T = 0) does not
// depend on the noise, T = 1 does; the raw-patch control fits its codebook on pixel patches.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildEncoder, samplingModel } from '../../src/build/parts.ts';
import { checkSpecConsistency, modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { drawSamples } from '../../src/build/draw.ts';
import { sample } from '../../src/cli/sample.ts';
import { DigitModel } from '../../src/methods/digit/model.ts';
import { digit, fitCodebook } from '../../src/methods/digit/index.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith, tmpDir } from './methodRun.ts';

describe('DiGIT runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; the codebook in the checkpoint; the grid and `sample`', async () => {
    const spec = tinySpec('digit');
    const { dir: a, metrics: m, checkpoint: ca } = await expectResumeExact('digit', spec, ['diff', 'ar']);
    // L = diff (the decoder's L2) + ar (the GPT's smoothed cross-entropy)
    for (const l of m) expect(l.loss).toBeCloseTo(l.diff + l.ar, 5);
    // ln K bounds the untrained GPT's loss from below only loosely; it must start near it
    expect(m[0].ar).toBeGreaterThan(0.5 * Math.log(8));

    const data = openTrainData(spec);
    const config = modelConfigFor(spec, data);
    const s = sectionOf(spec, digit);
    const fit = fitCodebook(s, { data, encoder: buildEncoder(spec, data, config) }, config.patchSize, spec.seed);
    for (const w of [ca.model, ca.ema]) {
      expect(w.get('tokenizer.centroids')!.shape).toEqual([8, 16]);
      expect(Array.from(w.get('tokenizer.centroids')!.data)).toEqual(Array.from(fit.centroids));
    }

    const model = expectSamplesWith('digit', a, DigitModel) as DigitModel;
    const settings = { ...ca.spec.sample, sampler: 'euler' as const, steps: 2, cfg: 1 };
    const x1 = drawSamples(model, settings, { seed: 3, labels: [0, 1, 2] });
    expect(x1.length).toBe(3 * config.inChannels * config.inputSize ** 2);
    expect(Array.from(drawSamples(model, settings, { seed: 3, labels: [0, 1, 2] }))).toEqual(Array.from(x1));
    model.sampling = { temperature: 1, topK: null, topP: 1 };
    const t1a = drawSamples(model, settings, { seed: 3, labels: [0, 1, 2] }), t1b = drawSamples(model, settings, { seed: 4, labels: [0, 1, 2] });
    expect(Array.from(t1a)).not.toEqual(Array.from(t1b));
    model.sampling = { temperature: 0, topK: null, topP: 1 };
    expect(Array.from(drawSamples(model, settings, { seed: 3, labels: [0, 1, 2] }))).toEqual(Array.from(drawSamples(model, settings, { seed: 4, labels: [0, 1, 2] })));
    expect(() => drawSamples(model, { ...settings, cfg: 2 }, { seed: 3, labels: [0] })).toThrow(/without classifier-free guidance/);
    const dir = tmpDir('digit', 'sample');
    sample({ checkpoint: path.join(a, 'checkpoint.safetensors'), out: path.join(dir, 'greedy.png'), perClass: 1, set: ['digit.temperature=0'] });
    expect(existsSync(path.join(dir, 'greedy.png'))).toBe(true);
    expect(() => sample({ checkpoint: path.join(a, 'checkpoint.safetensors'), out: path.join(dir, 'x.png'), set: ['digit.top_p=1.5'] })).toThrow(/digit.top_p/);
    expect(samplingModel(parseSpec({ ...ca.spec, digit: { ...s, top_k: 2 } }), ca.config, ca.ema)).toHaveProperty('sampling.topK', 2);
  }, 240_000);

  it('the raw-patch control: the codebook clusters C·p² pixel rows; bad specs name the field', () => {
    const spec = tinySpec('digit', { digit: { ...sectionOf(tinySpec('digit'), digit), tokens: 'raw-patches' } });
    const data = openTrainData(spec);
    const config = modelConfigFor(spec, data);
    const fit = fitCodebook(sectionOf(spec, digit), { data, encoder: buildEncoder(spec, data, config) }, config.patchSize, spec.seed);
    expect([fit.k, fit.dim]).toEqual([8, config.inChannels * 16]);
    expect(() => checkSpecConsistency(tinySpec('digit+repa'))).toThrow(/digit trains alone/);
    expect(() => checkSpecConsistency(tinySpec('digit', { sample: { sampler: 'euler', cfg: 2 } }))).toThrow(/sample.cfg must be 1/);
    expect(() => fitCodebook({ ...sectionOf(spec, digit), codes: 10_000 }, { data, encoder: buildEncoder(spec, data, config) }, config.patchSize, 0)).toThrow(/digit.codes 10000 exceeds/);
  }, 120_000);
});
