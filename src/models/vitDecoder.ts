// The ViT decoder of RAE's stage 1 (Zheng et al., "Diffusion Transformers with Representation
// Autoencoders", arXiv:2510.11690; official code github.com/bytetriper/RAE, src/stage1/rae.py
// (noising, decode) and src/stage1/decoders/decoder.py (GeneralDecoder, an MAE-style ViTMAE
// decoder)); methods-b §5. What it does, in order:
//   tokens z (B, N, d_enc) of the frozen encoder, N = grid² in row-major order
//   → decoder_embed Linear(d_enc → D) → prepend trainable_cls_token (1, 1, D), zero at init
//   → + decoder_pos_embed (1, 1+N, D): fixed MAE 2-D sin-cos (column first), a zero row for the cls
//   → depth × pre-norm ViT block (LayerNorm eps 1e-12 as HF's ViTMAEConfig, attention with q/k/v
//     bias, exact-erf GELU MLP of width mlpDim; no LayerScale)
//   → decoder_norm LayerNorm → decoder_pred Linear(D → p²·C) → drop the cls row
//   → unpatchify: each token's p²·C values are laid out (py, px, c) ("nhwpqc → nchpwq")
//   → optional de-normalisation x·std + mean per channel (RAE's encoder processor mean/std).
// noiseAugment is RAE's `noising`: z + σ_b·n with σ_b = τ·U(0, 1) per sample and n ~ N(0, I),
// applied by the caller in train mode only (RAE: `if self.training and self.noise_tau > 0`).
// Names differ from the official state_dict in the blocks only: ours are `decoder_layers.N.{norm1,
// attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}` (one packed qkv, as DinoBlock in vit.ts) where
// HF has `layernorm_before`, `attention.attention.{query,key,value}`, `attention.output.dense`,
// `layernorm_after`, `intermediate.dense`, `output.dense`; qkv is [query; key; value] along rows.
// Init: PyTorch's defaults (the official GeneralDecoder is a plain nn.Module: Linear U(±1/√in),
// LayerNorm 1/0, cls token 0). Not here: the token-grid interpolation for another N (official
// interpolate_latent; this decoder throws on a grid it was not built for), the losses, training.
import { tensor, type Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { z } from 'zod';
import { add, concat, expand, mul, permute, reshape, slice } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { LayerNorm } from '../nn/layerNorm.ts';
import { DinoBlock } from './vit.ts';
import { sincosPosEmbed2d } from './embeddings.ts';

//################################################################################
//                                   Config                                      #
//################################################################################

export const vitDecoderConfigSchema = z.object({
  /** Channels of the encoder tokens (d_enc; RAE's DINOv2-B: 768). */
  tokenDim: z.number().int().positive(),
  /** Token grid side (N = grid² tokens; RAE: 16). */
  grid: z.number().int().positive(),
  /** Decoder width D (ViT-XL: 1152). */
  hiddenDim: z.number().int().positive(),
  depth: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  /** MLP width (ViT-XL: 4096). */
  mlpDim: z.number().int().positive(),
  /** Output pixels per token side (RAE: 16, image side = grid · patchSize). */
  patchSize: z.number().int().positive(),
  outChannels: z.number().int().positive(),
  /** LayerNorm eps (HF ViTMAEConfig default 1e-12). */
  layerNormEps: z.number().positive(),
  /** Per-channel de-normalisation of the output (x·std + mean), or null for none. */
  denormalize: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }).strict().nullable(),
}).strict().superRefine((c, ctx) => {
  const issue = (path: string, message: string): void => { ctx.addIssue({ code: 'custom', path: [path], message }); };
  if (c.hiddenDim % c.numHeads !== 0) issue('numHeads', `hiddenDim ${c.hiddenDim} is not divisible by numHeads ${c.numHeads}`);
  if (c.hiddenDim % 4 !== 0) issue('hiddenDim', `expected a multiple of 4 (2-D sin-cos positions), got ${c.hiddenDim}`);
  if (c.denormalize) {
    for (const k of ['mean', 'std'] as const) {
      if (c.denormalize[k].length !== c.outChannels) issue('denormalize', `${k} has ${c.denormalize[k].length} entries, expected outChannels = ${c.outChannels}`);
    }
  }
});

export type ViTDecoderConfig = z.infer<typeof vitDecoderConfigSchema>;

export function parseViTDecoderConfig(v: unknown): ViTDecoderConfig {
  const obj = typeof v === 'string' ? JSON.parse(v) as unknown : v;
  const r = vitDecoderConfigSchema.safeParse(obj);
  if (!r.success) throw new Error(`invalid ViT decoder config: ${r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/**
 * 'ViTDec-T': tests; 'ViTDec-S': 8×8 tokens of the project's ViT-P/4 stand-in (192 channels) to
 * 32×32 pixels; 'ViTDec-XL': RAE's DINOv2-B decoder (configs/decoder/ViTXL, 16×16×768 → 256 px).
 */
export const VIT_DECODER_PRESETS: Record<string, ViTDecoderConfig> = {
  'ViTDec-T': parseViTDecoderConfig({ tokenDim: 16, grid: 4, hiddenDim: 32, depth: 2, numHeads: 2, mlpDim: 64, patchSize: 4, outChannels: 3, layerNormEps: 1e-12, denormalize: null }),
  'ViTDec-S': parseViTDecoderConfig({ tokenDim: 192, grid: 8, hiddenDim: 256, depth: 4, numHeads: 4, mlpDim: 1024, patchSize: 4, outChannels: 3, layerNormEps: 1e-12, denormalize: null }),
  'ViTDec-XL': parseViTDecoderConfig({ tokenDim: 768, grid: 16, hiddenDim: 1152, depth: 28, numHeads: 16, mlpDim: 4096, patchSize: 16, outChannels: 3, layerNormEps: 1e-12, denormalize: IMAGENET }),
};

export function vitDecoderPreset(name: string, overrides: Partial<ViTDecoderConfig> = {}): ViTDecoderConfig {
  const base = VIT_DECODER_PRESETS[name];
  if (!base) throw new Error(`unknown ViT decoder preset '${name}'; known: ${Object.keys(VIT_DECODER_PRESETS).join(', ')}`);
  return parseViTDecoderConfig({ ...base, ...overrides });
}

//################################################################################
//                              Noise augmentation                               #
//################################################################################

/**
 * RAE's `noising`: z + σ_b·n, σ_b = tau·u_b with u_b ~ U(0, 1) one per sample (axis 0) and
 * n ~ N(0, I), both drawn from `rng` (the same rng state gives the same noise). The gradient to z
 * is the identity. tau 0 returns z itself (RAE at inference).
 */
export function noiseAugment(zt: Tensor, tau: number, rng: Rng): Tensor {
  if (!(Number.isFinite(tau) && tau >= 0)) throw new Error(`noiseAugment: tau must be a finite number ≥ 0, got ${tau}`);
  if (zt.ndim < 1 || zt.shape[0] < 1) throw new Error(`noiseAugment: expected (B, ...) with B ≥ 1, got ${fmtShape(zt.shape)}`);
  if (tau === 0) return zt;
  const b = zt.shape[0], per = zt.size / b;
  const u = rng.child('sigma').uniformArray(b);
  const n = rng.child('noise').normalArray(zt.size);
  for (let i = 0; i < b; i++) for (let j = 0; j < per; j++) n[i * per + j] *= tau * u[i];
  return add(zt, tensor(n, zt.shape, zt.dtype));
}

//################################################################################
//                                  The model                                    #
//################################################################################

export class ViTDecoder extends Module {
  readonly config: ViTDecoderConfig;
  readonly decoder_embed: Linear;
  readonly trainable_cls_token: Tensor; // (1, 1, D)
  readonly decoder_pos_embed: Tensor; // (1, 1+N, D), fixed
  readonly decoder_layers: ModuleList<DinoBlock>;
  readonly decoder_norm: LayerNorm;
  readonly decoder_pred: Linear;

  constructor(config: ViTDecoderConfig, rng: Rng) {
    super();
    const c = (this.config = parseViTDecoderConfig(config));
    const d = c.hiddenDim, n = c.grid * c.grid;
    this.decoder_embed = this.child('decoder_embed', new Linear(c.tokenDim, d, rng.child('decoder_embed')));
    this.trainable_cls_token = this.param('trainable_cls_token', [1, 1, d]);
    this.decoder_pos_embed = this.buffer('decoder_pos_embed', [1, 1 + n, d], (data) => data.set(sincosPosEmbed2d(d, c.grid), d));
    this.decoder_layers = this.child('decoder_layers', new ModuleList(Array.from({ length: c.depth },
      (_, i) => new DinoBlock(d, c.numHeads, c.mlpDim / d, null, rng.child(`decoder_layers.${i}`), c.layerNormEps))));
    this.decoder_norm = this.child('decoder_norm', new LayerNorm(d, { eps: c.layerNormEps }));
    this.decoder_pred = this.child('decoder_pred', new Linear(d, c.patchSize * c.patchSize * c.outChannels, rng.child('decoder_pred')));
  }

  get imageSize(): number { return this.config.grid * this.config.patchSize; }

  /** Tokens (B, N, d_enc) → per-token patch values (B, N, p²·C) before unpatchify. */
  forwardPatches(zt: Tensor): Tensor {
    const c = this.config, n = c.grid * c.grid, d = c.hiddenDim;
    if (zt.ndim !== 3 || zt.shape[1] !== n || zt.shape[2] !== c.tokenDim) {
      throw new Error(`ViTDecoder: expected tokens (B, ${n}, ${c.tokenDim}) (grid ${c.grid}×${c.grid}), got ${fmtShape(zt.shape)}`);
    }
    const b = zt.shape[0];
    let x = this.decoder_embed.forward(zt); // (B, N, D)
    x = concat([expand(this.trainable_cls_token, [b, 1, d]), x], 1); // (B, 1+N, D)
    x = add(x, this.decoder_pos_embed);
    for (const blk of this.decoder_layers.items) x = blk.forward(x); // (B, 1+N, D)
    const logits = this.decoder_pred.forward(this.decoder_norm.forward(x)); // (B, 1+N, p²C)
    return slice(logits, 1, 1); // (B, N, p²C)
  }

  /** Per-token (B, N, p²·C) in (py, px, c) order → image (B, C, grid·p, grid·p). */
  unpatchify(patches: Tensor): Tensor {
    const c = this.config, g = c.grid, p = c.patchSize, ch = c.outChannels, b = patches.shape[0];
    const x = reshape(patches, [b, g, g, p, p, ch]); // (B, h, w, py, px, C)
    return reshape(permute(x, [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]); // (B, C, h·py, w·px)
  }

  /** Tokens (B, N, d_enc) → image (B, C, H, W), de-normalised when the config says so. */
  forward(zt: Tensor): Tensor {
    const img = this.unpatchify(this.forwardPatches(zt)); // (B, C, H, W)
    const dn = this.config.denormalize, s = [1, this.config.outChannels, 1, 1];
    return dn ? add(mul(img, tensor(dn.std, s, img.dtype)), tensor(dn.mean, s, img.dtype)) : img;
  }
}

/** A fresh decoder from a config and a seed. */
export function createViTDecoder(config: ViTDecoderConfig, seed: number): ViTDecoder {
  return new ViTDecoder(config, new Rng(seed).child('vit-decoder'));
}
