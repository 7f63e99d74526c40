// UniFlow's tokenizer as diffactor trains it (Yue et al., "UniFlow: A Unified Pixel Flow Tokenizer for
// Visual Understanding and Generation", ICLR'26, arXiv 2510.10575; methods-b §9): ONE module holding
//   encoder  the student E_U, a ViT of the frozen encoder's layout (models/vit.ts, DINOv2 names),
//            initialised as an exact copy of the run's frozen encoder E_T (the stand-in) and trained;
//   decoder  the patch-wise pixel flow decoder (decoder.ts);
//   ref_images (K·R, C, H, W) buffer: R training images per class, read once at build — what the
//            reconstruction grid shows (drawOwn), as RAE's stage 1 does.
// The teacher E_T is NOT part of the module: the trained model keeps the run's FrozenEncoder (its
// parameters never require grad, never reach an optimiser, never enter a checkpoint) and reads its
// hidden states under noGrad; models rebuilt from weights (EMA, sampling) have no teacher and need none.
// Both encoders read the image preprocessed as FrozenEncoder.preprocess does (preprocess below).
// Not here: the flow decoder (decoder.ts), the distillation loss (distill.ts), the method (index.ts).
import { Tensor, tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { noGrad } from '../../autograd/tape.ts';
import { add, concat, div, mul, slice, sub, upsampleBilinear } from '../../autograd/ops/index.ts';
import { Module } from '../../nn/module.ts';
import { ViT, type ViTConfig } from '../../models/vit.ts';
import type { SiTConfig } from '../../models/config.ts';
import { IMAGENET_MEAN, IMAGENET_STD, type EncoderNormalization, type FrozenEncoder } from '../encoder.ts';
import { classCounts, type OwnSampleSettings } from '../method.ts';
import { PixelFlowDecoder, type PixelFlowConfig } from './decoder.ts';

export interface UniFlowOptions {
  /** The student's (= the teacher's) ViT config, its token grid g and input normalisation. */
  vit: ViTConfig;
  grid: number;
  normalization: EncoderNormalization;
  decoder: Omit<PixelFlowConfig, 'tokenDim' | 'grid' | 'patchSize' | 'channels'>;
  refPerClass: number;
}

/** FrozenEncoder.preprocess for an encoder of config `vit` seeing a side of grid·patch: channel repeat, normalisation, bilinear resize. */
export function preprocess(x: Tensor, vit: ViTConfig, grid: number, normalization: EncoderNormalization): Tensor {
  const c = vit.inChannels, side = grid * vit.patchSize;
  if (x.ndim !== 4) throw new Error(`uniflow: expected images (B, C, H, W), got ${fmtShape(x.shape)}`);
  let h = x;
  if (x.shape[1] !== c) {
    if (x.shape[1] !== 1) throw new Error(`uniflow: ${x.shape[1]}-channel images for a ${c}-channel encoder (only 1 -> C repeats)`);
    h = concat(new Array<Tensor>(c).fill(x), 1);
  }
  if (normalization !== 'identity') h = mul(add(h, 1), 0.5);
  if (normalization === 'imagenet') h = div(sub(h, tensor(IMAGENET_MEAN, [1, 3, 1, 1])), tensor(IMAGENET_STD, [1, 3, 1, 1]));
  if (h.shape[2] !== side || h.shape[3] !== side) h = upsampleBilinear(h, { size: [side, side] });
  return h;
}

export interface Encoded {
  /** x_norm_patchtokens (B, g², d): what the decoder reads and what a probe reads. */
  tokens: Tensor;
  /** x_norm_clstoken (B, d). */
  cls: Tensor;
  /** Patch tokens after each block l = 1..L, before the final norm (B, g², d). */
  hidden: Tensor[];
}

/** A ViT's forward on preprocessed images with every block tapped. */
export function encodeWith(vit: ViT, pre: Tensor): Encoded {
  const depth = vit.config.depth, prefix = vit.numPrefixTokens;
  const o = vit.forward(pre, { taps: Array.from({ length: depth }, (_, i) => i + 1) });
  return { tokens: o.patchTokens, cls: o.clsToken, hidden: Array.from({ length: depth }, (_, i) => slice(o.hidden.get(i + 1)!, 1, prefix)) };
}

export class UniFlowModel extends Module {
  /** The run's model config: image channels and side, classes (the decoder's sizes come from UniFlowOptions). */
  readonly config: SiTConfig;
  readonly encoder: ViT;
  readonly decoder: PixelFlowDecoder;
  readonly ref_images: Tensor; // (K·R, C, H, W)
  readonly grid: number;
  readonly normalization: EncoderNormalization;
  readonly refPerClass: number;
  /** The frozen teacher E_T (the run's encoder), on the trained model only; set by the method. */
  teacher: FrozenEncoder | null = null;

  constructor(config: SiTConfig, o: UniFlowOptions, rng: Rng) {
    super();
    this.config = config;
    const g = o.grid, v = o.vit;
    if (!Number.isInteger(o.refPerClass) || o.refPerClass < 1) throw new Error(`UniFlowModel: refPerClass must be a positive integer, got ${o.refPerClass}`);
    if (g * v.patchSize !== v.imgSize) throw new Error(`UniFlowModel: the encoder's grid ${v.imgSize / v.patchSize} is not the run's token grid ${g}`);
    if (config.inputSize % g !== 0) throw new Error(`UniFlowModel: image side ${config.inputSize} is not a multiple of the token grid ${g}`);
    this.grid = g;
    this.normalization = o.normalization;
    this.refPerClass = o.refPerClass;
    this.encoder = this.child('encoder', new ViT(v, rng.child('encoder')));
    this.decoder = this.child('decoder', new PixelFlowDecoder({
      ...o.decoder, tokenDim: v.embedDim, grid: g, patchSize: config.inputSize / g, channels: config.inChannels,
    }, rng.child('decoder')));
    this.ref_images = this.buffer('ref_images', [config.numClasses * o.refPerClass, config.inChannels, config.inputSize, config.inputSize]);
  }

  /** The image side per token (p) of the decoder's patches. */
  get patchSize(): number { return this.decoder.config.patchSize; }

  /** Make the student an exact copy of the teacher and keep the teacher (frozen) for the distillation. */
  setTeacher(teacher: FrozenEncoder): void {
    if (teacher.grid !== this.grid) throw new Error(`UniFlowModel: the teacher's grid ${teacher.grid} is not the student's ${this.grid}`);
    this.encoder.loadStateDict(teacher.vit.stateDict()); // strict: same layout, same shapes
    this.teacher = teacher;
  }

  /** Images (B, C, H, W) in [−1, 1] → the student's encoder input. */
  preprocess(x: Tensor): Tensor {
    return preprocess(x, this.encoder.config, this.grid, this.normalization);
  }

  /** The student's tokens and per-block states of images x. */
  encode(x: Tensor): Encoded {
    return encodeWith(this.encoder, this.preprocess(x));
  }

  /** The teacher's per-block patch states (B, g², d) of images x; never on the tape. */
  teacherHidden(x: Tensor): Tensor[] {
    const t = this.teacher;
    if (!t) throw new Error('uniflow: no teacher on this model (only the trained model holds the frozen encoder; a model rebuilt from weights cannot compute the distillation)');
    return noGrad(() => encodeWith(t.vit, this.preprocess(x)).hidden);
  }

  /** Reconstructions of images x with noise ε (B, C, H, W): encode, then `steps` Euler steps from t = 1. */
  reconstruct(x: Tensor, eps: Tensor, steps = 1): Tensor {
    const c = this.decoder.condition(this.decoder.latent(this.encode(x).tokens));
    return this.decoder.decode(c, eps, steps);
  }

  /** The module's forward: reconstructions (reconstruct). */
  forward(x: Tensor, eps: Tensor, steps = 1): Tensor {
    return this.reconstruct(x, eps, steps);
  }

  /**
   * PartialForward, answered with a refusal: the evaluator's probe and CKNNA read a diffusion model's
   * hidden state on noised images; a tokenizer has none (scripts/uniflow-eval.ts probes its tokens).
   */
  hiddenAfter(_x: Tensor, _t: ArrayLike<number>, _labels: ArrayLike<number>, _block: number): never {
    throw new Error('uniflow (tokenizer): no hidden state of noised images to probe — the evaluator (train.eval_every, diffactor eval) does not apply: measure with scripts/uniflow-eval.ts');
  }

  /** The grid of a tokenizer run: every sampler "draws" reconstructions. */
  ownsSampler(_sampler: string): boolean { return true; }

  /**
   * Reconstructions of the reference images: sample i of class y_i decodes class y_i's (k mod R)-th
   * reference (k = earlier samples of class y_i in the batch) from the given noise, in s.steps Euler
   * steps (1: the paper's one-step decode x̂ = ε − v_θ(ε, 1, c)).
   */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const b = y.shape[0], r = this.refPerClass, k = this.config.numClasses, per = this.ref_images.size / (k * r);
    if (noise.shape[0] !== b || noise.size !== b * per) throw new Error(`UniFlowModel.drawOwn: noise ${fmtShape(noise.shape)} for ${b} images of ${per} values`);
    const seen = classCounts(s.labelsBefore), x = new Float32Array(b * per);
    for (let i = 0; i < b; i++) {
      const c = y.data[i];
      if (!Number.isInteger(c) || c < 0 || c >= k) throw new Error(`UniFlowModel.drawOwn: label ${c} is not a class in 0..${k - 1}`);
      const j = seen.get(c) ?? 0;
      seen.set(c, j + 1);
      const row = c * r + (j % r);
      x.set(this.ref_images.data.subarray(row * per, (row + 1) * per), i * per);
    }
    const out = noGrad(() => this.reconstruct(tensor(x, noise.shape), noise, Math.max(1, s.steps)));
    onStep?.(1, 1);
    return out;
  }
}
