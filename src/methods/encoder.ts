// The frozen representation encoder of REPA and REG (REPA and REG: github.com/sihyun-yu/REPA
// train.py, github.com/Martinser/REG train.py): a ViT (models/vit.ts, DINOv2 layout) whose patch grid equals the
// diffusion model's token grid, run under noGrad on the clean image, returning its normalised patch
// tokens z* (B, T, Dz) and class token g (B, Dz). Its parameters have requiresGrad off and are never
// handed to an optimiser. Input preprocessing from the data range [-1, 1] is one named choice:
//   identity  feed [-1, 1] as is (an encoder trained by this project on its own data range)
//   zero-one  (x + 1) / 2
//   imagenet  (x + 1) / 2, then per channel (x − mean) / std with ImageNet's mean and std (DINOv2)
// A 1-channel image is repeated to 3 channels for a 3-channel encoder. When the image side is not
// grid × encoder patch (a DINOv2/14 on 32 px images), it is resized bilinearly to that side
// (REPA resizes bicubically to 224; bilinear is what the autograd ops offer). Not here: building
// the encoder from a spec (train/setup.ts), the alignment loss (repa.ts).
import type { Tensor } from '../tensor/tensor.ts';
import { tensor } from '../tensor/tensor.ts';
import { fmtShape } from '../tensor/shape.ts';
import { noGrad } from '../autograd/tape.ts';
import { add, concat, div, mul, sub, upsampleBilinear } from '../autograd/ops/index.ts';
import type { ViT } from '../models/vit.ts';

export type EncoderNormalization = 'identity' | 'zero-one' | 'imagenet';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export interface EncoderFeatures {
  /** x_norm_patchtokens (B, T, Dz), row-major over the grid. */
  patch: Tensor;
  /** x_norm_clstoken (B, Dz). */
  cls: Tensor;
}

export interface FrozenEncoderOptions {
  normalization: EncoderNormalization;
  /** Token grid side the features must have (the diffusion model's grid). */
  grid: number;
}

export class FrozenEncoder {
  readonly vit: ViT;
  readonly normalization: EncoderNormalization;
  readonly grid: number;

  constructor(vit: ViT, opts: FrozenEncoderOptions) {
    this.vit = vit.eval();
    this.normalization = opts.normalization;
    this.grid = opts.grid;
    for (const p of vit.parameters()) p.requireGrad(false);
  }

  /** Feature width Dz. */
  get dim(): number { return this.vit.config.embedDim; }

  /** The image side the encoder sees: grid × its patch size. */
  get side(): number { return this.grid * this.vit.config.patchSize; }

  /** Data (B, C, H, W) in [-1, 1] -> encoder input (B, C_enc, side, side). */
  preprocess(x: Tensor): Tensor {
    const c = this.vit.config.inChannels;
    if (x.ndim !== 4) throw new Error(`FrozenEncoder: expected images (B, C, H, W), got ${fmtShape(x.shape)}`);
    let h = x;
    if (x.shape[1] !== c) {
      if (x.shape[1] !== 1) throw new Error(`FrozenEncoder: ${x.shape[1]}-channel images for a ${c}-channel encoder (only 1 -> C repeats)`);
      h = concat(new Array<Tensor>(c).fill(x), 1); // (B, C_enc, H, W)
    }
    if (this.normalization !== 'identity') h = mul(add(h, 1), 0.5);
    if (this.normalization === 'imagenet') {
      if (c !== 3) throw new Error(`FrozenEncoder: imagenet normalisation needs a 3-channel encoder, this one has ${c}`);
      h = div(sub(h, tensor(IMAGENET_MEAN, [1, 3, 1, 1])), tensor(IMAGENET_STD, [1, 3, 1, 1]));
    }
    if (h.shape[2] !== this.side || h.shape[3] !== this.side) h = upsampleBilinear(h, { size: [this.side, this.side] });
    return h;
  }

  /** Patch and class tokens of clean images x (B, C, H, W) in [-1, 1]; no gradient is ever recorded. */
  features(x: Tensor): EncoderFeatures {
    return noGrad(() => {
      const out = this.vit.forward(this.preprocess(x));
      const t = out.patchTokens.shape[1];
      if (t !== this.grid * this.grid) throw new Error(`FrozenEncoder: ${t} patch tokens, expected ${this.grid}x${this.grid}`);
      return { patch: out.patchTokens, cls: out.clsToken };
    });
  }
}
