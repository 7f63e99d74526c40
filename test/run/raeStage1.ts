// A tiny RAE stage-1 checkpoint for the tests of its latent space and of stage 2: the TINY rae spec
// (16 px builtin data, the encoder's 4×4×16 tokens, a 3-block ViT decoder) trained a few steps on
// the reference engine and saved where a spec's latent.autoencoder can name it.
import path from 'node:path';
import { saveCheckpoint } from '../../src/build/checkpoint.ts';
import { openTrainData } from '../../src/build/setup.ts';
import { Trainer } from '../../src/run/reference.ts';
import { tinySpec } from '../actors/specs.ts';
import { tmpDir } from './methodRun.ts';

/** Trains `steps` steps and saves; the checkpoint file. Its latent statistics read the first `statImages` training images. */
export function tinyStage1(steps = 2, statImages = 24): string {
  const spec = tinySpec('rae', { rae: { disc: 'PatchGAN-T', disc_start: 2, gan_start: 3, ref_per_class: 2, stat_images: statImages }, train: { steps, batch_size: 8, lr: 1e-3, log_every: 1, checkpoint_every: steps, ema_decay: 0.5 } });
  const t = new Trainer(spec, openTrainData(spec));
  for (let i = 0; i < steps; i++) t.trainStep();
  const file = path.join(tmpDir('rae', 'stage1'), 'checkpoint.safetensors');
  saveCheckpoint(file, t.checkpoint());
  return file;
}
