// The PatchGAN discriminator of REPA-E's VAE loss: taming-transformers' NLayerDiscriminator
// (taming/modules/discriminator/model.py, after pix2pix's networks.py; REPA-E carries the same
// class in loss/discriminator.py and builds it with input_nc 3, ndf 64, n_layers 3, BatchNorm).
// Layout, as one nn.Sequential `main` so the state_dict names are taming's (`main.0.weight`, …):
//   conv 4×4 stride 2 (bias) → LeakyReLU(0.2)
//   n_layers − 1 × [conv 4×4 stride 2 (no bias) → BatchNorm2d → LeakyReLU(0.2)], widths ndf·min(2^n, 8)
//   conv 4×4 stride 1 (no bias) → BatchNorm2d → LeakyReLU(0.2), width ndf·min(2^n_layers, 8)
//   conv 4×4 stride 1 (bias) → 1 channel: one logit per patch
// Every conv has padding 1, so a stride-2 conv halves an even side and a stride-1 conv takes one
// pixel off: on 32×32 images n_layers 3 gives a 2×2 logit map (receptive field 70 px, larger than
// the image), n_layers 2 a 6×6 map (receptive field 34 px), n_layers 1 a 14×14 map (16 px).
// Initialisation is taming's weights_init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02)
// and biases 0; the two conv biases keep PyTorch's default U(±1/√fan_in) (weights_init leaves
// them), all drawn from one Rng. The BatchNorm layers follow the module's train/eval mode (REPA-E's
// discriminator stays in train mode: batch statistics in both the generator and the discriminator
// pass). Not here: the losses and the adaptive weight (ganLoss.ts), ActNorm (taming's
// use_actnorm option, unused by REPA-E).
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { leakyRelu } from '../autograd/ops/leakyRelu.ts';
import { Module } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { BatchNorm2d } from '../nn/batchNorm.ts';
import { Sequential, type Layer } from '../nn/sequential.ts';
import { constant, normal } from '../nn/init.ts';

export const patchGanConfigSchema = z.object({
  /** Image channels (taming's input_nc). */
  inChannels: z.number().int().positive(),
  /** Filters of the first conv (taming's ndf); later convs use ndf·min(2^n, 8). */
  ndf: z.number().int().positive(),
  /** Stride-2 convs (taming's n_layers). */
  nLayers: z.number().int().positive(),
}).strict();

export type PatchGanConfig = z.infer<typeof patchGanConfigSchema>;

export function parsePatchGanConfig(v: unknown): PatchGanConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = patchGanConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid PatchGAN config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/**
 * 'PatchGAN-T': tests (ndf 8, 2 layers); 'PatchGAN-S': the size for this project's 32×32 images
 * (ndf 32, 2 layers: 6×6 logits, 34-px patches; 168 k parameters); 'PatchGAN-official': REPA-E's
 * (ndf 64, 3 layers; 2.8 M parameters, 2×2 logits on 32×32).
 */
export const PATCHGAN_PRESETS: Record<string, PatchGanConfig> = {
  'PatchGAN-T': parsePatchGanConfig({ inChannels: 3, ndf: 8, nLayers: 2 }),
  'PatchGAN-S': parsePatchGanConfig({ inChannels: 3, ndf: 32, nLayers: 2 }),
  'PatchGAN-official': parsePatchGanConfig({ inChannels: 3, ndf: 64, nLayers: 3 }),
};

export function patchGanPreset(name: string, overrides: Partial<PatchGanConfig> = {}): PatchGanConfig {
  const base = PATCHGAN_PRESETS[name];
  if (!base) throw new Error(`unknown PatchGAN preset '${name}'; known: ${Object.keys(PATCHGAN_PRESETS).join(', ')}`);
  return parsePatchGanConfig({ ...base, ...overrides });
}

/** nn.LeakyReLU(slope) as a parameter-free module, so Sequential indices match torch's. */
export class LeakyReLU extends Module {
  constructor(readonly slope = 0.01) { super(); }
  forward(x: Tensor): Tensor { return leakyRelu(x, this.slope); }
}

const KERNEL = 4, PAD = 1;

/** Output side of the logit map for a square input of side `side` (throws if it vanishes). */
export function patchGanOutputSide(config: Pick<PatchGanConfig, 'nLayers'>, side: number): number {
  let s = side;
  for (let i = 0; i < config.nLayers; i++) s = Math.floor((s + 2 * PAD - KERNEL) / 2) + 1;
  for (let i = 0; i < 2; i++) s = s + 2 * PAD - KERNEL + 1;
  if (s < 1) throw new Error(`PatchGAN: ${config.nLayers} layers leave no output on ${side}-px images`);
  return s;
}

/** Receptive field (pixels) of one output logit. */
export function patchGanReceptiveField(config: Pick<PatchGanConfig, 'nLayers'>): number {
  let rf = 1;
  for (let i = 0; i < 2; i++) rf += KERNEL - 1; // the two stride-1 convs, innermost first
  for (let i = 0; i < config.nLayers; i++) rf = rf * 2 + (KERNEL - 2);
  return rf;
}

export class NLayerDiscriminator extends Module {
  readonly config: PatchGanConfig;
  readonly main: Sequential;

  constructor(config: PatchGanConfig, rng: Rng) {
    super();
    const c = (this.config = parsePatchGanConfig(config));
    const layers: Layer[] = [];
    const conv = (i: number, o: number, stride: number, bias: boolean): Conv2d =>
      new Conv2d(i, o, KERNEL, rng.child(`main.${layers.length}`), { stride, padding: PAD, bias });
    layers.push(conv(c.inChannels, c.ndf, 2, true), new LeakyReLU(0.2));
    let mult = 1;
    for (let n = 1; n < c.nLayers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      layers.push(conv(c.ndf * prev, c.ndf * mult, 2, false), new BatchNorm2d(c.ndf * mult), new LeakyReLU(0.2));
    }
    const prev = mult;
    mult = Math.min(2 ** c.nLayers, 8);
    layers.push(conv(c.ndf * prev, c.ndf * mult, 1, false), new BatchNorm2d(c.ndf * mult), new LeakyReLU(0.2));
    layers.push(conv(c.ndf * mult, 1, 1, true));
    this.main = this.child('main', new Sequential(layers));
    // taming's weights_init: Conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0.
    const init = rng.child('weights_init');
    this.main.layers.forEach((m, i) => {
      if (m instanceof Conv2d) normal(m.weight, init.child(i), 0.02);
      else if (m instanceof BatchNorm2d) {
        normal(m.weight!, init.child(i), 0.02, 1);
        constant(m.bias!, 0);
      }
    });
  }

  /** x (B, C, H, W) -> patch logits (B, 1, h, w). */
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.config.inChannels) {
      throw new Error(`NLayerDiscriminator: expected (B, ${this.config.inChannels}, H, W), got ${fmtShape(x.shape)}`);
    }
    return this.main.forward(x);
  }
}

export function createPatchGan(config: PatchGanConfig, seed: number): NLayerDiscriminator {
  return new NLayerDiscriminator(config, new Rng(seed).child('discriminator'));
}
