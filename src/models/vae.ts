// A convolutional KL-VAE laid out exactly as diffusers' AutoencoderKL (the format of SD-VAE
// files such as stabilityai/sd-vae-ft-mse): encoder.{conv_in, down_blocks.N.{resnets.M,
// downsamplers.0.conv}, mid_block, conv_norm_out, conv_out}, quant_conv, post_quant_conv,
// decoder.{conv_in, mid_block, up_blocks.N.{resnets.M, upsamplers.0.conv}, conv_norm_out,
// conv_out}. Small presets encode 32x32 images to 4x8x8 latents (3 blocks = 2 downsamplings);
// the `sd` preset is SD-VAE's f8 shape. encode returns the posterior (mean, log-variance) and a
// sample z = mean + exp(logvar / 2) * eps drawn from an Rng; diffusion sees scaleLatent(z). Not
// here: losses (LPIPS, GAN), tiling/slicing, the original CompVis/LDM key layout.
import type { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { add, clamp, exp, mul, silu, slice, sub } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { GroupNorm } from '../nn/groupNorm.ts';
import { Downsample2D, ResnetBlock2D, UNetMidBlock2D, Upsample2D, type NormOptions } from './convBlocks.ts';

//################################################################################
//                                   Config                                      #
//################################################################################

export const vaeConfigSchema = z.object({
  inChannels: z.number().int().positive(),
  outChannels: z.number().int().positive(),
  latentChannels: z.number().int().positive(),
  /** Channels per resolution level; every level but the last halves the resolution. */
  blockOutChannels: z.array(z.number().int().positive()).min(1),
  layersPerBlock: z.number().int().positive(),
  normNumGroups: z.number().int().positive(),
  /** Diffusion sees (z - shiftFactor) * scalingFactor (SD-VAE: 0.18215, shift 0). */
  scalingFactor: z.number().positive(),
  shiftFactor: z.number(),
  useQuantConv: z.boolean(),
  usePostQuantConv: z.boolean(),
}).strict().superRefine((c, ctx) => {
  for (const ch of c.blockOutChannels) {
    if (ch % c.normNumGroups !== 0) ctx.addIssue({ code: 'custom', message: `block channels ${ch} do not split into ${c.normNumGroups} groups` });
  }
});

export type VAEConfig = z.infer<typeof vaeConfigSchema>;

export function parseVAEConfig(v: unknown): VAEConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = vaeConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid VAE config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const BASE = { inChannels: 3, outChannels: 3, latentChannels: 4, shiftFactor: 0, useQuantConv: true, usePostQuantConv: true };

/** 'VAE-T': tests; 'VAE-P': this project's f4 VAE (32x32x3 -> 8x8x4); 'sd': SD-VAE (f8, 4 channels). */
export const VAE_PRESETS: Record<string, VAEConfig> = {
  'VAE-T': parseVAEConfig({ ...BASE, blockOutChannels: [8, 16, 16], layersPerBlock: 1, normNumGroups: 4, scalingFactor: 1 }),
  'VAE-P': parseVAEConfig({ ...BASE, blockOutChannels: [32, 64, 64], layersPerBlock: 1, normNumGroups: 16, scalingFactor: 1 }),
  sd: parseVAEConfig({ ...BASE, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, normNumGroups: 32, scalingFactor: 0.18215 }),
};

export function vaePreset(name: string, overrides: Partial<VAEConfig> = {}): VAEConfig {
  const base = VAE_PRESETS[name];
  if (!base) throw new Error(`unknown VAE preset '${name}'; known: ${Object.keys(VAE_PRESETS).join(', ')}`);
  return parseVAEConfig({ ...base, ...overrides });
}

/** Spatial downsampling factor: 2^(levels - 1). */
export const vaeFactor = (c: VAEConfig): number => 2 ** (c.blockOutChannels.length - 1);

//################################################################################
//                              Encoder / decoder                                #
//################################################################################

/** DownEncoderBlock2D: layersPerBlock resnets, then (except the last level) a downsampler. */
class DownEncoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;
  constructor(inCh: number, outCh: number, layers: number, down: boolean, norm: NormOptions, rng: Rng) {
    super();
    this.resnets = this.child('resnets', new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inCh : outCh, outCh, null, norm, rng.child(`resnets.${i}`)))));
    this.downsamplers = down ? this.child('downsamplers', new ModuleList([new Downsample2D(outCh, 0, rng.child('downsamplers.0'))])) : null;
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets.items) x = r.forward(x);
    return this.downsamplers ? this.downsamplers.items[0].forward(x) : x;
  }
}

/** UpDecoderBlock2D: layersPerBlock + 1 resnets, then (except the last level) an upsampler. */
class UpDecoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  constructor(inCh: number, outCh: number, layers: number, up: boolean, norm: NormOptions, rng: Rng) {
    super();
    this.resnets = this.child('resnets', new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inCh : outCh, outCh, null, norm, rng.child(`resnets.${i}`)))));
    this.upsamplers = up ? this.child('upsamplers', new ModuleList([new Upsample2D(outCh, rng.child('upsamplers.0'))])) : null;
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets.items) x = r.forward(x);
    return this.upsamplers ? this.upsamplers.items[0].forward(x) : x;
  }
}

export class Encoder extends Module {
  readonly conv_in: Conv2d;
  readonly down_blocks: ModuleList<DownEncoderBlock2D>;
  readonly mid_block: UNetMidBlock2D;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;

  constructor(c: VAEConfig, rng: Rng) {
    super();
    const ch = c.blockOutChannels, norm = { groups: c.normNumGroups, eps: 1e-6 };
    this.conv_in = this.child('conv_in', new Conv2d(c.inChannels, ch[0], 3, rng.child('conv_in'), { padding: 1 }));
    this.down_blocks = this.child('down_blocks', new ModuleList(ch.map((out, i) =>
      new DownEncoderBlock2D(i === 0 ? ch[0] : ch[i - 1], out, c.layersPerBlock, i < ch.length - 1, norm, rng.child(`down_blocks.${i}`)))));
    const last = ch[ch.length - 1];
    this.mid_block = this.child('mid_block', new UNetMidBlock2D(last, null, 1, norm, rng.child('mid_block')));
    this.conv_norm_out = this.child('conv_norm_out', new GroupNorm(c.normNumGroups, last, { eps: 1e-6 }));
    this.conv_out = this.child('conv_out', new Conv2d(last, 2 * c.latentChannels, 3, rng.child('conv_out'), { padding: 1 }));
  }

  /** (B, C, H, W) -> (B, 2L, H/f, W/f): mean and log-variance stacked on channels. */
  forward(x: Tensor): Tensor {
    let h = this.conv_in.forward(x);
    for (const blk of this.down_blocks.items) h = blk.forward(h);
    h = this.mid_block.forward(h);
    return this.conv_out.forward(silu(this.conv_norm_out.forward(h)));
  }
}

export class Decoder extends Module {
  readonly conv_in: Conv2d;
  readonly mid_block: UNetMidBlock2D;
  readonly up_blocks: ModuleList<UpDecoderBlock2D>;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;

  constructor(c: VAEConfig, rng: Rng) {
    super();
    const rev = [...c.blockOutChannels].reverse(), norm = { groups: c.normNumGroups, eps: 1e-6 };
    this.conv_in = this.child('conv_in', new Conv2d(c.latentChannels, rev[0], 3, rng.child('conv_in'), { padding: 1 }));
    this.mid_block = this.child('mid_block', new UNetMidBlock2D(rev[0], null, 1, norm, rng.child('mid_block')));
    this.up_blocks = this.child('up_blocks', new ModuleList(rev.map((out, i) =>
      new UpDecoderBlock2D(i === 0 ? rev[0] : rev[i - 1], out, c.layersPerBlock + 1, i < rev.length - 1, norm, rng.child(`up_blocks.${i}`)))));
    this.conv_norm_out = this.child('conv_norm_out', new GroupNorm(c.normNumGroups, rev[rev.length - 1], { eps: 1e-6 }));
    this.conv_out = this.child('conv_out', new Conv2d(rev[rev.length - 1], c.outChannels, 3, rng.child('conv_out'), { padding: 1 }));
  }

  /** (B, L, h, w) -> (B, C, h*f, w*f). */
  forward(z: Tensor): Tensor {
    let h = this.mid_block.forward(this.conv_in.forward(z));
    for (const blk of this.up_blocks.items) h = blk.forward(h);
    return this.conv_out.forward(silu(this.conv_norm_out.forward(h)));
  }
}

//################################################################################
//                                  The model                                    #
//################################################################################

export interface Posterior {
  /** (B, L, h, w). */
  mean: Tensor;
  /** (B, L, h, w), clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution. */
  logvar: Tensor;
  /** mean + exp(logvar / 2) * eps with eps from the rng given; the mean without one. */
  z: Tensor;
}

export class VAE extends Module {
  readonly config: VAEConfig;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quant_conv: Conv2d | null;
  readonly post_quant_conv: Conv2d | null;

  /** PyTorch-default initial weights, a function of (config, rng's seed and stream). */
  constructor(config: VAEConfig, rng: Rng) {
    super();
    const c = (this.config = parseVAEConfig(config));
    const l = c.latentChannels;
    this.encoder = this.child('encoder', new Encoder(c, rng.child('encoder')));
    this.decoder = this.child('decoder', new Decoder(c, rng.child('decoder')));
    this.quant_conv = c.useQuantConv ? this.child('quant_conv', new Conv2d(2 * l, 2 * l, 1, rng.child('quant_conv'))) : null;
    this.post_quant_conv = c.usePostQuantConv ? this.child('post_quant_conv', new Conv2d(l, l, 1, rng.child('post_quant_conv'))) : null;
  }

  /** x (B, C, H, W) in [-1, 1], H and W multiples of the factor -> posterior and a sample. */
  encode(x: Tensor, rng?: Rng): Posterior {
    const c = this.config, f = vaeFactor(c);
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] % f !== 0 || x.shape[3] % f !== 0) {
      throw new Error(`VAE: expected x (B, ${c.inChannels}, H, W) with H, W multiples of ${f}, got ${fmtShape(x.shape)}`);
    }
    let moments = this.encoder.forward(x); // (B, 2L, h, w)
    if (this.quant_conv) moments = this.quant_conv.forward(moments);
    const l = c.latentChannels;
    const mean = slice(moments, 1, 0, l);
    const logvar = clamp(slice(moments, 1, l), -30, 20);
    if (!rng) return { mean, logvar, z: mean };
    const eps = rng.normal(mean.shape);
    return { mean, logvar, z: add(mean, mul(exp(mul(logvar, 0.5)), eps)) };
  }

  /** z (B, L, h, w) (unscaled) -> (B, C, h*f, w*f). */
  decode(z: Tensor): Tensor {
    return this.decoder.forward(this.post_quant_conv ? this.post_quant_conv.forward(z) : z);
  }

  /** encode then decode the sample: the posterior and the reconstruction. */
  forward(x: Tensor, rng?: Rng): Posterior & { recon: Tensor } {
    const p = this.encode(x, rng);
    return { ...p, recon: this.decode(p.z) };
  }

  /** What the diffusion model sees: (z - shift) * scale. */
  scaleLatent(z: Tensor): Tensor {
    return mul(sub(z, this.config.shiftFactor), this.config.scalingFactor);
  }

  /** Inverse of scaleLatent, before decode. */
  unscaleLatent(x: Tensor): Tensor {
    return add(mul(x, 1 / this.config.scalingFactor), this.config.shiftFactor);
  }
}

export function createVAE(config: VAEConfig, seed: number): VAE {
  return new VAE(config, new Rng(seed).child('vae'));
}
