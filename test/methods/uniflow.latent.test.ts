// UniFlow's tokenizer as a frozen latent space (src/methods/uniflow/latent.ts; a spec's
// latent.autoencoder names a tokenizer run checkpoint): the dispatch by file kind and the latent's
// shape (zc × g/2 × g/2), the per-element statistics over the first stat_images training images,
// encode = the EMA student's tokens → merge → MLP, normalised, laid out (B, zc, h, h); decode = the
// Euler decode of the de-normalised z from noise seeded by the latent's own bits — a pure function of
// the latent (the same image in any batch), equal to the decoder run directly; a stage-2 spec in this
// space trains; errors name latent.autoencoder.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../src/build/checkpoint.ts';
import { samplingModel } from '../../src/build/parts.ts';
import { loadLatentSpace } from '../../src/build/latentSpace.ts';
import { modelConfigFor, openTrainData } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';
import { UniFlowModel } from '../../src/methods/uniflow/model.ts';
import { UniFlowLatentSpace, latentSeed } from '../../src/methods/uniflow/latent.ts';
import { parseSpec } from '../../src/spec/load.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { noGrad } from '../../src/autograd/tape.ts';
import { permute, reshape } from '../../src/autograd/index.ts';
import { tinySpec } from '../actors/specs.ts';
import { tmpDir } from '../run/methodRun.ts';

/** The tiny tokenizer (TINY uniflow: 16 px, z 4×2×2) trained 2 steps on the reference engine and saved. */
function tinyTokenizer(): string {
  const spec = tinySpec('uniflow', { uniflow: { latent_channels: 4, flow_width: 16, flow_depth: 2, ref_per_class: 2, stat_images: 24 }, train: { steps: 2, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: 2, ema_decay: 0.5 } });
  const t = new Trainer(spec, openTrainData(spec));
  t.trainStep();
  t.trainStep();
  const file = path.join(tmpDir('uniflow', 'tokenizer'), 'checkpoint.safetensors');
  saveCheckpoint(file, t.checkpoint());
  return file;
}

describe('UniFlow\'s tokenizer as a latent space', () => {
  const file = tinyTokenizer();
  const space = loadLatentSpace(file) as UniFlowLatentSpace;
  const { spec, config, ema } = loadCheckpoint(file);
  const data = openTrainData(spec);
  const model = samplingModel(spec, config, ema) as UniFlowModel;
  model.eval();

  it('the file kind decides: z of 4 channels on 2×2 for 16 px images; a stage-2 spec sees 4 × 2 × 2 inputs', () => {
    expect(space).toBeInstanceOf(UniFlowLatentSpace);
    expect([space.channels, space.grid, space.factor, space.inputChannels, space.imageChannels]).toEqual([4, 2, 8, 3, 3]);
    const s2 = parseSpec({ name: 's2', data: spec.data, latent: { autoencoder: file }, model: { preset: 'SiT-S/1', hidden_size: 32, depth: 1, num_heads: 2 } });
    const c = modelConfigFor(s2, data);
    expect([c.inChannels, c.inputSize]).toEqual([4, 2]);
  });

  it('statistics over the first stat_images images; encode = the EMA student → merge → MLP, normalised, (B, zc, h, h)', () => {
    const n = 24, per = data.channels * data.height * data.width, xs = new Float32Array(n * per);
    for (let i = 0; i < n; i++) data.get(i, xs, i * per);
    const x = tensor(xs, [n, data.channels, data.height, data.width]);
    const z = noGrad(() => model.decoder.latent(model.encode(x).tokens)); // (n, 4, 4) tokens × channels
    const raw = noGrad(() => permute(reshape(z, [n, 2, 2, 4]), [0, 3, 1, 2])).data; // (n, 4, 2, 2)
    const E = 16;
    for (let e = 0; e < E; e++) {
      let m = 0, v = 0;
      for (let b = 0; b < n; b++) m += raw[b * E + e];
      m /= n;
      for (let b = 0; b < n; b++) v += (raw[b * E + e] - m) ** 2;
      expect(space.mean[e]).toBeCloseTo(m, 5);
      expect(space.std[e]).toBeCloseTo(Math.sqrt(v / n + 1e-5), 5);
    }
    const enc = space.encode(x);
    expect(enc.shape).toEqual([n, 4, 2, 2]);
    for (const i of [0, 37, n * E - 1]) expect(enc.data[i]).toBeCloseTo((raw[i] - space.mean[i % E]) / space.std[i % E], 4);
    const again = loadLatentSpace(file) as UniFlowLatentSpace;
    expect(Array.from(again.mean)).toEqual(Array.from(space.mean));
  });

  it('decode: the one-step Euler decode of the de-normalised z from ε seeded by the latent\'s bits; pure (batch-independent)', () => {
    const zn = Float32Array.from(new Rng(4).normalArray(3 * 16));
    const img = space.decode(zn, 3, 2);
    expect(img.length).toBe(3 * 3 * 16 * 16);
    for (let i = 0; i < 3; i++) {
      const one = zn.slice(i * 16, (i + 1) * 16);
      const eps = new Rng(latentSeed(one)).normal([1, 3, 16, 16]);
      const den = Float32Array.from(one, (v, e) => v * space.std[e] + space.mean[e]);
      const direct = noGrad(() => {
        const z = reshape(permute(tensor(den, [1, 4, 2, 2]), [0, 2, 3, 1]), [1, 4, 4]);
        return model.decoder.decode(model.decoder.condition(z), eps, 1).data;
      });
      let maxd = 0;
      for (let k = 0; k < direct.length; k++) maxd = Math.max(maxd, Math.abs(img[i * 768 + k] - direct[k]));
      expect(maxd, `image ${i}`).toBeLessThan(1e-5);
      expect(Array.from(space.decode(one, 1, 2))).toEqual(Array.from(img.subarray(i * 768, (i + 1) * 768))); // alone = in the batch
    }
    expect(latentSeed(zn.subarray(0, 16))).not.toBe(latentSeed(zn.subarray(16, 32)));
  });

  it('a spec trains in the space (a SiT on 4 × 2 × 2 latents, 1 step); errors name latent.autoencoder', () => {
    const s2 = parseSpec({ name: 's2', seed: 1, data: spec.data, latent: { autoencoder: file }, model: { preset: 'SiT-S/1', hidden_size: 32, depth: 1, num_heads: 2 }, train: { steps: 1, batch_size: 4 } });
    const t = new Trainer(s2, openTrainData(s2));
    t.trainStep();
    expect(Number.isFinite(t.checkpoint().state.step)).toBe(true);
    expect(() => space.side(32)).toThrow(/latent\.autoencoder .* is a UniFlow tokenizer of 16² images .*data\.size is 32/);
    expect(() => space.decode(new Float32Array(5), 1, 2)).toThrow(/5 values for 1 latents of 4×2×2/);
  });
});
