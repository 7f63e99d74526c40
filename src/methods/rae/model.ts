// RAE's stage-1 model as diffactor trains it (Zheng et al., "Diffusion Transformers with
// Representation Autoencoders", arXiv 2510.11690; official code github.com/bytetriper/RAE,
// src/stage1/rae.py and src/train_stage1.py; methods-b §5): the ViT decoder (models/vitDecoder.ts)
// that maps the frozen encoder's patch tokens back to pixels, and the adversary of its loss, a
// PatchGAN (models/patchGan.ts), in ONE module so that one optimiser and one checkpoint carry both
// (loss.ts says how one tape gives each its own gradient). Buffers it keeps:
//   enc_norm_weight, enc_norm_bias (d)  the frozen encoder's final LayerNorm affine, to undo it:
//                                        RAE drops that affine (tokens = LN without γ, β); diffactor's
//                                        encoder returns γ·n + β, so n = (tokens − β) / γ (tokensOf);
//   ref_tokens (K·R, N, d)              the un-affined tokens of R training images per class, read
//                                        once at build: what the decoder renders when asked to "draw"
//                                        class c (drawOwn), i.e. a reconstruction grid, not samples.
// Not here: the method and its spec section (index.ts), the losses (loss.ts), the stage-2 DiT^DH.
import { Tensor, tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { div, sub } from '../../autograd/ops/index.ts';
import { Module } from '../../nn/module.ts';
import { gridSize, parseSiTConfig, type SiTConfig } from '../../models/config.ts';
import { ViTDecoder, parseViTDecoderConfig } from '../../models/vitDecoder.ts';
import { NLayerDiscriminator, patchGanPreset } from '../../models/patchGan.ts';
import type { PerceptualNet } from '../../models/perceptualNet.ts';
import { classCounts, type OwnSampleSettings } from '../method.ts';

export interface RaeDecoderOptions {
  /** d_enc, the width of the frozen encoder's tokens. */
  tokenDim: number;
  /** PatchGAN preset of the discriminator (models/patchGan.ts). */
  disc: string;
  /** Reference images per class kept for the reconstruction grid. */
  refPerClass: number;
}

/** |γ| below this makes (tokens − β)/γ meaningless: refused. */
const MIN_GAMMA = 1e-6;

export class RaeDecoderModel extends Module {
  /** The run's model config: image channels and side, the decoder's width, depth, heads and MLP ratio, patch = pixels per token side. */
  readonly config: SiTConfig;
  readonly decoder: ViTDecoder;
  readonly disc: NLayerDiscriminator;
  readonly enc_norm_weight: Tensor; // (d)
  readonly enc_norm_bias: Tensor; // (d)
  readonly ref_tokens: Tensor; // (K·R, N, d)
  readonly refPerClass: number;
  /** The frozen feature net of the perceptual term (not a child: never in the state dict); set by the method. */
  perceptual: PerceptualNet | null = null;
  /** 1-based steps from which the GAN's generator term and D's term count (set by the method from its section). */
  schedule = { ganStart: 1, discStart: 1 };

  constructor(config: SiTConfig, o: RaeDecoderOptions, rng: Rng) {
    super();
    const c = (this.config = parseSiTConfig(config));
    if (!Number.isInteger(o.refPerClass) || o.refPerClass < 1) throw new Error(`RaeDecoderModel: refPerClass must be a positive integer, got ${o.refPerClass}`);
    const g = gridSize(c), d = o.tokenDim;
    this.refPerClass = o.refPerClass;
    this.decoder = this.child('decoder', new ViTDecoder(parseViTDecoderConfig({
      tokenDim: d, grid: g, hiddenDim: c.hiddenSize, depth: c.depth, numHeads: c.numHeads, mlpDim: c.hiddenSize * c.mlpRatio,
      patchSize: c.patchSize, outChannels: c.inChannels, layerNormEps: 1e-12, denormalize: null,
    }), rng.child('decoder')));
    this.disc = this.child('disc', new NLayerDiscriminator(patchGanPreset(o.disc, { inChannels: c.inChannels }), rng.child('disc')));
    this.enc_norm_weight = this.buffer('enc_norm_weight', [d], (v) => v.fill(1));
    this.enc_norm_bias = this.buffer('enc_norm_bias', [d]);
    this.ref_tokens = this.buffer('ref_tokens', [c.numClasses * o.refPerClass, g * g, d]);
  }

  get tokenDim(): number { return this.enc_norm_weight.size; }

  /** Store the encoder's final-LayerNorm γ and β (d each). */
  setEncoderNorm(weight: ArrayLike<number>, bias: ArrayLike<number>): void {
    const d = this.tokenDim;
    if (weight.length !== d || bias.length !== d) throw new Error(`RaeDecoderModel: the encoder's norm has ${weight.length}/${bias.length} entries, the decoder reads ${d}-channel tokens`);
    for (let i = 0; i < d; i++) {
      if (!(Math.abs(weight[i]) >= MIN_GAMMA)) throw new Error(`RaeDecoderModel: the encoder's final LayerNorm weight[${i}] = ${weight[i]}: its affine cannot be undone`);
    }
    this.enc_norm_weight.data.set(weight);
    this.enc_norm_bias.data.set(bias);
  }

  /** RAE's latent from diffactor's encoder tokens (B, N, d): (tokens − β) / γ, the LayerNorm without its affine; never differentiated. */
  tokensOf(patch: Tensor): Tensor {
    const d = this.tokenDim, n = this.ref_tokens.shape[1];
    if (patch.ndim !== 3 || patch.shape[1] !== n || patch.shape[2] !== d) throw new Error(`RaeDecoderModel: expected encoder tokens (B, ${n}, ${d}), got ${fmtShape(patch.shape)}`);
    return noGrad(() => div(sub(patch, this.enc_norm_bias), this.enc_norm_weight));
  }

  /** Tokens (B, N, d) → images (B, C, H, W). */
  forward(tokens: Tensor): Tensor {
    return this.decoder.forward(tokens);
  }

  /**
   * PartialForward, answered with a refusal: the evaluator's probe and CKNNA read a diffusion
   * model's hidden state on noised images, and this decoder reads encoder tokens it does not hold.
   */
  hiddenAfter(_x: Tensor, _t: ArrayLike<number>, _labels: ArrayLike<number>, _block: number): never {
    throw new Error('rae (stage 1): no hidden state of noised images to probe — the decoder reads the encoder\'s tokens; the evaluator (train.eval_every, diffactor eval) does not apply: measure reconstructions with npx diffactor recon --autoencoder RUN/checkpoint.safetensors');
  }

  /** The grid of a decoder run: every sampler "draws" reconstructions. */
  ownsSampler(_sampler: string): boolean { return true; }

  /**
   * Reconstructions of the reference images: sample i of class y_i renders the tokens of class
   * y_i's (k mod R)-th reference, k = how many earlier samples of the batch had class y_i. The noise
   * is not read (a decoder has nothing to integrate); tokens enter without noise augmentation (τ = 0).
   */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const b = y.shape[0], r = this.refPerClass, [, n, d] = this.ref_tokens.shape, k = this.config.numClasses;
    if (noise.shape[0] !== b) throw new Error(`RaeDecoderModel.drawOwn: ${noise.shape[0]} noise rows for ${b} labels`);
    const seen = classCounts(s.labelsBefore), out = new Float32Array(b * n * d);
    for (let i = 0; i < b; i++) {
      const c = y.data[i];
      if (!Number.isInteger(c) || c < 0 || c >= k) throw new Error(`RaeDecoderModel.drawOwn: label ${c} is not a class in 0..${k - 1}`);
      const j = seen.get(c) ?? 0;
      seen.set(c, j + 1);
      const row = c * r + (j % r);
      out.set(this.ref_tokens.data.subarray(row * n * d, (row + 1) * n * d), i * n * d);
    }
    const x = noGrad(() => this.decoder.forward(tensor(out, [b, n, d])));
    onStep?.(1, 1);
    return x;
  }
}

/** A fresh stage-1 model from the run's config and a seed. */
export function createRaeDecoderModel(config: SiTConfig, o: RaeDecoderOptions, seed: number): RaeDecoderModel {
  return new RaeDecoderModel(config, o, new Rng(seed).child('model'));
}
