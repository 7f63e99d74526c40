// RAE (Zheng et al., "Diffusion Transformers with Representation Autoencoders", arXiv 2510.11690;
// official code github.com/bytetriper/RAE: src/stage1/rae.py, src/train_stage1.py; methods-b §5),
// stage 1 (`rae.stage: decoder`): a representation autoencoder whose encoder is the run's frozen
// encoder (diffactor's stand-in, spec section `encoder`) and whose decoder is a ViT trained to
// render its tokens. Per step:
//   z  = LN_noaffine(tokens) = (tokens − β)/γ           the frozen encoder's patch tokens (model.ts)
//   z' = z + σ·n, σ = τ·U(0, 1) per image, n ~ N(0, I)  noise augmentation, train only (τ 0.8)
//   x̂  = ViTDecoder(z')                                 (model: width/depth/heads of `model:`)
//   L  = l1·|x̂ − x| + l2·(x̂ − x)² + p·LPIPS + λ·GAN_G  + D's hinge       (loss.ts, one tape)
// The decoder's settings come from the spec's `model:` (hidden_size, depth, num_heads, mlp_ratio;
// patch = pixels per token side, so the token grid is data.size / patch, the encoder's grid).
// The grid a decoder run writes (and `diffactor sample` draws) is a RECONSTRUCTION grid: class c's
// row renders the tokens of the first ref_per_class training images of class c (model.ts drawOwn);
// its FD is a reconstruction FD. reconstructionError (recon.ts) is the test-set MSE/PSNR.
// A stage-1 checkpoint is a latent space other specs can name (latent.autoencoder; latent.ts: the
// normalised tokens, decoded by the EMA decoder with τ = 0). Stage 2, the DiT^DH trained in that
// space, is the method dit-dh (methods/dit-dh).
import { z } from 'zod';
import { Rng } from '../../tensor/rng.ts';
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { noiseAugment } from '../../models/vitDecoder.ts';
import { PATCHGAN_PRESETS } from '../../models/patchGan.ts';
import { sectionPerceptualNet } from '../../models/perceptualFile.ts';
import type { BuildContext, MethodDefinition, SpecView, StudentForward, TrainingSet } from '../method.ts';
import { RaeDecoderModel, createRaeDecoderModel } from './model.ts';
import { raeDecoderLoss } from './loss.ts';
import { raeLatentSpace } from './latent.ts';

const STREAM = 'rae-noise';

export const RaeSection = z.strictObject({
  /** Which stage this run trains: the decoder (stage 1). Stage 2 is the method dit-dh, in this run's space (latent.autoencoder). */
  stage: z.enum(['decoder']).default('decoder'),
  /** τ of the noise augmentation, σ ~ U(0, τ) per image (rae.py noise_tau 0.8; the paper's text says half-normal, the code uniform). 0: none. */
  noise_tau: z.number().min(0).default(0.8),
  /** Weight of mean |x̂ − x| (train_stage1.py: 1.0). */
  l1_weight: z.number().min(0).default(1.0),
  /** Weight of mean (x̂ − x)², the engines' `diff` term (RAE: 0, an L1 loss; logged either way). */
  l2_weight: z.number().min(0).default(0),
  /** Weight of LPIPS, here on the frozen perceptual stand-in (docs/models/perceptual.md) (RAE: 1.0). 0: no net loaded. */
  perceptual_weight: z.number().min(0).default(1.0),
  /** The perceptual-net file; null: the one shipped for the run's dataset (fashion-mnist, builtin). */
  perceptual_net: z.string().min(1).nullable().default(null),
  /** The factor of the adaptive GAN weight (RAE: 0.75). 0: no generator term. */
  gan_weight: z.number().min(0).default(0.75),
  /**
   * 1-based step from which the generator's term counts. RAE: epoch 8 of 16; null: ⌈steps/2⌉ + 1
   * (the same half of the run).
   */
  gan_start: z.number().int().positive().nullable().default(null),
  /** 1-based step from which D trains. RAE: epoch 6 of 16; null: ⌈3·steps/8⌉ + 1. */
  disc_start: z.number().int().positive().nullable().default(null),
  /** The discriminator: a PatchGAN preset (models/patchGan.ts; RAE's is a frozen DINO-S/8 with conv heads). */
  disc: z.enum(Object.keys(PATCHGAN_PRESETS) as [string, ...string[]]).default('PatchGAN-S'),
  /** Training images per class whose reconstructions the grid shows. */
  ref_per_class: z.number().int().positive().default(8),
  /**
   * When another spec names this run's checkpoint as its latent.autoencoder: the first N training
   * images whose latents give the per-element μ and var of the normalisation (RAE: the dataset).
   */
  stat_images: z.number().int().min(2).default(1024),
});
export type RaeSection = z.infer<typeof RaeSection>;

/** The 1-based steps the GAN terms start at, for a run of `steps` steps. */
export function ganSchedule(s: RaeSection, steps: number): { ganStart: number; discStart: number } {
  return { ganStart: s.gan_start ?? Math.ceil(steps / 2) + 1, discStart: s.disc_start ?? Math.ceil((3 * steps) / 8) + 1 };
}

function asRae(m: unknown): RaeDecoderModel {
  if (!(m instanceof RaeDecoderModel)) throw new Error('rae: expected the stage-1 decoder model');
  return m;
}

/** The encoder's final-norm affine and the reference tokens, read from the training set once. */
function fitReferences(m: RaeDecoderModel, ts: TrainingSet): void {
  const norm = ts.encoder.vit.norm;
  if (!norm.weight || !norm.bias) throw new Error('rae: the encoder\'s final LayerNorm has no affine to remove');
  m.setEncoderNorm(norm.weight.data, norm.bias.data);
  const { data } = ts, r = m.refPerClass, k = m.config.numClasses, per = data.channels * data.height * data.width;
  const picked: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0, left = k * r; i < data.count && left > 0; i++) {
    const c = data.label(i);
    if (c < k && picked[c].length < r) { picked[c].push(i); left--; }
  }
  picked.forEach((ids, c) => { if (ids.length === 0) throw new Error(`rae: the training set has no image of class ${c} for the reconstruction grid`); });
  const [, n, d] = m.ref_tokens.shape;
  for (let c = 0; c < k; c++) {
    const ids = Array.from({ length: r }, (_, j) => picked[c][j % picked[c].length]);
    const x = new Float32Array(r * per);
    ids.forEach((id, j) => data.get(id, x, j * per));
    const t = m.tokensOf(ts.encoder.features(tensor(x, [r, data.channels, data.height, data.width])).patch); // (R, N, d)
    m.ref_tokens.data.set(t.data, c * r * n * d);
  }
}

function build(s: RaeSection, c: BuildContext, seed: number): RaeDecoderModel {
  if (c.encoderDim === null) throw new Error('rae: stage 1 decodes the encoder\'s tokens: the spec needs an encoder section');
  const m = createRaeDecoderModel(c.config, { tokenDim: c.encoderDim, disc: s.disc, refPerClass: s.ref_per_class }, seed);
  m.schedule = ganSchedule(s, c.spec.train.steps);
  if (c.trainingSet) fitReferences(m, c.trainingSet());
  if (c.training) m.perceptual = sectionPerceptualNet('rae', s, (c.spec as SpecView & { data: { dataset: string } }).data.dataset, c.config.inChannels);
  return m;
}

export const rae: MethodDefinition<RaeSection> = {
  name: 'rae',
  title: 'RAE (decoder)',
  cite: 'Zheng et al., Diffusion Transformers with Representation Autoencoders, arXiv 2510.11690 — github.com/bytetriper/RAE (src/stage1/rae.py, src/train_stage1.py)',
  section: { key: 'rae', schema: RaeSection },
  reads: ['encoder'],
  changes: ['input', 'target', 'backbone', 'objective'],
  streams: [STREAM],
  check: (s, spec) => {
    if (spec.model.learn_sigma) throw new Error('rae: the decoder predicts pixels: model.learn_sigma must be false');
    const evalEvery = (spec.train as { eval_every?: number }).eval_every ?? 0;
    if (evalEvery > 0) throw new Error(`rae: train.eval_every is ${evalEvery} but the evaluator's probe and CKNNA need a diffusion model's hidden states: set it to 0 (measure reconstructions with npx diffactor recon --autoencoder RUN/checkpoint.safetensors)`);
    const { ganStart, discStart } = ganSchedule(s, spec.train.steps);
    if (s.gan_weight > 0 && ganStart < discStart) throw new Error(`rae.gan_start (${ganStart}) is before rae.disc_start (${discStart}): the generator would train against an untrained discriminator (RAE starts D first)`);
  },
  files: (s) => ({ 'rae.perceptual_net': s.perceptual_net }),
  // One seed per step for the noise augmentation (σ and n are drawn from Rng(seed) in the forward).
  draw: (_s, v, rngs) => ({ step: v.step, noiseSeed: rngs[STREAM].randintArray(0, 0x7fffffff, 1)[0] }),
  diffWeight: (s) => s.l2_weight,
  // A stage-1 checkpoint as another spec's latent space (latent.ts): encoder tokens ↔ the EMA decoder.
  autoencoder: (s, c) => {
    if (!(c.model instanceof RaeDecoderModel)) throw new Error(`latent.autoencoder ${c.file}: its rae run did not build the stage-1 decoder model`);
    const ts = c.trainingSet();
    return raeLatentSpace(c.file, c.model, ts.encoder, ts.data, s.stat_images);
  },
  backbone: {
    build: (s, c, seed) => build(s, c, seed),
    fromWeights: (s, c, weights) => {
      const w = weights.get('enc_norm_weight');
      if (!w || !weights.has('decoder.decoder_pred.weight')) throw new Error('rae: the weights have no enc_norm_weight / decoder.decoder_pred.weight — not an RAE stage-1 checkpoint');
      return createRaeDecoderModel(c.config, { tokenDim: w.size, disc: s.disc, refPerClass: s.ref_per_class }, 0);
    },
    readsFeatures: true,
    // The buffers (norm affine, reference tokens, D's BatchNorm statistics) are copied, not averaged.
    emaCopied: (model) => asRae(model).namedBuffers(),
    forward: (s, model, b, _path, _dropout): StudentForward => {
      const m = asRae(model);
      if (!b.feats) throw new Error('rae: the forward needs the encoder\'s patch tokens');
      const d = b.draws.rae as { step: number; noiseSeed: number };
      const zt = m.tokensOf(b.feats.patch); // (B, N, d)
      const zin = m.training ? noiseAugment(zt, s.noise_tau, new Rng(d.noiseSeed)) : zt;
      const recon = m.forward(zin); // (B, C, H, W)
      const { terms } = raeDecoderLoss(m, b.input, recon, d.step, {
        l1: s.l1_weight, l2: s.l2_weight, perceptual: s.perceptual_weight, gan: s.gan_weight, ...m.schedule,
      });
      return { out: recon, target: b.input, hidden: new Map<number, Tensor>(), labels: Int32Array.from(b.y), terms };
    },
  },
};

