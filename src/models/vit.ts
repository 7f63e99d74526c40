// The ViT encoder laid out exactly as DINOv2's DinoVisionTransformer (facebookresearch/dinov2
// models/vision_transformer.py, layers/block.py, block_chunks=0 as the released checkpoints), so
// its state_dict names are the official ones: cls_token (1,1,D), pos_embed (1,1+M*M,D),
// register_tokens (1,R,D) when R > 0, mask_token (1,D), patch_embed.proj, blocks.N.{norm1,
// attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}, norm. forward returns
// x_norm_clstoken / x_norm_regtokens / x_norm_patchtokens / x_prenorm and tapped block outputs.
// pos_embed is resampled to other token grids as DINOv2's interpolate_pos_encoding does (bicubic
// by default, with its +0.1 scale-factor offset or antialias, see resample.ts). Not here: SwiGLU
// FFNs (ViT-g), drop-path, DINO/iBOT heads and losses, loading files (dinov2.ts).
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { add, concat, expand, matmul, mul, reshape, slice, sub } from '../autograd/index.ts';
import { Module, ModuleList, persistent } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { LayerNorm } from '../nn/layerNorm.ts';
import { Attention } from '../nn/attention.ts';
import { Mlp } from '../nn/mlp.ts';
import { PatchEmbed } from '../nn/patchEmbed.ts';
import { normal, zeros } from '../nn/init.ts';
import { resampleGridMatrix } from './resample.ts';
import { isMetaArray } from '../kernels/meta.ts';

//################################################################################
//                                   Config                                      #
//################################################################################

export const vitConfigSchema = z.object({
  /** Native image size; the pos_embed grid is imgSize / patchSize on each side. */
  imgSize: z.number().int().positive(),
  patchSize: z.number().int().positive(),
  inChannels: z.number().int().positive(),
  embedDim: z.number().int().positive(),
  depth: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  mlpRatio: z.number().positive(),
  numRegisterTokens: z.number().int().min(0),
  /** LayerScale init value; null = no LayerScale (no ls1/ls2.gamma in the state_dict). */
  layerScaleInit: z.number().positive().nullable(),
  /** interpolate_pos_encoding: mode, antialias and the scale-factor offset (0 = use the size). */
  interpolateMode: z.enum(['bicubic', 'bilinear']),
  interpolateAntialias: z.boolean(),
  interpolateOffset: z.number().min(0),
}).strict().superRefine((c, ctx) => {
  const issue = (message: string): void => { ctx.addIssue({ code: 'custom', message }); };
  if (c.imgSize % c.patchSize !== 0) issue(`imgSize ${c.imgSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.embedDim % c.numHeads !== 0) issue(`embedDim ${c.embedDim} is not divisible by numHeads ${c.numHeads}`);
  if (!Number.isInteger(c.embedDim * c.mlpRatio)) issue(`embedDim * mlpRatio = ${c.embedDim * c.mlpRatio} is not an integer`);
});

export type ViTConfig = z.infer<typeof vitConfigSchema>;

export function parseViTConfig(v: unknown): ViTConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = vitConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid ViT config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** DINOv2 hub settings: plain models use the +0.1 offset kludge, register models antialias. */
const DINO = { mlpRatio: 4, inChannels: 3, layerScaleInit: 1, interpolateMode: 'bicubic' } as const;
const PLAIN = { numRegisterTokens: 0, interpolateAntialias: false, interpolateOffset: 0.1 } as const;
const REG = { numRegisterTokens: 4, interpolateAntialias: true, interpolateOffset: 0 } as const;
const S14 = { imgSize: 518, patchSize: 14, embedDim: 384, depth: 12, numHeads: 6 };
const B14 = { imgSize: 518, patchSize: 14, embedDim: 768, depth: 12, numHeads: 12 };
const L14 = { imgSize: 518, patchSize: 14, embedDim: 1024, depth: 24, numHeads: 16 };
/** Small encoders for 32x32 images (patch 4 -> 8x8 tokens): T for tests, P for this project. */
const SMALL = { imgSize: 32, patchSize: 4, inChannels: 3, mlpRatio: 4, layerScaleInit: 1, interpolateMode: 'bicubic', ...PLAIN } as const;

export const VIT_PRESETS: Record<string, ViTConfig> = {
  'ViT-T/4': parseViTConfig({ ...SMALL, embedDim: 64, depth: 2, numHeads: 2 }),
  'ViT-P/4': parseViTConfig({ ...SMALL, embedDim: 192, depth: 6, numHeads: 3 }),
  dinov2_vits14: parseViTConfig({ ...DINO, ...PLAIN, ...S14 }),
  dinov2_vitb14: parseViTConfig({ ...DINO, ...PLAIN, ...B14 }),
  dinov2_vitl14: parseViTConfig({ ...DINO, ...PLAIN, ...L14 }),
  dinov2_vits14_reg: parseViTConfig({ ...DINO, ...REG, ...S14 }),
  dinov2_vitb14_reg: parseViTConfig({ ...DINO, ...REG, ...B14 }),
  dinov2_vitl14_reg: parseViTConfig({ ...DINO, ...REG, ...L14 }),
};

export function vitPreset(name: string, overrides: Partial<ViTConfig> = {}): ViTConfig {
  const base = VIT_PRESETS[name];
  if (!base) throw new Error(`unknown ViT preset '${name}'; known: ${Object.keys(VIT_PRESETS).join(', ')}`);
  return parseViTConfig({ ...base, ...overrides });
}

export const vitGrid = (c: ViTConfig): number => c.imgSize / c.patchSize;

//################################################################################
//                                   Blocks                                      #
//################################################################################

/** torch.nn.init.trunc_normal_(std, a=-2, b=2): redraw values outside [a, b] (absolute bounds). */
function truncNormal(t: Tensor, rng: Rng, std: number): void {
  if (isMetaArray(t.data)) return; // shape-only (kernels/meta.ts): nothing to draw into
  const v = rng.normalArray(t.size, 0, std);
  for (let i = 0; i < v.length; i++) while (v[i] < -2 || v[i] > 2) v[i] = rng.normalArray(1, 0, std)[0];
  t.data.set(v);
}

/** DINOv2's LayerScale: x * gamma, gamma (D) initialised to a constant. */
export class LayerScale extends Module {
  readonly gamma: Tensor; // (D)
  constructor(dim: number, init: number) {
    super();
    this.gamma = this.param('gamma', [dim], (d) => d.fill(init));
  }
  forward(x: Tensor): Tensor { return mul(x, this.gamma); }
}

/** Pre-norm block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))). */
export class DinoBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale | null;

  /** eps: the two LayerNorms' (DINOv2 1e-6; the MAE/RAE decoder's ViTMAELayer uses 1e-12). */
  constructor(dim: number, heads: number, mlpRatio: number, layerScaleInit: number | null, rng: Rng, eps = 1e-6) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, { eps }));
    this.attn = this.child('attn', new Attention(dim, heads, rng.child('attn'), { qkvBias: true, projBias: true }));
    this.ls1 = layerScaleInit === null ? null : this.child('ls1', new LayerScale(dim, layerScaleInit));
    this.norm2 = this.child('norm2', new LayerNorm(dim, { eps }));
    this.mlp = this.child('mlp', new Mlp(dim, Math.round(dim * mlpRatio), rng.child('mlp'), { act: 'gelu' }));
    this.ls2 = layerScaleInit === null ? null : this.child('ls2', new LayerScale(dim, layerScaleInit));
  }

  /** x (B, T, D) -> (B, T, D). */
  forward(x: Tensor): Tensor {
    const a = this.attn.forward(this.norm1.forward(x)); // (B, T, D)
    x = add(x, this.ls1 ? this.ls1.forward(a) : a);
    const m = this.mlp.forward(this.norm2.forward(x)); // (B, T, D)
    return add(x, this.ls2 ? this.ls2.forward(m) : m);
  }
}

//################################################################################
//                                  The model                                    #
//################################################################################

export interface ViTForwardOptions {
  /** 1-based block indices whose outputs (B, 1+R+N, D), before the final norm, to return. */
  taps?: readonly number[];
  /** (B*N) flags, row-major per image: patch tokens replaced by mask_token (iBOT masking). */
  masks?: ArrayLike<number | boolean>;
}

export interface ViTOutput {
  /** x_norm_clstoken (B, D). */
  clsToken: Tensor;
  /** x_norm_regtokens (B, R, D), null without registers. */
  regTokens: Tensor | null;
  /** x_norm_patchtokens (B, N, D), N = (H/p)(W/p) in row-major order. */
  patchTokens: Tensor;
  /** x_prenorm (B, 1+R+N, D): the last block's output. */
  prenorm: Tensor;
  /** Tapped block index (1-based) -> block output (B, 1+R+N, D). */
  hidden: Map<number, Tensor>;
}

export class ViT extends Module {
  readonly config: ViTConfig;
  readonly cls_token: Tensor; // (1, 1, D)
  readonly pos_embed: Tensor; // (1, 1+M*M, D)
  readonly register_tokens: Tensor | null; // (1, R, D)
  readonly mask_token: Tensor; // (1, D)
  readonly patch_embed: PatchEmbed;
  readonly blocks: ModuleList<DinoBlock>;
  readonly norm: LayerNorm;
  /** Resample matrices for pos_embed by target grid "h x w" (constants of the config). */
  private readonly posCache = new Map<string, Tensor>();

  /**
   * Initial weights (DINOv2's init_weights) are a function of (config, rng's seed and stream).
   * opts.init false skips that pass (about half the construction time of a ViT-B) for a model
   * whose weights are loaded next.
   */
  constructor(config: ViTConfig, rng: Rng, opts: { init?: boolean } = {}) {
    super();
    const c = (this.config = parseViTConfig(config));
    const d = c.embedDim, m = vitGrid(c);
    this.cls_token = this.param('cls_token', [1, 1, d]);
    this.pos_embed = this.param('pos_embed', [1, 1 + m * m, d]);
    this.register_tokens = c.numRegisterTokens > 0 ? this.param('register_tokens', [1, c.numRegisterTokens, d]) : null;
    this.mask_token = this.param('mask_token', [1, d]);
    this.patch_embed = this.child('patch_embed', new PatchEmbed(c.inChannels, d, c.patchSize, rng.child('patch_embed')));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.depth },
      (_, i) => new DinoBlock(d, c.numHeads, c.mlpRatio, c.layerScaleInit, rng.child(`blocks.${i}`)))));
    this.norm = this.child('norm', new LayerNorm(d, { eps: 1e-6 }));
    if (opts.init ?? true) this.initWeights(rng.child('init'));
  }

  /**
   * init_weights: pos_embed trunc-normal(0.02), cls and register tokens N(0, 1e-6), every Linear
   * trunc-normal(0.02) with zero bias, mask_token zero; the patch conv keeps PyTorch's default.
   */
  private initWeights(rng: Rng): void {
    truncNormal(this.pos_embed, rng.child('pos_embed'), 0.02);
    normal(this.cls_token, rng.child('cls_token'), 1e-6);
    if (this.register_tokens) normal(this.register_tokens, rng.child('register_tokens'), 1e-6);
    zeros(this.mask_token);
    for (const [name, mod] of this.namedModules()) {
      if (!(mod instanceof Linear)) continue;
      truncNormal(mod.weight, rng.child(name), 0.02);
      if (mod.bias) zeros(mod.bias);
    }
  }

  get numPrefixTokens(): number { return 1 + this.config.numRegisterTokens; }

  /**
   * interpolate_pos_encoding: pos_embed as is on the native grid, else its patch part resampled
   * to h x w (with DINOv2's offset: scale_factor (h + off) / M, else size (h, w)). (1, 1+h*w, D).
   */
  posEmbedFor(h: number, w: number): Tensor {
    const c = this.config, m = vitGrid(c), d = c.embedDim;
    if (h === m && w === m) return this.pos_embed;
    const key = `${h}x${w}`;
    let r = this.posCache.get(key);
    if (!r) {
      const off = c.interpolateOffset;
      const opts = { mode: c.interpolateMode, antialias: c.interpolateAntialias, ...(off > 0 ? { scaleFactor: (h + off) / m, scaleFactorW: (w + off) / m } : {}) };
      r = persistent([h * w, m * m]); // (h*w, M*M), lives as long as the model
      r.data.set(resampleGridMatrix(m, m, h, w, opts));
      this.posCache.set(key, r);
    }
    const table = reshape(this.pos_embed, [1 + m * m, d]); // (1+M*M, D)
    const patch = matmul(r, slice(table, 0, 1)); // (h*w, D)
    return reshape(concat([slice(table, 0, 0, 1), patch], 0), [1, 1 + h * w, d]);
  }

  /** prepare_tokens_with_masks: x (B, C, H, W) -> (B, 1+R+N, D). */
  prepareTokens(x: Tensor, masks?: ArrayLike<number | boolean>): Tensor {
    const c = this.config, d = c.embedDim;
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels) throw new Error(`ViT: expected x (B, ${c.inChannels}, H, W), got ${fmtShape(x.shape)}`);
    const b = x.shape[0], h = x.shape[2] / c.patchSize, w = x.shape[3] / c.patchSize;
    let t = this.patch_embed.forward(x); // (B, N, D)
    if (masks) {
      if (masks.length !== b * h * w) throw new Error(`ViT: masks has ${masks.length} entries, expected B*N = ${b * h * w}`);
      const m = tensor(Array.from(masks, (v) => (v ? 1 : 0)), [b, h * w, 1]); // (B, N, 1)
      t = add(sub(t, mul(t, m)), mul(m, this.mask_token)); // where(m, mask_token, t)
    }
    t = concat([expand(this.cls_token, [b, 1, d]), t], 1); // (B, 1+N, D)
    t = add(t, this.posEmbedFor(h, w));
    if (!this.register_tokens) return t;
    return concat([slice(t, 1, 0, 1), expand(this.register_tokens, [b, c.numRegisterTokens, d]), slice(t, 1, 1)], 1); // (B, 1+R+N, D)
  }

  /** forward_features. x (B, C, H, W) with H, W multiples of the patch size. */
  forward(x: Tensor, opts: ViTForwardOptions = {}): ViTOutput {
    const c = this.config;
    const taps = new Set(opts.taps ?? []);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`ViT: tap ${k} is not a block index in 1..${c.depth}`);
    let h = this.prepareTokens(x, opts.masks); // (B, 1+R+N, D)
    const hidden = new Map<number, Tensor>();
    this.blocks.items.forEach((blk, i) => {
      h = blk.forward(h);
      if (taps.has(i + 1)) hidden.set(i + 1, h);
    });
    const xn = this.norm.forward(h); // (B, 1+R+N, D)
    const b = x.shape[0], r = c.numRegisterTokens;
    return {
      clsToken: reshape(slice(xn, 1, 0, 1), [b, c.embedDim]),
      regTokens: r > 0 ? slice(xn, 1, 1, 1 + r) : null,
      patchTokens: slice(xn, 1, 1 + r),
      prenorm: h,
      hidden,
    };
  }
}

/** A fresh encoder from a config and a seed. */
export function createViT(config: ViTConfig, seed: number): ViT {
  return new ViT(config, new Rng(seed).child('vit'));
}
