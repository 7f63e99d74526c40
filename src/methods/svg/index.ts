// SVG (Shi et al., "Latent Diffusion Model without Variational Autoencoder", arXiv 2510.15301;
// official code github.com/shiml20/SVG: autoencoder/ldm/models/dino_decoder.py,
// autoencoder/ldm/modules/losses/contperceptual_decoder.py; methods-b §6), stage 1
// (`svg.stage: autoencoder`): the latent is the frozen encoder's patch tokens (the run's `encoder`,
// diffactor's stand-in for DINOv3) with r residual channels from a small trainable ViT appended,
// distribution-matched to them, and a decoder renders it to pixels (model.ts). Per step:
//   h_enc = encoder tokens (B, N, d)                                          frozen, no gradient
//   h_res = residual(x) (B, N, r); masked per sample with probability mask_prob (train only)
//   z     = [h_enc ; match(h_enc, h_res)]                                       (matching.ts)
//   x̂     = decoder(z)
//   L     = l1·|x̂ − x| + p·LPIPS + d_w·GAN_G  + D's hinge, both GAN terms from gan_start  (loss.ts)
// Only the residual ViT, its head, the mask token, the decoder (and D, on its own term) train. The
// decoder's size comes from the spec's `model:` (hidden_size, depth, num_heads, mlp_ratio; patch =
// pixels per token side = the encoder's patch). The grid a stage-1 run writes is a RECONSTRUCTION
// grid of ref_per_class training images per class. A stage-1 checkpoint is a latent space other specs
// name (latent.autoencoder; latent.ts, per-channel normalised). Stage 2, SVG's DiT with q/k-norm and
// its two time shifts in that space, is the method svg-dit (src/methods/svg-dit).
import { z } from 'zod';
import { Rng } from '../../tensor/rng.ts';
import { tensor } from '../../tensor/tensor.ts';
import { PATCHGAN_PRESETS } from '../../models/patchGan.ts';
import { sectionPerceptualNet } from '../../models/perceptualFile.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import type { BuildContext, MethodDefinition, SpecView, StudentForward, TrainingSet } from '../method.ts';
import { SvgAutoencoderModel, createSvgAutoencoder, type SvgResidualSize } from './model.ts';
import { svgAutoencoderLoss } from './loss.ts';
import { svgLatentSpace } from './latent.ts';

const STREAM = 'svg-mask';
const positiveInt = z.number().int().positive();

export const SvgSection = z.strictObject({
  /** Which stage this run trains: the autoencoder (stage 1). Stage 2 is the method svg-dit, in this run's space (latent.autoencoder). */
  stage: z.enum(['autoencoder']).default('autoencoder'),
  /** r, the residual channels appended to the encoder's (SVG: 8; methods-b §6 small scale: 4–8). */
  residual_channels: positiveInt.default(8),
  /** The residual ViT's width, blocks and heads (SVG: 384, 6, 8; MLP 4× the width). */
  residual_width: positiveInt.default(384),
  residual_depth: positiveInt.default(6),
  residual_heads: positiveInt.default(8),
  /** Probability per sample that all of h_res is replaced by the mask vector, training only (SVG: mask_ratio 0.1). */
  mask_prob: z.number().min(0).max(1).default(0.1),
  /** Weight of mean |x̂ − x| (SVG: 1.0). */
  l1_weight: z.number().min(0).default(1.0),
  /** Weight of LPIPS, on the frozen perceptual stand-in (SVG: 1.0). 0: no net loaded. */
  perceptual_weight: z.number().min(0).default(1.0),
  /** The perceptual-net file; null: the one shipped for the run's dataset. */
  perceptual_net: z.string().min(1).nullable().default(null),
  /** The factor of the adaptive GAN weight (SVG: disc_weight 0.5). 0: no GAN. */
  gan_weight: z.number().min(0).default(0.5),
  /** 1-based step from which the generator's term and D's term count (SVG: 5001); null: ⌈steps/2⌉ + 1. */
  gan_start: positiveInt.nullable().default(null),
  /** The discriminator: a PatchGAN preset (SVG: the 3-layer PatchGAN). */
  disc: z.enum(Object.keys(PATCHGAN_PRESETS) as [string, ...string[]]).default('PatchGAN-S'),
  /** Training images per class whose reconstructions the grid shows. */
  ref_per_class: positiveInt.default(8),
  /** As another spec's latent.autoencoder: the first N training images whose latents give the per-channel μ and σ (SVG: dinov3_sp_stats.pt). */
  stat_images: z.number().int().min(2).default(1024),
});
export type SvgSection = z.infer<typeof SvgSection>;

export const ganStartOf = (s: SvgSection, steps: number): number => s.gan_start ?? Math.ceil(steps / 2) + 1;

const residualOf = (s: SvgSection): SvgResidualSize => ({ channels: s.residual_channels, width: s.residual_width, depth: s.residual_depth, heads: s.residual_heads });

function asSvg(m: unknown): SvgAutoencoderModel {
  if (!(m instanceof SvgAutoencoderModel)) throw new Error('svg: expected the stage-1 autoencoder model');
  return m;
}

/** The reference images of the reconstruction grid and their encoder tokens, read from the training set once. */
function fitReferences(m: SvgAutoencoderModel, ts: TrainingSet): void {
  const { data } = ts, r = m.refPerClass, k = m.config.numClasses, per = data.channels * data.height * data.width;
  const picked: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0, left = k * r; i < data.count && left > 0; i++) {
    const c = data.label(i);
    if (c < k && picked[c].length < r) { picked[c].push(i); left--; }
  }
  picked.forEach((ids, c) => { if (ids.length === 0) throw new Error(`svg: the training set has no image of class ${c} for the reconstruction grid`); });
  const [, n, d] = m.ref_tokens.shape;
  for (let c = 0; c < k; c++) {
    const x = new Float32Array(r * per);
    for (let j = 0; j < r; j++) data.get(picked[c][j % picked[c].length], x, j * per);
    m.ref_images.data.set(x, c * r * per);
    const t = ts.encoder.features(tensor(x, [r, data.channels, data.height, data.width])).patch; // (R, N, d)
    m.ref_tokens.data.set(t.data, c * r * n * d);
  }
}

function build(s: SvgSection, c: BuildContext, seed: number): SvgAutoencoderModel {
  if (c.encoderDim === null) throw new Error('svg: stage 1 appends a residual to the encoder\'s tokens: the spec needs an encoder section');
  const m = createSvgAutoencoder(c.config, { tokenDim: c.encoderDim, residual: residualOf(s), disc: s.disc, refPerClass: s.ref_per_class }, seed);
  m.ganStart = ganStartOf(s, c.spec.train.steps);
  if (c.trainingSet) fitReferences(m, c.trainingSet());
  // The perceptual net on the model the optimiser trains, also under `diffactor simulate` (no training set there).
  if (c.training) m.perceptual = sectionPerceptualNet('svg', s, (c.spec as SpecView & { data: { dataset: string } }).data.dataset, c.config.inChannels);
  return m;
}

/** Which samples of a batch of B the mask replaces: U(0,1) < p from the step's seed. */
export function maskFlags(seed: number, B: number, p: number): Float32Array {
  const u = new Rng(seed).uniformArray(B), f = new Float32Array(B);
  for (let b = 0; b < B; b++) f[b] = u[b] < p ? 1 : 0;
  return f;
}

export const svg: MethodDefinition<SvgSection> = {
  name: 'svg',
  title: 'SVG (autoencoder)',
  cite: 'Shi et al., Latent Diffusion Model without Variational Autoencoder, arXiv 2510.15301 — github.com/shiml20/SVG (autoencoder/ldm/models/dino_decoder.py, autoencoder/ldm/modules/losses/contperceptual_decoder.py)',
  section: { key: 'svg', schema: SvgSection },
  reads: ['encoder'],
  changes: ['input', 'target', 'backbone', 'objective'],
  streams: [STREAM],
  check: (s, spec) => {
    if (spec.model.learn_sigma) throw new Error('svg: the decoder predicts pixels: model.learn_sigma must be false');
    const evalEvery = (spec.train as { eval_every?: number }).eval_every ?? 0;
    if (evalEvery > 0) throw new Error(`svg: train.eval_every is ${evalEvery} but the evaluator's probe and CKNNA need a diffusion model's hidden states: set it to 0`);
    if (s.residual_width % s.residual_heads !== 0) throw new Error(`svg.residual_width ${s.residual_width} is not divisible by svg.residual_heads ${s.residual_heads}`);
  },
  files: (s) => ({ 'svg.perceptual_net': s.perceptual_net }),
  // One seed per step for the per-sample mask flags.
  draw: (_s, v, rngs) => ({ step: v.step, maskSeed: rngs[STREAM].randintArray(0, 0x7fffffff, 1)[0] }),
  // The engines' `diff` (the MSE to the image) is logged, not trained: SVG's reconstruction term is L1.
  diffWeight: () => 0,
  autoencoder: (s, c) => {
    if (!(c.model instanceof SvgAutoencoderModel)) throw new Error(`latent.autoencoder ${c.file}: its svg run did not build the stage-1 autoencoder model`);
    const ts = c.trainingSet();
    return svgLatentSpace(c.file, c.model, ts.encoder, ts.data, s.stat_images);
  },
  backbone: {
    build: (s, c, seed) => build(s, c, seed),
    fromWeights: (s, c, weights) => {
      const mask = weights.get('mask_token'), ref = weights.get('ref_tokens');
      if (!mask || !ref || !weights.has('decoder.decoder_pred.weight')) throw new Error('svg: the weights have no mask_token / ref_tokens / decoder.decoder_pred.weight — not an SVG stage-1 checkpoint');
      return createSvgAutoencoder(c.config, { tokenDim: ref.shape[2], residual: { ...residualOf(s), channels: mask.size }, disc: s.disc, refPerClass: s.ref_per_class }, 0);
    },
    readsFeatures: true,
    // The buffers (reference tokens and images, D's BatchNorm statistics) are copied, not averaged.
    emaCopied: (model) => asSvg(model).namedBuffers(),
    forward: (s, model, b, _path, _dropout): StudentForward => {
      const m = asSvg(model);
      if (!b.feats) throw new Error('svg: the forward needs the encoder\'s patch tokens');
      const d = b.draws.svg as { step: number; maskSeed: number };
      const flags = m.training && s.mask_prob > 0 ? maskFlags(d.maskSeed, b.input.shape[0], s.mask_prob) : null;
      const recon = m.forward(m.latent(b.feats.patch, b.input, flags)); // (B, C, H, W)
      const { terms } = svgAutoencoderLoss(m, b.input, recon, d.step, { l1: s.l1_weight, perceptual: s.perceptual_weight, gan: s.gan_weight, ganStart: m.ganStart });
      return { out: recon, target: b.input, hidden: new Map<number, Tensor>(), labels: Int32Array.from(b.y), terms };
    },
  },
};
