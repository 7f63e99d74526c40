// SVG's stage-1 model as diffactor trains it (Shi et al., "Latent Diffusion Model without Variational
// Autoencoder", arXiv 2510.15301; official code github.com/shiml20/SVG
// autoencoder/ldm/models/dino_decoder.py; methods-b §6 "Autoencoder"): the latent of an image x is
//   z = [ h_enc ; match(mask(h_res)) ]   (B, N, d + r), channel order: the d encoder channels FIRST
//   h_enc = the frozen encoder's patch tokens (x_norm_patchtokens; the run's `encoder`), never trained
//   h_res = residual_head(residual(x).patchTokens): a small trainable ViT (models/vit.ts, DINOv2
//           layout with a class token dropped at the output) and Linear → GELU → Linear to r channels
//   mask: train only, per sample with probability mask_prob, h_res → the learnt mask_token (r)
//   match: the scalar distribution matching (matching.ts), batch statistics always
// and the ViT decoder (models/vitDecoder.ts, RAE's) renders z to pixels. The adversary of the loss, a
// PatchGAN (models/patchGan.ts), lives in this module too so one optimiser and one checkpoint carry
// every trained part (loss.ts: one tape). Buffers: ref_tokens (K·R, N, d) and ref_images (K·R, C, H, W)
// of R training images per class — what the stage-1 grid reconstructs (drawOwn).
// Ours at small scale: the ViT decoder instead of the LDM conv decoder (the spec allows either; the
// ViT decoder is the shared, tested one), no dropout in the residual ViT (official 0.1), the residual
// sees the images as the run's encoder does (no ImageNet normalisation at 1 channel).
// Not here: the method and its section (index.ts), the losses (loss.ts), the latent space (latent.ts).
import { Tensor, tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { concat } from '../../autograd/ops/index.ts';
import { Module } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { Sequential } from '../../nn/sequential.ts';
import { GELU } from '../../nn/activation.ts';
import { normal } from '../../nn/init.ts';
import { gridSize, parseSiTConfig, type SiTConfig } from '../../models/config.ts';
import { ViT, parseViTConfig } from '../../models/vit.ts';
import { ViTDecoder, parseViTDecoderConfig } from '../../models/vitDecoder.ts';
import { NLayerDiscriminator, patchGanPreset } from '../../models/patchGan.ts';
import type { PerceptualNet } from '../../models/perceptualNet.ts';
import { classCounts, type OwnSampleSettings } from '../method.ts';
import { maskResidual, matchDistribution } from './matching.ts';

export interface SvgResidualSize {
  /** r, the residual channels (SVG: 8). */
  channels: number;
  /** The residual ViT's width, blocks and heads (SVG: 384, 6, 8). */
  width: number;
  depth: number;
  heads: number;
}

export interface SvgAutoencoderOptions {
  /** d, the width of the frozen encoder's tokens. */
  tokenDim: number;
  residual: SvgResidualSize;
  /** PatchGAN preset of the discriminator. */
  disc: string;
  refPerClass: number;
}

export class SvgAutoencoderModel extends Module {
  /** The run's model config: image channels and side, the DECODER's width/depth/heads/MLP ratio, patch = pixels per token side. */
  readonly config: SiTConfig;
  readonly residual: ViT;
  readonly residual_head: Sequential;
  readonly mask_token: Tensor; // (r)
  readonly decoder: ViTDecoder;
  readonly disc: NLayerDiscriminator;
  readonly ref_tokens: Tensor; // (K·R, N, d)
  readonly ref_images: Tensor; // (K·R, C, H, W)
  readonly tokenDim: number;
  readonly refPerClass: number;
  /** The frozen perceptual net (not a child); set by the method for training. */
  perceptual: PerceptualNet | null = null;
  /** 1-based step from which the GAN terms (generator and D) count; set by the method. */
  ganStart = 1;

  constructor(config: SiTConfig, o: SvgAutoencoderOptions, rng: Rng) {
    super();
    const c = (this.config = parseSiTConfig(config));
    if (!Number.isInteger(o.refPerClass) || o.refPerClass < 1) throw new Error(`SvgAutoencoderModel: refPerClass must be a positive integer, got ${o.refPerClass}`);
    const g = gridSize(c), d = (this.tokenDim = o.tokenDim), r = o.residual.channels;
    this.refPerClass = o.refPerClass;
    this.residual = this.child('residual', new ViT(parseViTConfig({
      imgSize: c.inputSize, patchSize: c.patchSize, inChannels: c.inChannels, embedDim: o.residual.width, depth: o.residual.depth,
      numHeads: o.residual.heads, mlpRatio: 4, numRegisterTokens: 0, layerScaleInit: null, interpolateMode: 'bicubic',
      interpolateAntialias: false, interpolateOffset: 0,
    }), rng.child('residual')));
    const w = o.residual.width;
    this.residual_head = this.child('residual_head', new Sequential([new Linear(w, w, rng.child('residual_head.0')), GELU(), new Linear(w, r, rng.child('residual_head.2'))]));
    this.mask_token = normal(this.param('mask_token', [r]), rng.child('mask_token'), 0.02);
    this.decoder = this.child('decoder', new ViTDecoder(parseViTDecoderConfig({
      tokenDim: d + r, grid: g, hiddenDim: c.hiddenSize, depth: c.depth, numHeads: c.numHeads, mlpDim: c.hiddenSize * c.mlpRatio,
      patchSize: c.patchSize, outChannels: c.inChannels, layerNormEps: 1e-12, denormalize: null,
    }), rng.child('decoder')));
    this.disc = this.child('disc', new NLayerDiscriminator(patchGanPreset(o.disc, { inChannels: c.inChannels }), rng.child('disc')));
    this.ref_tokens = this.buffer('ref_tokens', [c.numClasses * o.refPerClass, g * g, d]);
    this.ref_images = this.buffer('ref_images', [c.numClasses * o.refPerClass, c.inChannels, c.inputSize, c.inputSize]);
  }

  get residualChannels(): number { return this.mask_token.size; }
  /** d + r, the latent's channels. */
  get latentChannels(): number { return this.tokenDim + this.residualChannels; }

  /** h_res (B, N, r) of images (B, C, H, W), before masking and matching. */
  residualTokens(x: Tensor): Tensor {
    return this.residual_head.forward(this.residual.forward(x).patchTokens);
  }

  /**
   * The latent tokens (B, N, d + r) of images x and their encoder tokens hEnc (B, N, d): [hEnc ;
   * match(hEnc, mask(h_res))]. `maskFlags` (B) in {0, 1}: which samples are masked (null: none — eval).
   */
  latent(hEnc: Tensor, x: Tensor, maskFlags: ArrayLike<number> | null): Tensor {
    const n = this.ref_tokens.shape[1], d = this.tokenDim;
    if (hEnc.ndim !== 3 || hEnc.shape[1] !== n || hEnc.shape[2] !== d || hEnc.shape[0] !== x.shape[0]) throw new Error(`SvgAutoencoderModel: expected encoder tokens (${x.shape[0]}, ${n}, ${d}), got ${fmtShape(hEnc.shape)}`);
    let h = this.residualTokens(x); // (B, N, r)
    if (maskFlags) h = maskResidual(h, this.mask_token, maskFlags);
    return concat([hEnc, matchDistribution(hEnc, h)], 2); // (B, N, d + r)
  }

  /** Latent tokens (B, N, d + r) → images (B, C, H, W). */
  forward(z: Tensor): Tensor {
    return this.decoder.forward(z);
  }

  /** PartialForward, refused: no diffusion hidden state to probe (as RAE's stage 1). */
  hiddenAfter(_x: Tensor, _t: ArrayLike<number>, _labels: ArrayLike<number>, _block: number): never {
    throw new Error('svg (stage 1): no hidden state of noised images to probe — the autoencoder reads images; the evaluator (train.eval_every, diffactor eval) does not apply');
  }

  /** The grid of an autoencoder run: every sampler "draws" reconstructions. */
  ownsSampler(_sampler: string): boolean { return true; }

  /**
   * Reconstructions of the reference images (no mask; the matching's statistics are this batch's):
   * sample i of class y_i renders the (k mod R)-th reference of y_i, k = earlier samples of y_i.
   */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const b = y.shape[0], r = this.refPerClass, [, n, d] = this.ref_tokens.shape, k = this.config.numClasses;
    const [, C, H, W] = this.ref_images.shape, per = C * H * W;
    if (noise.shape[0] !== b) throw new Error(`SvgAutoencoderModel.drawOwn: ${noise.shape[0]} noise rows for ${b} labels`);
    const seen = classCounts(s.labelsBefore), tok = new Float32Array(b * n * d), img = new Float32Array(b * per);
    for (let i = 0; i < b; i++) {
      const c = y.data[i];
      if (!Number.isInteger(c) || c < 0 || c >= k) throw new Error(`SvgAutoencoderModel.drawOwn: label ${c} is not a class in 0..${k - 1}`);
      const j = seen.get(c) ?? 0;
      seen.set(c, j + 1);
      const row = c * r + (j % r);
      tok.set(this.ref_tokens.data.subarray(row * n * d, (row + 1) * n * d), i * n * d);
      img.set(this.ref_images.data.subarray(row * per, (row + 1) * per), i * per);
    }
    const out = noGrad(() => this.forward(this.latent(tensor(tok, [b, n, d]), tensor(img, [b, C, H, W]), null)));
    onStep?.(1, 1);
    return out;
  }
}

/** A fresh stage-1 model from the run's config and a seed. */
export function createSvgAutoencoder(config: SiTConfig, o: SvgAutoencoderOptions, seed: number): SvgAutoencoderModel {
  return new SvgAutoencoderModel(config, o, new Rng(seed).child('model'));
}
