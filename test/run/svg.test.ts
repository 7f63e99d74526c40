// SVG end to end at the tiny size: stage 1 (methods: [svg]) trained a few steps on the reference
// engine and saved; its checkpoint opened as a latent space (the file kind decides: SvgLatentSpace,
// d + r channels, per-channel statistics computed the same way by every opening); stage 2
// (methods: [svg-dit], latent.autoencoder = that checkpoint) on actors: the same losses as the
// reference engine, 6 steps == 3 + a resume of 3 bit for bit, the final grid holds DECODED 16×16 RGB
// images, and the checkpoint rebuilds SVG's DiT (a plain SiT refuses its q/k-norm weights) and
// `diffactor sample` draws with it. Also: stage 1 on actors writes its reconstruction grid.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { writePngGrid } from '../../src/io/png.ts';
import { tensor } from '../../src/tensor/tensor.ts';
import { saveCheckpoint } from '../../src/build/checkpoint.ts';
import { openTrainData, modelConfigFor } from '../../src/build/setup.ts';
import { loadLatentSpace } from '../../src/build/latentSpace.ts';
import { runActors } from '../../src/run/actorRun.ts';
import { Trainer } from '../../src/run/reference.ts';
import { SvgLatentSpace } from '../../src/methods/svg/latent.ts';
import { SvgDiT } from '../../src/methods/svg-dit/model.ts';
import { tinySpec } from '../actors/specs.ts';
import { expectResumeExact, expectSamplesWith, readMetrics, tmpDir } from './methodRun.ts';

/** The tiny svg spec trained `steps` steps and saved; the checkpoint file (latent statistics over 24 images). */
function tinySvgStage1(steps = 3): string {
  const spec = tinySpec('svg', { svg: { residual_channels: 4, residual_width: 16, residual_depth: 1, residual_heads: 2, disc: 'PatchGAN-T', gan_start: 3, ref_per_class: 2, stat_images: 24 }, train: { steps, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: steps, ema_decay: 0.5 } });
  const t = new Trainer(spec, openTrainData(spec));
  for (let i = 0; i < steps; i++) expect(Number.isFinite(t.trainStep().loss)).toBe(true);
  const file = path.join(tmpDir('svg', 'stage1'), 'checkpoint.safetensors');
  saveCheckpoint(file, t.checkpoint());
  return file;
}

describe('SVG in two stages', () => {
  const stage1 = tinySvgStage1();
  // 16 tokens of 16 + 4 channels; a 2-block SiT of width 32 with q/k-norm.
  const spec = (o: Record<string, unknown> = {}) => tinySpec('svg-dit', {
    latent: { autoencoder: stage1 }, model: { preset: 'SiT-S/1', hidden_size: 32, depth: 2, num_heads: 2 }, ...o,
  });

  it('the stage-1 checkpoint is an SVG latent space: 20 channels on the 4×4 grid, statistics per channel, the same at every opening', () => {
    const a = loadLatentSpace(stage1) as SvgLatentSpace, b = loadLatentSpace(stage1) as SvgLatentSpace;
    expect(a).toBeInstanceOf(SvgLatentSpace);
    expect([a.channels, a.grid, a.factor, a.inputChannels, a.imageChannels]).toEqual([20, 4, 4, 3, 3]);
    expect(Array.from(b.mean)).toEqual(Array.from(a.mean));
    expect(Array.from(b.std)).toEqual(Array.from(a.std));
    const s = spec(), c = modelConfigFor(s, openTrainData(s));
    expect([c.inChannels, c.inputSize]).toEqual([20, 4]);
    // Encoding the statistics' images gives per-channel means ≈ 0 and variances ≈ 1 (eps aside).
    const data = openTrainData(s), per = data.channels * data.height * data.width, n = 24, x = new Float32Array(n * per);
    for (let i = 0; i < n; i++) data.get(i, x, i * per);
    const z = a.encode(tensor(x, [n, data.channels, data.height, data.width])).data;
    for (const ch of [0, 15, 16, 19]) {
      let m = 0, v = 0;
      for (let k = 0; k < n; k++) for (let p = 0; p < 16; p++) m += z[(k * 20 + ch) * 16 + p];
      m /= n * 16;
      for (let k = 0; k < n; k++) for (let p = 0; p < 16; p++) v += (z[(k * 20 + ch) * 16 + p] - m) ** 2;
      expect(Math.abs(m), `channel ${ch} mean`).toBeLessThan(1e-4);
      expect(v / (n * 16), `channel ${ch} variance`).toBeLessThanOrEqual(1 + 1e-6);
      expect(v / (n * 16), `channel ${ch} variance`).toBeGreaterThan(0.5);
    }
  }, 120_000);

  it('stage 2: the reference engine and the actors give the same losses on the same latents', async () => {
    const s = spec({ train: { steps: 3, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: 3, schedule: 'constant', ema_decay: 0.9 } });
    const trainer = new Trainer(s, openTrainData(s));
    expect(trainer.model).toBeInstanceOf(SvgDiT);
    expect([(trainer.model as SvgDiT).trainShift, (trainer.model as SvgDiT).sampleShift]).toEqual([0.4, 0.15]);
    const ref = [1, 2, 3].map(() => trainer.trainStep().loss);
    const out = tmpDir('svg', 'actors');
    await runActors({ spec: s, out, placement: 'local', quiet: true, samples: false });
    const act = readMetrics(out).map((l) => l.loss);
    expect(act).toHaveLength(3);
    for (let i = 0; i < 3; i++) expect(act[i]).toBeCloseTo(ref[i], 5);
  }, 240_000);

  it('stage 2 on actors: 6 steps == 3 + resume 3 bit for bit; a decoded 16×16 grid; `sample` draws with SVG\'s DiT', async () => {
    const { dir } = await expectResumeExact('svg', spec(), ['loss', 'diff']);
    const size = (f: string) => { const p = PNG.sync.read(readFileSync(f)); return [p.width, p.height]; };
    const ref = path.join(dir, 'ref.png');
    writePngGrid(ref, new Float32Array(10 * 3 * 16 * 16), 10, 3, 16, 16, 1);
    expect(size(path.join(dir, 'samples.png'))).toEqual(size(ref));
    const m = expectSamplesWith('svg', dir, SvgDiT) as SvgDiT;
    expect([m.trainShift, m.sampleShift]).toEqual([0.4, 0.15]);
  }, 240_000);

  it('stage 1 on actors: the reconstruction grid', async () => {
    const out = tmpDir('svg', 'stage1-actors');
    await runActors({ spec: tinySpec('svg', { train: { steps: 3, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: 3, ema_decay: 0.5 } }), out, placement: 'local', quiet: true });
    expect(existsSync(path.join(out, 'samples.png'))).toBe(true);
    for (const l of readMetrics(out)) for (const k of ['l1', 'lpips', 'gan', 'disc']) expect(Number.isFinite(l[k]), `${k} at ${l.step}`).toBe(true);
  }, 240_000);
});
