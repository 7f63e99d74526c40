// RAE stage 1 as a frozen latent space (src/methods/rae/latent.ts; a spec's latent.autoencoder names
// a stage-1 run checkpoint): the dispatch by file kind, methods-b §5 invariants (a) (the encoder
// receives no gradient and its output does not depend on train/eval mode; the decoder's noise is a
// training-mode thing the space never uses) and (b) normalize(denormalize(z)) = z, the statistics
// (per element over the batch dimension, + 1e-5, from the first N training images), encode/decode
// against the encoder and the EMA decoder run directly, and errors naming latent.autoencoder.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../src/build/checkpoint.ts';
import { buildEncoder, samplingModel } from '../../src/build/parts.ts';
import { latentSpaceOf, loadLatentSpace } from '../../src/build/latentSpace.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';
import { RaeDecoderModel } from '../../src/methods/rae/model.ts';
import { RaeLatentSpace } from '../../src/methods/rae/latent.ts';
import { denormaliseElements, elementStats, normaliseElements } from '../../src/methods/tokenLatent.ts';
import { noiseAugment } from '../../src/models/vitDecoder.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { tinySpec } from '../actors/specs.ts';
import { tmpDir } from '../run/methodRun.ts';
import { tinyStage1 } from '../run/raeStage1.ts';

describe('RAE stage 1 as a latent space', () => {
  const file = tinyStage1();
  const space = loadLatentSpace(file) as RaeLatentSpace;
  const ck = loadCheckpoint(file); // the checkpoint read independently of the space
  const { spec, config, ema } = ck;
  const data = openTrainData(spec);
  const x = (n: number, seed = 3) => new Rng(seed).uniform([n, data.channels, data.height, data.width], -1, 1);

  it('the file kind decides: a stage-1 checkpoint gives the RAE space, fitted to the encoder\'s grid', () => {
    expect(space).toBeInstanceOf(RaeLatentSpace);
    expect([space.channels, space.grid, space.factor, space.inputChannels, space.imageChannels]).toEqual([16, 4, 4, 3, 3]);
    const stage2 = parseSpec({ name: 's2', data: spec.data, latent: { autoencoder: file }, model: { preset: 'SiT-S/1' } });
    const c = modelConfigFor(stage2, data);
    expect([c.inChannels, c.inputSize]).toEqual([16, 4]);
  });

  it('statistics: per element over the first stat_images training images, var + 1e-5; encoded training images are centred', () => {
    const n = 24, per = data.channels * data.height * data.width, xs = new Float32Array(n * per);
    for (let i = 0; i < n; i++) data.get(i, xs, i * per);
    const raw = space.rawLatents(tensor(xs, [n, data.channels, data.height, data.width]));
    const E = 16 * 16;
    for (const e of [0, 17, E - 1]) {
      let m = 0, v = 0;
      for (let b = 0; b < n; b++) m += raw[b * E + e];
      m /= n;
      for (let b = 0; b < n; b++) v += (raw[b * E + e] - m) ** 2;
      expect(space.mean[e]).toBeCloseTo(m, 10);
      expect(space.std[e]).toBeCloseTo(Math.sqrt(v / n + 1e-5), 10);
    }
    const z = space.encode(tensor(xs, [n, data.channels, data.height, data.width])).data;
    for (const e of [0, 100, E - 1]) {
      let m = 0;
      for (let b = 0; b < n; b++) m += z[b * E + e];
      expect(Math.abs(m / n)).toBeLessThan(1e-4);
    }
    // A second opening computes the same numbers (every actor builds its own).
    const again = loadLatentSpace(file) as RaeLatentSpace;
    expect(Array.from(again.mean)).toEqual(Array.from(space.mean));
    expect(Array.from(again.std)).toEqual(Array.from(space.std));
  });

  it('(b) normalize(denormalize(z)) = z and the other way, per element', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1e6 }), (B, E, seed) => {
      const r = new Rng(seed);
      const z = Float32Array.from(r.normalArray(B * E));
      const { mean, std } = elementStats(Float32Array.from(r.normalArray(3 * E, 0.5, 2)), 3);
      const w = z.slice();
      denormaliseElements(w, mean, std);
      normaliseElements(w, mean, std);
      for (let i = 0; i < z.length; i++) expect(w[i]).toBeCloseTo(z[i], 4);
      normaliseElements(w, mean, std);
      // float32 storage: compare relative to the value's size (|z − μ|/σ reaches ~100 here).
      for (let i = 0; i < z.length; i++) {
        const want = (z[i] - mean[i % E]) / std[i % E];
        expect(Math.abs(w[i] - want)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want)));
      }
    }), { numRuns: 50 });
  });

  it('encode/decode equal the encoder and the EMA decoder run directly (τ = 0), laid out (B, d, g, g)', () => {
    const model = samplingModel(spec, config, ema) as RaeDecoderModel;
    model.eval();
    const enc = buildEncoder(spec, data, config);
    const xs = x(5);
    const tokens = model.tokensOf(enc.features(xs).patch); // (5, 16, 16)
    const z = space.encode(xs);
    expect(z.shape).toEqual([5, 16, 4, 4]);
    for (const [b, n, c] of [[0, 0, 0], [2, 5, 7], [4, 15, 15]]) {
      const e = c * 16 + n;
      expect(z.data[b * 256 + e]).toBeCloseTo((tokens.data[(b * 16 + n) * 16 + c] - space.mean[e]) / space.std[e], 4);
    }
    const img = space.decode(Float32Array.from(z.data), 5, 4);
    const direct = model.forward(tokens).data;
    expect(img.length).toBe(direct.length);
    let maxd = 0;
    for (let i = 0; i < img.length; i++) maxd = Math.max(maxd, Math.abs(img[i] - direct[i]));
    expect(maxd).toBeLessThan(1e-4);
    // decode reads the EMA weights: the raw model decodes differently after training.
    const raw = samplingModel(spec, config, ck.model) as RaeDecoderModel;
    raw.eval();
    let diff = 0;
    const rd = raw.forward(tokens).data;
    for (let i = 0; i < img.length; i++) diff = Math.max(diff, Math.abs(img[i] - rd[i]));
    expect(diff).toBeGreaterThan(1e-6);
  });

  it('(a) the encoder gets no gradient and does not depend on train/eval mode; decoder noise is train-mode only', () => {
    const enc = buildEncoder(spec, data, config);
    for (const p of enc.vit.parameters()) expect(p.requiresGrad).toBe(false);
    for (const p of space.model.parameters()) expect(p.requiresGrad).toBe(false);
    const xs = x(3, 9);
    const a = Array.from(space.encode(xs).data);
    space.encoder.vit.train();
    space.model.train();
    const b = Array.from(space.encode(xs).data);
    space.encoder.vit.eval();
    space.model.eval();
    expect(b).toEqual(a);
    // Noise augmentation changes tokens only when applied (training forward): τ = 0 leaves them.
    const t = tensor(Float32Array.from(new Rng(1).normalArray(2 * 16 * 16)), [2, 16, 16]);
    expect(Array.from(noiseAugment(t, 0, new Rng(2)).data)).toEqual(Array.from(t.data));
    expect(Array.from(noiseAugment(t, 0.8, new Rng(2)).data)).not.toEqual(Array.from(t.data));
  });

  it('errors name latent.autoencoder: a checkpoint of no autoencoder, another image size', () => {
    const s = tinySpec('sit-baseline', { train: { steps: 1, batch_size: 4 } });
    const t = new Trainer(s, openTrainData(s));
    const f = path.join(tmpDir('rae', 'notae'), 'checkpoint.safetensors');
    saveCheckpoint(f, t.checkpoint());
    expect(() => latentSpaceOf({ latent: { autoencoder: f } })).toThrow(/latent\.autoencoder .*checkpoint\.safetensors: a checkpoint of a run with methods \[sit-baseline\], none of which is an autoencoder/);
    const big = parseSpec({ name: 's2', data: { ...spec.data, size: 32 }, latent: { autoencoder: file } });
    expect(() => modelConfigFor(big, { ...data, height: 32 })).toThrow(/latent\.autoencoder .* is an RAE of 16² images .*data\.size is 32/);
    expect(() => space.decode(new Float32Array(16 * 9), 1, 3)).toThrow(/latents of side 3, the RAE's token grid is 4/);
  });
});
