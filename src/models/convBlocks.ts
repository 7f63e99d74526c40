// The convolutional building blocks of diffusers' AutoencoderKL and UNet2DModel, with diffusers'
// state_dict names: ResnetBlock2D (norm1, conv1, time_emb_proj, norm2, conv2, conv_shortcut),
// Downsample2D / Upsample2D (`conv`), the spatial self-attention of the mid block (group_norm,
// to_q, to_k, to_v, to_out.0) and UNetMidBlock2D (resnets.0, attentions.0, resnets.1). The VAE
// (vae.ts) uses them without a time embedding, the U-Net (unet.ts) with one. Not here: dropout
// (always 0 here), scale-shift time conditioning, spatial norm, cross-attention.
import type { Tensor } from '../tensor/tensor.ts';
import { empty } from '../tensor/tensor.ts';
import type { Rng } from '../tensor/rng.ts';
import { add, concat, permute, reshape, scaledDotProductAttention, silu, upsampleNearest } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { Linear } from '../nn/linear.ts';
import { GroupNorm } from '../nn/groupNorm.ts';

export interface NormOptions { groups: number; eps: number }

/**
 * h = conv1(silu(norm1(x))) [+ time_emb_proj(silu(temb)) per channel]; h = conv2(silu(norm2(h)));
 * out = shortcut(x) + h, where shortcut is a 1x1 conv when the channel count changes.
 */
export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly time_emb_proj: Linear | null;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly conv_shortcut: Conv2d | null;

  constructor(readonly inChannels: number, readonly outChannels: number, tembChannels: number | null, norm: NormOptions, rng: Rng) {
    super();
    this.norm1 = this.child('norm1', new GroupNorm(norm.groups, inChannels, { eps: norm.eps }));
    this.conv1 = this.child('conv1', new Conv2d(inChannels, outChannels, 3, rng.child('conv1'), { padding: 1 }));
    this.time_emb_proj = tembChannels === null ? null : this.child('time_emb_proj', new Linear(tembChannels, outChannels, rng.child('time_emb_proj')));
    this.norm2 = this.child('norm2', new GroupNorm(norm.groups, outChannels, { eps: norm.eps }));
    this.conv2 = this.child('conv2', new Conv2d(outChannels, outChannels, 3, rng.child('conv2'), { padding: 1 }));
    this.conv_shortcut = inChannels === outChannels ? null : this.child('conv_shortcut', new Conv2d(inChannels, outChannels, 1, rng.child('conv_shortcut')));
  }

  /** x (B, Cin, H, W), temb (B, T) or null -> (B, Cout, H, W). */
  forward(x: Tensor, temb: Tensor | null = null): Tensor {
    let h = this.conv1.forward(silu(this.norm1.forward(x))); // (B, Cout, H, W)
    if (this.time_emb_proj) {
      if (!temb) throw new Error('ResnetBlock2D: this block has a time embedding projection but got no temb');
      const t = this.time_emb_proj.forward(silu(temb)); // (B, Cout)
      h = add(h, reshape(t, [t.shape[0], t.shape[1], 1, 1]));
    }
    h = this.conv2.forward(silu(this.norm2.forward(h)));
    return add(this.conv_shortcut ? this.conv_shortcut.forward(x) : x, h);
  }
}

/** x (N, C, H, W) -> (N, C, H+1, W+1) with a zero row at the bottom and a zero column at the right. */
function padRightBottom(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape;
  const col = empty([n, c, h, 1], x.dtype); // zero-filled
  const row = empty([n, c, 1, w + 1], x.dtype);
  return concat([concat([x, col], 3), row], 2);
}

/**
 * Stride-2 3x3 conv. padding 1 (UNet2DModel) pads all sides; padding 0 (the VAE encoder) pads
 * only right and bottom by one first, as diffusers' Downsample2D does.
 */
export class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, readonly padding: 0 | 1, rng: Rng) {
    super();
    this.conv = this.child('conv', new Conv2d(channels, channels, 3, rng.child('conv'), { stride: 2, padding }));
  }
  /** (B, C, H, W) -> (B, C, H/2, W/2). */
  forward(x: Tensor): Tensor {
    return this.conv.forward(this.padding === 0 ? padRightBottom(x) : x);
  }
}

/** Nearest x2, then a 3x3 conv. */
export class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number, rng: Rng) {
    super();
    this.conv = this.child('conv', new Conv2d(channels, channels, 3, rng.child('conv'), { padding: 1 }));
  }
  /** (B, C, H, W) -> (B, C, 2H, 2W). */
  forward(x: Tensor): Tensor {
    return this.conv.forward(upsampleNearest(x, 2));
  }
}

/** Self-attention over the H*W positions with a residual: x + to_out(attn(group_norm(x))). */
export class SpatialAttention extends Module {
  readonly group_norm: GroupNorm;
  readonly to_q: Linear;
  readonly to_k: Linear;
  readonly to_v: Linear;
  readonly to_out: ModuleList<Linear>;

  constructor(readonly channels: number, readonly heads: number, norm: NormOptions, rng: Rng) {
    super();
    if (channels % heads !== 0) throw new Error(`SpatialAttention: ${channels} channels do not split into ${heads} heads`);
    this.group_norm = this.child('group_norm', new GroupNorm(norm.groups, channels, { eps: norm.eps }));
    this.to_q = this.child('to_q', new Linear(channels, channels, rng.child('to_q')));
    this.to_k = this.child('to_k', new Linear(channels, channels, rng.child('to_k')));
    this.to_v = this.child('to_v', new Linear(channels, channels, rng.child('to_v')));
    this.to_out = this.child('to_out', new ModuleList([new Linear(channels, channels, rng.child('to_out.0'))]));
  }

  /** (B, C, H, W) -> (B, C, H, W). */
  forward(x: Tensor): Tensor {
    const [b, c, h, w] = x.shape, n = h * w, hd = c / this.heads;
    const seq = permute(reshape(this.group_norm.forward(x), [b, c, n]), [0, 2, 1]); // (B, N, C)
    const heads = (t: Tensor): Tensor => permute(reshape(t, [b, n, this.heads, hd]), [0, 2, 1, 3]); // (B, H, N, d)
    const o = scaledDotProductAttention(heads(this.to_q.forward(seq)), heads(this.to_k.forward(seq)), heads(this.to_v.forward(seq))); // (B, H, N, d)
    const y = this.to_out.items[0].forward(reshape(permute(o, [0, 2, 1, 3]), [b, n, c])); // (B, N, C)
    return add(x, reshape(permute(y, [0, 2, 1]), [b, c, h, w]));
  }
}

/** resnets.0 -> attentions.0 -> resnets.1, all at the lowest resolution. */
export class UNetMidBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<SpatialAttention>;

  constructor(channels: number, tembChannels: number | null, heads: number, norm: NormOptions, rng: Rng) {
    super();
    this.attentions = this.child('attentions', new ModuleList([new SpatialAttention(channels, heads, norm, rng.child('attentions.0'))]));
    this.resnets = this.child('resnets', new ModuleList([0, 1].map((i) => new ResnetBlock2D(channels, channels, tembChannels, norm, rng.child(`resnets.${i}`)))));
  }

  /** (B, C, h, w) -> (B, C, h, w). */
  forward(x: Tensor, temb: Tensor | null = null): Tensor {
    const h = this.attentions.items[0].forward(this.resnets.items[0].forward(x, temb));
    return this.resnets.items[1].forward(h, temb);
  }
}
