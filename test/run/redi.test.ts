// ReDi end to end on the tiny spec (test/actors/specs.ts TINY: rank 2, drop_prob 0.5, rg_scale
// 1.5): on actors, 6 steps equal 3 steps + a resume of 3 bit for bit (metrics with `feat` and
// `feat_dropped`, weights, EMA, optimiser, RNG); the checkpoint's model and EMA hold the PCA fitted
// on the training set (pca.*, equal to a fresh fit) and a patch embedding over C + r channels; the
// final grid and `diffactor sample` draw with the joint model, with RG (the spec's 1.5) and
// without (--set redi.rg_scale=1), which differ, and CFG on the image channels only (cfg_image_only)
// differs from CFG on all; the evaluation runs on the model.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runActors } from '../../src/run/actorRun.ts';
import { loadCheckpoint } from '../../src/build/checkpoint.ts';
import { buildEncoder, samplingModel } from '../../src/build/parts.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { drawSamples } from '../../src/build/draw.ts';
import { sample } from '../../src/cli/sample.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { Trainer } from '../../src/run/reference.ts';
import { createSiT } from '../../src/models/sit.ts';
import { RediSiT } from '../../src/methods/redi/model.ts';
import { fitOnTrainingSet, redi } from '../../src/methods/redi/index.ts';
import { sectionOf } from '../../src/methods/registry.ts';
import { parseSpec } from '../../src/spec/load.ts';
import type { Tensor } from '../../src/tensor/tensor.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';

const tmp = (what: string) => mkdtempSync(path.join(tmpdir(), `redi-${what}-`));
const ckpt = (out: string) => loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
const metrics = (dir: string) => readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { wall_s: _w, it_s: _i, ...m } = JSON.parse(l); return m; });
function same(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  expect([...b.keys()].sort(), what).toEqual([...a.keys()].sort());
  expect(a.size, what).toBeGreaterThan(0);
  for (const [k, t] of a) expect(Array.from(b.get(k)!.data), `${what} ${k}`).toEqual(Array.from(t.data));
}

describe('ReDi runs', () => {
  it('on actors: 6 steps == 3 steps + resume 3; the PCA in the checkpoint; the grid and `sample` with and without RG', async () => {
    const spec = tinySpec('redi', { train: { ...tinySpec('redi').train, steps: 6, checkpoint_every: 3, schedule: 'constant' } });
    const a = tmp('whole');
    await runActors({ spec, out: a, placement: 'local', quiet: true });
    expect(existsSync(path.join(a, 'samples.png'))).toBe(true);
    const b = tmp('resumed');
    await runActors({ spec: { ...spec, train: { ...spec.train, steps: 3 } }, out: b, placement: 'local', quiet: true, samples: false });
    await runActors({ out: b, resume: true, steps: 6, placement: 'local', quiet: true, samples: false });
    const m = metrics(a);
    expect(metrics(b)).toEqual(m);
    expect(m).toHaveLength(6);
    for (const l of m) for (const k of ['diff', 'feat', 'feat_dropped']) expect(Number.isFinite(l[k]), `${k} at step ${l.step}`).toBe(true);
    const drops = m.map((l) => l.feat_dropped);
    expect(drops.every((d) => d === 0 || d === 1)).toBe(true);
    // L = diff + λ·feat, λ = 0 on a dropped step
    for (const l of m) expect(l.loss).toBeCloseTo(l.diff + (l.feat_dropped ? 0 : l.feat), 5);
    const [ca, cb] = [ckpt(a), ckpt(b)];
    for (const key of ['model', 'ema', 'opt'] as const) same(ca[key], cb[key], key);
    expect(cb.state.rng).toEqual(ca.state.rng);

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
    const model = samplingModel(ca.spec, ca.config, ca.ema);
    expect(model).toBeInstanceOf(RediSiT);
    expect((model as RediSiT).rgScale).toBe(1.5);
    expect(() => createSiT(ca.config, 0).loadStateDict(ca.ema)).toThrow(/unexpected keys: pca/);
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
    const dir = tmp('sample');
    const file = path.join(a, 'checkpoint.safetensors');
    sample({ checkpoint: file, out: path.join(dir, 'rg.png'), sampler: 'euler', steps: 2, perClass: 1 });
    sample({ checkpoint: file, out: path.join(dir, 'plain.png'), sampler: 'euler', steps: 2, perClass: 1, set: ['redi.rg_scale=1'] });
    expect(readFileSync(path.join(dir, 'rg.png')).equals(readFileSync(path.join(dir, 'plain.png')))).toBe(false);
    expect(() => sample({ checkpoint: file, out: path.join(dir, 'x.png'), set: ['redi.rg_scale=-1'] })).toThrow(/redi.rg_scale/);
  }, 240_000);

  it('evaluation: finite metrics from the joint model (samples cut to the image, probe on a zero-feature input)', () => {
    const dir = tmp('eval');
    const files = writeTestStandins(dir);
    const evalSection = { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 2 };
    const spec = tinySpec('redi', { eval: evalSection });
    const data = openTrainData(spec);
    const ev = Evaluation.prepare(spec, modelConfigFor(spec, data));
    const trainer = new Trainer(spec, data);
    expect(trainer.emaModel).toBeInstanceOf(RediSiT);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
    for (let i = 0; i < 3; i++) trainer.trainStep();
    expect(ev.run(trainer.model as never).cknna).not.toBe(r.cknna);
  }, 120_000);
});
