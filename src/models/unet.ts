// A class-conditional convolutional U-Net laid out as diffusers' UNet2DModel with DownBlock2D /
// UpBlock2D and an attention mid block: conv_in, time_embedding.{linear_1, linear_2},
// class_embedding (numClasses rows plus a null row for classifier-free guidance),
// down_blocks.N.{resnets.M, downsamplers.0.conv}, mid_block.{resnets.0, attentions.0, resnets.1},
// up_blocks.N.{resnets.M, upsamplers.0.conv} with skip concatenation, conv_norm_out, conv_out.
// forward also returns the mid-block output (the lowest resolution), where U-REPA aligns.
// Not here: attention in the down/up blocks, cross-attention, the U-REPA loss (methods/).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { add, concat, permute, reshape, silu } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Conv2d } from '../nn/conv2d.ts';
import { Linear } from '../nn/linear.ts';
import { Embedding } from '../nn/embedding.ts';
import { GroupNorm } from '../nn/groupNorm.ts';
import { Downsample2D, ResnetBlock2D, UNetMidBlock2D, Upsample2D, type NormOptions } from './convBlocks.ts';
import { timestepFrequencies } from './embeddings.ts';

//################################################################################
//                                   Config                                      #
//################################################################################

export const unetConfigSchema = z.object({
  sampleSize: z.number().int().positive(),
  inChannels: z.number().int().positive(),
  outChannels: z.number().int().positive(),
  /** Channels per resolution level; every level but the last halves the resolution. */
  blockOutChannels: z.array(z.number().int().positive()).min(1),
  layersPerBlock: z.number().int().positive(),
  normNumGroups: z.number().int().positive(),
  normEps: z.number().positive(),
  /** Mid-block attention head width (heads = channels / width); null = one head. */
  attentionHeadDim: z.number().int().positive().nullable(),
  /** 0 = unconditional (no class_embedding). */
  numClasses: z.number().int().min(0),
  /** > 0 adds the null class at index numClasses. */
  classDropoutProb: z.number().min(0).max(1),
  /** The time features see timeScale * t (1000 spreads flow time in [0, 1] over DDPM's range). */
  timeScale: z.number().positive(),
}).strict().superRefine((c, ctx) => {
  const issue = (message: string): void => { ctx.addIssue({ code: 'custom', message }); };
  for (const ch of c.blockOutChannels) if (ch % c.normNumGroups !== 0) issue(`block channels ${ch} do not split into ${c.normNumGroups} groups`);
  if (c.sampleSize % 2 ** (c.blockOutChannels.length - 1) !== 0) issue(`sampleSize ${c.sampleSize} does not halve ${c.blockOutChannels.length - 1} times`);
  const last = c.blockOutChannels[c.blockOutChannels.length - 1];
  if (c.attentionHeadDim !== null && last % c.attentionHeadDim !== 0) issue(`mid channels ${last} are not a multiple of attentionHeadDim ${c.attentionHeadDim}`);
  if (c.blockOutChannels[0] % 2 !== 0) issue(`blockOutChannels[0] ${c.blockOutChannels[0]} must be even (sin-cos time features)`);
  if (c.classDropoutProb > 0 && c.numClasses === 0) issue('classDropoutProb > 0 needs numClasses > 0');
});

export type UNetConfig = z.infer<typeof unetConfigSchema>;

export function parseUNetConfig(v: unknown): UNetConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = unetConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid U-Net config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const BASE = { normEps: 1e-5, numClasses: 10, classDropoutProb: 0.1, timeScale: 1000 };

/** 'UNet-T': tests; 'UNet-P1': 4x8x8 latents, 4x4 middle; 'UNet-P2': 1x32x32 pixels, 4x4 middle. */
export const UNET_PRESETS: Record<string, UNetConfig> = {
  'UNet-T': parseUNetConfig({ ...BASE, sampleSize: 8, inChannels: 4, outChannels: 4, blockOutChannels: [16, 32], layersPerBlock: 1, normNumGroups: 8, attentionHeadDim: 8 }),
  'UNet-P1': parseUNetConfig({ ...BASE, sampleSize: 8, inChannels: 4, outChannels: 4, blockOutChannels: [64, 128], layersPerBlock: 2, normNumGroups: 32, attentionHeadDim: 32 }),
  'UNet-P2': parseUNetConfig({ ...BASE, sampleSize: 32, inChannels: 1, outChannels: 1, blockOutChannels: [32, 64, 96, 128], layersPerBlock: 1, normNumGroups: 16, attentionHeadDim: 32 }),
};

export function unetPreset(name: string, overrides: Partial<UNetConfig> = {}): UNetConfig {
  const base = UNET_PRESETS[name];
  if (!base) throw new Error(`unknown U-Net preset '${name}'; known: ${Object.keys(UNET_PRESETS).join(', ')}`);
  return parseUNetConfig({ ...base, ...overrides });
}

/** Side of the mid-block feature map. */
export const unetMidSize = (c: UNetConfig): number => c.sampleSize / 2 ** (c.blockOutChannels.length - 1);

//################################################################################
//                                   Blocks                                      #
//################################################################################

/** TimestepEmbedding: linear_1 -> SiLU -> linear_2. */
class TimestepEmbedding extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  constructor(inF: number, outF: number, rng: Rng) {
    super();
    this.linear_1 = this.child('linear_1', new Linear(inF, outF, rng.child('linear_1')));
    this.linear_2 = this.child('linear_2', new Linear(outF, outF, rng.child('linear_2')));
  }
  forward(x: Tensor): Tensor { return this.linear_2.forward(silu(this.linear_1.forward(x))); }
}

/** DownBlock2D: resnets, each output a skip; then a downsampler whose output is a skip too. */
class DownBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | null;
  constructor(inCh: number, outCh: number, layers: number, temb: number, down: boolean, norm: NormOptions, rng: Rng) {
    super();
    this.resnets = this.child('resnets', new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inCh : outCh, outCh, temb, norm, rng.child(`resnets.${i}`)))));
    this.downsamplers = down ? this.child('downsamplers', new ModuleList([new Downsample2D(outCh, 1, rng.child('downsamplers.0'))])) : null;
  }
  forward(x: Tensor, temb: Tensor, skips: Tensor[]): Tensor {
    for (const r of this.resnets.items) skips.push(x = r.forward(x, temb));
    if (this.downsamplers) skips.push(x = this.downsamplers.items[0].forward(x));
    return x;
  }
}

/**
 * UpBlock2D: layers + 1 resnets, each fed concat(x, last skip) on channels; then an upsampler.
 * Resnet i sees prev (i = 0) or out channels plus the skip's: `input` (the level below's width)
 * for the last resnet, `out` otherwise, as diffusers computes them.
 */
class UpBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | null;
  constructor(inCh: number, prevCh: number, outCh: number, layers: number, temb: number, up: boolean, norm: NormOptions, rng: Rng) {
    super();
    this.resnets = this.child('resnets', new ModuleList(Array.from({ length: layers }, (_, i) => {
      const skip = i === layers - 1 ? inCh : outCh;
      return new ResnetBlock2D((i === 0 ? prevCh : outCh) + skip, outCh, temb, norm, rng.child(`resnets.${i}`));
    })));
    this.upsamplers = up ? this.child('upsamplers', new ModuleList([new Upsample2D(outCh, rng.child('upsamplers.0'))])) : null;
  }
  forward(x: Tensor, temb: Tensor, skips: Tensor[]): Tensor {
    for (const r of this.resnets.items) x = r.forward(concat([x, skips.pop()!], 1), temb);
    return this.upsamplers ? this.upsamplers.items[0].forward(x) : x;
  }
}

//################################################################################
//                                  The model                                    #
//################################################################################

export interface UNetForwardOptions {
  /** Random label dropout in training mode (p = classDropoutProb). */
  rng?: Rng;
  /** Per-sample force-drop mask (CFG's unconditional half); replaces the random drop. */
  forceDrop?: ArrayLike<number | boolean>;
}

export interface UNetOutput {
  /** (B, C_out, H, W). */
  out: Tensor;
  /** Mid-block output (B, C_mid, h, w), in the graph. */
  mid: Tensor;
  /** The same as tokens (B, h*w, C_mid) in row-major order (the ViT's patch order). */
  midTokens: Tensor;
  /** Labels after dropout (numClasses = null class). */
  labels: Int32Array;
}

export class UNet extends Module {
  readonly config: UNetConfig;
  readonly conv_in: Conv2d;
  readonly time_embedding: TimestepEmbedding;
  readonly class_embedding: Embedding | null;
  readonly down_blocks: ModuleList<DownBlock2D>;
  readonly mid_block: UNetMidBlock2D;
  readonly up_blocks: ModuleList<UpBlock2D>;
  readonly conv_norm_out: GroupNorm;
  readonly conv_out: Conv2d;

  /** PyTorch-default initial weights, a function of (config, rng's seed and stream). */
  constructor(config: UNetConfig, rng: Rng) {
    super();
    const c = (this.config = parseUNetConfig(config));
    const ch = c.blockOutChannels, n = ch.length, temb = 4 * ch[0];
    const norm = { groups: c.normNumGroups, eps: c.normEps };
    this.conv_in = this.child('conv_in', new Conv2d(c.inChannels, ch[0], 3, rng.child('conv_in'), { padding: 1 }));
    this.time_embedding = this.child('time_embedding', new TimestepEmbedding(ch[0], temb, rng.child('time_embedding')));
    this.class_embedding = c.numClasses > 0
      ? this.child('class_embedding', new Embedding(c.numClasses + (c.classDropoutProb > 0 ? 1 : 0), temb, rng.child('class_embedding')))
      : null;
    this.down_blocks = this.child('down_blocks', new ModuleList(ch.map((out, i) =>
      new DownBlock2D(i === 0 ? ch[0] : ch[i - 1], out, c.layersPerBlock, temb, i < n - 1, norm, rng.child(`down_blocks.${i}`)))));
    const last = ch[n - 1];
    this.mid_block = this.child('mid_block', new UNetMidBlock2D(last, temb, c.attentionHeadDim ? last / c.attentionHeadDim : 1, norm, rng.child('mid_block')));
    const rev = [...ch].reverse();
    this.up_blocks = this.child('up_blocks', new ModuleList(rev.map((out, i) =>
      new UpBlock2D(rev[Math.min(i + 1, n - 1)], i === 0 ? rev[0] : rev[i - 1], out, c.layersPerBlock + 1, temb, i < n - 1, norm, rng.child(`up_blocks.${i}`)))));
    this.conv_norm_out = this.child('conv_norm_out', new GroupNorm(c.normNumGroups, ch[0], { eps: c.normEps }));
    this.conv_out = this.child('conv_out', new Conv2d(ch[0], c.outChannels, 3, rng.child('conv_out'), { padding: 1 }));
  }

  /** Labels after dropout, as the SiT's LabelEmbedder does it (forceDrop wins; random only in training). */
  dropLabels(y: ArrayLike<number>, opts: UNetForwardOptions): Int32Array {
    const c = this.config, out = Int32Array.from(y);
    for (let i = 0; i < out.length; i++) {
      if (!Number.isInteger(y[i]) || y[i] < 0 || y[i] > c.numClasses) throw new Error(`UNet: label ${y[i]} at ${i} is not in [0, ${c.numClasses}]`);
    }
    let drop: ArrayLike<number | boolean> | null = null;
    if (opts.forceDrop) drop = opts.forceDrop;
    else if (this.training && c.classDropoutProb > 0) {
      if (!opts.rng) throw new Error('UNet: label dropout in training mode needs an rng (pass { rng } to forward)');
      drop = Array.from(opts.rng.uniformArray(out.length), (u) => u < c.classDropoutProb);
    }
    if (drop) {
      if (drop.length !== out.length) throw new Error(`UNet: forceDrop has ${drop.length} entries for ${out.length} labels`);
      for (let i = 0; i < out.length; i++) {
        if (!drop[i]) continue;
        if (c.classDropoutProb <= 0) throw new Error('UNet: cannot drop labels: this model has no null class (class dropout 0)');
        out[i] = c.numClasses;
      }
    }
    return out;
  }

  /** x (B, C, H, W), t (B) (scaled by config.timeScale), y (B) labels (ignored when unconditional). */
  forward(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number> | null, opts: UNetForwardOptions = {}): UNetOutput {
    const c = this.config, b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.sampleSize || x.shape[3] !== c.sampleSize) {
      throw new Error(`UNet: expected x (B, ${c.inChannels}, ${c.sampleSize}, ${c.sampleSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== b) throw new Error(`UNet: batch ${b} but ${t.length} timesteps`);
    const ch0 = c.blockOutChannels[0];
    const freq = tensor(timestepFrequencies(Array.from(t, (v) => v * c.timeScale), ch0), [b, ch0]); // (B, ch0)
    let temb = this.time_embedding.forward(freq); // (B, 4 ch0)
    let labels: Int32Array = new Int32Array(0);
    if (this.class_embedding) {
      if (!y || y.length !== b) throw new Error(`UNet: batch ${b} needs ${b} labels`);
      labels = this.dropLabels(y, opts);
      temb = add(temb, this.class_embedding.forward(labels));
    }
    let h = this.conv_in.forward(x); // (B, ch0, H, W)
    const skips: Tensor[] = [h];
    for (const blk of this.down_blocks.items) h = blk.forward(h, temb, skips);
    const mid = this.mid_block.forward(h, temb); // (B, C_mid, h, w)
    h = mid;
    for (const blk of this.up_blocks.items) h = blk.forward(h, temb, skips);
    const out = this.conv_out.forward(silu(this.conv_norm_out.forward(h))); // (B, C_out, H, W)
    const [, cm, mh, mw] = mid.shape;
    return { out, mid, midTokens: permute(reshape(mid, [b, cm, mh * mw]), [0, 2, 1]), labels };
  }
}

export function createUNet(config: UNetConfig, seed: number): UNet {
  return new UNet(config, new Rng(seed).child('unet'));
}
