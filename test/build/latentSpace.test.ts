// The frozen latent space (`latent.autoencoder`, src/build/latentSpace.ts): its encoding is the
// VAE's posterior mean normalised per channel by the file's statistics (recomputed here from the
// VAE itself), decoding inverts the normalisation, the shipped built-in VAE reconstructs test
// images through it, spec errors name the field, and a run in the space trains on both engines
// with the same losses, resumes bit for bit, writes a decoded image grid and is evaluated on images.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { PNG } from 'pngjs';
import { denormalise, latentSpaceOf, loadLatentSpace, normalise } from '../../src/build/latentSpace.ts';
import { LatentCache, runLatentCache } from '../../src/build/latentCache.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { createVAE, vaePreset } from '../../src/models/vae.ts';
import { loadSdVae, saveSdVae } from '../../src/models/sdVae.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { writePngGrid } from '../../src/io/png.ts';
import { openDataset } from '../../src/data/index.ts';
import { fromData } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { parseSpec, resolvePaths } from '../../src/spec/load.ts';
import { modelConfigFor, openTrainData, checkSpecConsistency } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { Evaluation } from '../../src/eval/evaluate.ts';
import { writeTestStandins } from '../eval/standinFiles.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, readMetrics, tmpDir } from '../run/methodRun.ts';

const SHIPPED = fileURLToPath(new URL('../../specs/standins/vae-builtin.safetensors', import.meta.url));

/** A seed-initialised VAE-T written with per-channel latent statistics in its metadata (or without: the factors). */
function testVae(dir: string, stats = true): string {
  const vae = createVAE(vaePreset('VAE-T', { scalingFactor: 0.5, shiftFactor: 0.25 }), 11);
  const file = path.join(dir, stats ? 'vae-stats.safetensors' : 'vae-factors.safetensors');
  saveSdVae(vae, file);
  if (stats) {
    writeSafetensors(file, vae.stateDict(), {
      format: 'diffusers-autoencoderkl', norm_num_groups: '4', scaling_factor: '0.5', shift_factor: '0.25', latents_mean: '[0.1,-0.2,0.3,0]', latents_std: '[2,0.5,1,4]',
    });
  }
  return file;
}

const images = (n: number, side = 16) => new Rng(4).uniform([n, 3, side, side], -1, 1);

describe('latent space: encoding and decoding', () => {
  it('normalise and denormalise are inverse per channel', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1000 }),
      (n, C, hw, seed) => {
        const r = new Rng(seed);
        const z = Float32Array.from(r.normalArray(n * C * hw));
        const mean = Array.from(r.normalArray(C)), std = Array.from(r.uniformArray(C), (u) => 0.1 + 3 * u);
        const w = z.slice();
        normalise(w, mean, std, hw);
        for (let i = 0; i < z.length; i++) {
          const c = Math.floor(i / hw) % C;
          expect(w[i]).toBeCloseTo((z[i] - mean[c]) / std[c], 4);
        }
        denormalise(w, mean, std, hw);
        for (let i = 0; i < z.length; i++) expect(w[i]).toBeCloseTo(z[i], 4);
      }), { numRuns: 40 });
  });

  it('encode is the posterior mean normalised by the file\'s per-channel statistics; decode inverts it', () => {
    const file = testVae(tmpDir('latent', 'stats'));
    const space = loadLatentSpace(file), vae = loadSdVae(file);
    expect([space.channels, space.factor, space.imageChannels]).toEqual([4, 4, 3]);
    const x = images(3);
    const z = space.encode(x), mean = vae.encode(x).mean;
    expect(z.shape).toEqual([3, 4, 4, 4]);
    const m = [0.1, -0.2, 0.3, 0], s = [2, 0.5, 1, 4];
    for (let i = 0; i < z.size; i++) {
      const c = Math.floor(i / 16) % 4;
      expect(z.data[i]).toBeCloseTo((mean.data[i] - m[c]) / s[c], 5);
    }
    const back = space.decode(z.data as Float32Array, 3, 4), ref = vae.decode(mean).data;
    for (let i = 0; i < ref.length; i++) expect(back[i]).toBeCloseTo(ref[i], 4);
  });

  it('without latents_mean/std a file\'s shift and scaling factors normalise: (z − shift)·scale', () => {
    const file = testVae(tmpDir('latent', 'factors'), false);
    const space = loadLatentSpace(file), vae = loadSdVae(file);
    const x = images(2), z = space.encode(x), mean = vae.encode(x).mean;
    for (let i = 0; i < z.size; i++) expect(z.data[i]).toBeCloseTo((mean.data[i] - 0.25) * 0.5, 5);
  });

  it('the shipped built-in VAE reconstructs built-in test images through the space (its file says MSE 0.029)', () => {
    const space = loadLatentSpace(SHIPPED);
    const ds = openDataset('builtin', { split: 'test', size: 32, count: 32 });
    const x = new Float32Array(32 * 3 * 32 * 32);
    for (let i = 0; i < 32; i++) ds.get(i, x, i * 3 * 32 * 32);
    const z = space.encode(fromData(x, [32, 3, 32, 32]));
    // Normalised latents: roughly zero mean, unit spread per channel.
    const d = z.data as Float32Array;
    let s = 0, ss = 0;
    for (const v of d) { s += v; ss += v * v; }
    expect(Math.abs(s / d.length)).toBeLessThan(0.5);
    expect(ss / d.length).toBeGreaterThan(0.3);
    expect(ss / d.length).toBeLessThan(3);
    const back = space.decode(d, 32, 8);
    let mse = 0;
    for (let i = 0; i < x.length; i++) mse += (back[i] - x[i]) ** 2;
    expect(mse / x.length).toBeLessThan(0.06);
  });
});

describe('latent cache', () => {
  const space = loadLatentSpace(testVae(tmpDir('latent', 'cache')));
  const data = openDataset('builtin', { split: 'train', size: 16, count: 150, seed: 2 });
  const lat = (c: LatentCache, idx: number[]) => tidy(() => Array.from(c.latents(idx).data));

  it('a sample\'s latent is the encoding of its dataset image, and its bits do not depend on which batch asked first', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 149 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 149 }), { minLength: 1, maxLength: 12 }), (first, then) => {
      const a = new LatentCache(space, data), b = new LatentCache(space, data);
      lat(a, first);
      expect(lat(a, then)).toEqual(lat(b, then)); // a warmed by another batch, b cold
    }), { numRuns: 8 });
    const c = new LatentCache(space, data), idx = [3, 140, 64];
    const got = lat(c, idx);
    const x = new Float32Array(3 * 3 * 16 * 16);
    idx.forEach((i, j) => data.get(i, x, j * 3 * 16 * 16));
    const want = tidy(() => Array.from(space.encode(fromData(x, [3, 3, 16, 16])).data));
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    expect(c.encoded).toBe(64 + 22 + 64); // chunks 0, 2 (128..149) and 1
    expect(() => lat(c, [150])).toThrow(/sample index 150 out of range \[0, 150\)/);
    const all = new LatentCache(space, data).fillAll();
    expect(all.encoded).toBe(150);
    expect(lat(all, idx)).toEqual(got); // filled up front or on demand: the same bits
    // A run that draws an epoch fills it before its first step; a shorter one on demand.
    const [epoch, short] = [runLatentCache(space, data, { steps: 19, batch_size: 8 }), runLatentCache(space, data, { steps: 18, batch_size: 8 })];
    expect([epoch.encoded, short.encoded]).toEqual([0, 0]); // built, nothing encoded yet
    expect(lat(epoch, [5])).toEqual(lat(short, [5]));
    expect([epoch.encoded, short.encoded]).toEqual([150, 64]);
  });
});

describe('latent space: spec', () => {
  it('a spec file\'s latent.autoencoder resolves against its folder; the model is fitted to the latents', () => {
    const spec = resolvePaths(parseSpec({ name: 'l', latent: { autoencoder: 'standins/vae-builtin.safetensors' }, model: { preset: 'SiT-S/1' } }), path.dirname(SHIPPED).replace(/standins$/, ''));
    expect(spec.latent!.autoencoder).toBe(SHIPPED);
    const c = modelConfigFor(spec, { channels: 3, height: 32, numClasses: 10 });
    expect([c.inChannels, c.inputSize]).toEqual([4, 8]);
  });

  it('errors name the field: a missing file, a size the factor does not divide, another channel count, a joint VAE as well', () => {
    const missing = parseSpec({ name: 'l', latent: { autoencoder: '/nonexistent/vae.safetensors' } });
    expect(() => modelConfigFor(missing, { channels: 3, height: 32, numClasses: 10 })).toThrow(/latent\.autoencoder: \/nonexistent\/vae\.safetensors not found/);
    const ok = parseSpec({ name: 'l', latent: { autoencoder: SHIPPED } });
    expect(() => modelConfigFor(ok, { channels: 3, height: 30, numClasses: 10 })).toThrow(/downsamples by 4; data.size 30 is not a multiple/);
    expect(() => modelConfigFor(ok, { channels: 1, height: 32, numClasses: 10 })).toThrow(/encodes 3-channel images but the data has 1/);
    const both = tinySpec('repa-e', { latent: { autoencoder: SHIPPED } });
    expect(() => checkSpecConsistency(both)).toThrow(/latent\.autoencoder names a frozen latent space, but repa-e trains its own VAE/);
    expect(() => parseSpec({ name: 'l', latent: { file: SHIPPED } })).toThrow(/latent/);
  });

  it('a file that is not a VAE is refused by name', () => {
    const dir = tmpDir('latent', 'bad');
    const file = path.join(dir, 'not-a-vae.safetensors');
    writeSafetensors(file, new Map([['w', fromData(new Float32Array(4), [4])]]));
    expect(() => latentSpaceOf({ latent: { autoencoder: file } })).toThrow(/latent\.autoencoder .*not-a-vae\.safetensors: not a diffusers-layout KL-VAE/);
  });
});

describe('latent space: runs', () => {
  const vaeFile = testVae(tmpDir('latent', 'run'));
  // 16 px → f4 → 4×4×4 latents, patch 1: 16 tokens.
  const spec = (o: Record<string, unknown> = {}) => tinySpec('sit-baseline', { latent: { autoencoder: vaeFile }, model: { preset: 'SiT-S/1', hidden_size: 32, depth: 3, num_heads: 2 }, ...o });

  it('the reference engine and the actors train on the same latents: the same losses', async () => {
    const s = spec({ train: { steps: 3, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: 3, schedule: 'constant', ema_decay: 0.9 } });
    const trainer = new Trainer(s, openTrainData(s));
    expect([trainer.config.inChannels, trainer.config.inputSize]).toEqual([4, 4]);
    const ref = [1, 2, 3].map(() => trainer.trainStep().loss);
    const out = tmpDir('latent', 'actors');
    await runActors({ spec: s, out, placement: 'local', quiet: true, samples: false });
    const act = readMetrics(out).map((l) => l.loss);
    expect(act).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(act[i]).toBeCloseTo(ref[i], 5);
  });

  it('a mirrored run encodes each batch as drawn (no cache) and trains', () => {
    const s = spec({ data: { dataset: 'builtin', size: 16, builtin_count: 96, hflip: true }, train: { steps: 2, batch_size: 8, lr: 1e-3, log_every: 1 } });
    const trainer = new Trainer(s, openTrainData(s));
    for (let i = 0; i < 2; i++) expect(Number.isFinite(trainer.trainStep().loss)).toBe(true);
  });

  it('on actors: 6 steps = 3 + resume 3 bit for bit, and the grid holds decoded 16×16 images', async () => {
    const { dir } = await expectResumeExact('latent', spec(), ['loss']);
    const size = (f: string) => { const p = PNG.sync.read(readFileSync(f)); return [p.width, p.height]; };
    // One row per class (10), one sample each (per_class 1): 3×16×16 images, not 4×4×4 latents.
    const ref = path.join(dir, 'ref.png');
    writePngGrid(ref, new Float32Array(10 * 3 * 16 * 16), 10, 3, 16, 16, 1);
    expect(size(path.join(dir, 'samples.png'))).toEqual(size(ref));
  });

  it('the Evaluator draws in the space and measures decoded images against real ones', () => {
    const files = writeTestStandins(tmpDir('latent', 'eval'));
    const s = spec({ eval: { samples: 20, steps: 2, reference: 40, probe_train: 40, probe_test: 20, classifier: files.classifier, encoder: files.encoder, sfid_channels: 2, block: 1 } });
    const data = openTrainData(s);
    const ev = Evaluation.prepare(s, modelConfigFor(s, data));
    const trainer = new Trainer(s, data);
    const r = ev.run(trainer.emaModel as never);
    for (const [k, v] of Object.entries(r)) expect(Number.isFinite(v), k).toBe(true);
  });
});
