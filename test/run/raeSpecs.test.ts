// The shipped RAE stage-2 specs (specs/rae.yaml and its control specs/rae-vae.yaml) as written, with
// only the batch cut for speed: stage 1 is specs/rae-decoder.yaml trained ONE step (the spec's header
// command, shortened), its checkpoint named as rae.yaml's latent.autoencoder; each stage-2 spec then
// trains 2 steps on the reference engine in its space — 128×8×8 RAE tokens with s = √32, 4×8×8 VAE
// latents with s = 1 — and its samples decode to 1×32×32 Fashion-MNIST images. Without the stage-1
// run, rae.yaml says which file is missing.
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveCheckpoint } from '../../src/build/checkpoint.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { Trainer } from '../../src/run/reference.ts';
import { DiTDH } from '../../src/methods/dit-dh/model.ts';
import { tmpDir } from './methodRun.ts';

const SPECS = fileURLToPath(new URL('../../specs/', import.meta.url));
const small = ['train.batch_size=4', 'train.log_every=1'];

describe('specs/rae.yaml and specs/rae-vae.yaml', () => {
  it('rae.yaml refuses to build before stage 1, naming latent.autoencoder', () => {
    const spec = loadSpec(path.join(SPECS, 'rae.yaml'), ['latent.autoencoder=/nonexistent/rae-decoder/checkpoint.safetensors']);
    expect(() => new Trainer(spec, openTrainData(spec))).toThrow(/latent\.autoencoder: \/nonexistent\/rae-decoder\/checkpoint\.safetensors not found/);
  });

  it('stage 1 one step, then rae.yaml in its token space and rae-vae.yaml in the VAE space: 2 steps each, decoded 32×32 samples', () => {
    const s1 = loadSpec(path.join(SPECS, 'rae-decoder.yaml'), [...small, 'train.steps=1', 'train.warmup_steps=0', 'rae.stat_images=64']);
    const t1 = new Trainer(s1, openTrainData(s1));
    t1.trainStep();
    const ck = path.join(tmpDir('rae', 'spec-stage1'), 'checkpoint.safetensors');
    saveCheckpoint(ck, t1.checkpoint());
    for (const [file, sets, channels, shift] of [
      ['rae.yaml', [`latent.autoencoder=${ck}`], 128, Math.sqrt(32)],
      ['rae-vae.yaml', [], 4, 1],
    ] as const) {
      const spec = loadSpec(path.join(SPECS, file), [...small, ...sets]);
      const t = new Trainer(spec, openTrainData(spec));
      expect([t.config.inChannels, t.config.inputSize, t.config.patchSize], file).toEqual([channels, 8, 1]);
      expect((t.model as DiTDH).shift, file).toBeCloseTo(shift, 12);
      for (let i = 0; i < 2; i++) expect(Number.isFinite(t.trainStep().loss), file).toBe(true);
      const lat = new Float32Array(2 * channels * 64).map((_, i) => Math.sin(i));
      const { images, channels: c, side } = t.samplesToImages(lat, 2);
      expect([c, side, images.length], file).toEqual([1, 32, 2 * 32 * 32]);
      expect(images.every(Number.isFinite), file).toBe(true);
    }
  }, 300_000);
});
