// UniFlow's patch-wise pixel flow decoder (Yue et al., ICLR'26, arXiv 2510.10575, §3.2; methods-b §9;
// structure as read in a third-party copy of the official Hugging Face file modeling_uniflow.py,
// github.com/hhhhzp/RAE — no official training code is public). From the encoder's final tokens
// to a per-patch velocity:
//   tokens (B, g², d) → 2×2 merge (B, (g/2)², 4d) → MLP → z (B, (g/2)², zc)        the compact latent
//   z → Linear(zc → 4W) → 2×2 un-merge (B, g², W) + sin-cos positions → GTBs → RMSNorm → c (B, g², W)
//   GTB (global transformer block): x + Attn(RMSNorm x), x + SwiGLU(RMSNorm x); attention with
//   q/k RMSNorm and 2-D RoPE (nn/ropeAttention.ts; no qkv bias, DDT's RAttention layout), no adaLN
//   v_θ(x_t, t, c) per patch (rows R = B·g², P = p²·C pixels each):
//     h = Linear(P → W_f)(x_t);  y = t_emb(t) + Linear(W → W_f)(c)
//     ResBlock ×n: (shift, scale, gate) = Linear(SiLU y);  h ← h + gate ⊙ MLP(LN(h)(1 + scale) + shift)
//     out = Linear(LN(h)(1 + scale) + shift), (shift, scale) = Linear(SiLU y)
// The flow: x_t = (1 − t)·x + t·ε per patch, target ε − x (t = 1 is noise). Decoding integrates
// from t = 1 with Euler steps; ONE step is x̂ = ε − v_θ(ε, 1, c) (the paper's setting).
// Ours: zc, W, W_f and the block counts are the small-scale ones of the spec (z 16 ch on 4×4, 2 GTBs,
// 4 ResBlocks); the merge MLP is Linear-SiLU-Linear; the up projection is one Linear then the 2×2
// un-merge; positions are the fixed 2-D sin-cos table (MAE/DiT); q/k-norm in the GTB; a final RMSNorm
// on c; the timestep embedding is DiT's (frequencies of 1000·t); the adaLN Linears and the output
// Linear start at zero (MAR's SimpleMLPAdaLN does so), so v_θ = 0 at initialisation. No Fourier/DCT
// in-patch positional features.
// Not here: the encoder (model.ts), the loss and the method (index.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import type { Rng } from '../../tensor/rng.ts';
import { tidy } from '../../tensor/tidy.ts';
import { isGradEnabled } from '../../autograd/tape.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, chunk, gatedResidual, layerNormModulate, mul, permute, reshape, silu, sub } from '../../autograd/index.ts';
import { rope2dAngles } from '../../autograd/ops/rope.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { RMSNorm } from '../../nn/rmsNorm.ts';
import { SwiGLU, swigluHidden } from '../../nn/swiglu.ts';
import { RopeAttention } from '../../nn/ropeAttention.ts';
import { zeros } from '../../nn/init.ts';
import { TimestepEmbedder, sincosPosEmbed2d, timestepFrequencies } from '../../models/embeddings.ts';

export interface PixelFlowConfig {
  /** d: width of the encoder's tokens. */
  tokenDim: number;
  /** g: side of the encoder's token grid (even: the 2×2 merge). */
  grid: number;
  /** p: pixels per token side; C: image channels (a patch holds P = p²·C values). */
  patchSize: number;
  channels: number;
  /** zc: channels of the compact latent z. */
  latentChannels: number;
  /** W: width of the up projection, the GTBs and the condition c; heads of the GTBs' attention. */
  width: number;
  heads: number;
  /** GTB count (0: no global mixing — each patch's c comes from its 2×2 window only). */
  gtbDepth: number;
  mlpRatio: number;
  /** W_f and the ResBlock count of the flow MLP v_θ. */
  flowWidth: number;
  flowDepth: number;
}

export function checkPixelFlowConfig(c: PixelFlowConfig): PixelFlowConfig {
  for (const k of ['tokenDim', 'grid', 'patchSize', 'channels', 'latentChannels', 'width', 'heads', 'flowWidth', 'flowDepth'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`PixelFlowDecoder: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (!Number.isInteger(c.gtbDepth) || c.gtbDepth < 0) throw new Error(`PixelFlowDecoder: gtbDepth must be an integer ≥ 0, got ${c.gtbDepth}`);
  if (c.grid % 2 !== 0) throw new Error(`PixelFlowDecoder: the token grid ${c.grid} must be even for the 2×2 merge`);
  if (c.width % 4 !== 0) throw new Error(`PixelFlowDecoder: width ${c.width} must be a multiple of 4 (2-D sin-cos positions)`);
  if (c.gtbDepth > 0 && (c.width % c.heads !== 0 || (c.width / c.heads) % 4 !== 0)) {
    throw new Error(`PixelFlowDecoder: width ${c.width} / heads ${c.heads} must give a head dim that is a multiple of 4 (2-D RoPE)`);
  }
  return c;
}

/** (B, g², d) row-major tokens → (B, (g/2)², 4d): each 2×2 window's four tokens side by side (pixel-unshuffle). */
export function mergeTokens(x: Tensor, grid: number): Tensor {
  const [b, n, d] = x.shape, h = grid / 2;
  if (x.ndim !== 3 || n !== grid * grid) throw new Error(`mergeTokens: expected (B, ${grid * grid}, D), got ${fmtShape(x.shape)}`);
  return reshape(permute(reshape(x, [b, h, 2, h, 2, d]), [0, 1, 3, 2, 4, 5]), [b, h * h, 4 * d]);
}

/** The inverse of mergeTokens: (B, (g/2)², 4W) → (B, g², W). */
export function unmergeTokens(x: Tensor, grid: number): Tensor {
  const [b, n, d4] = x.shape, h = grid / 2, d = d4 / 4;
  if (x.ndim !== 3 || n !== h * h || d4 % 4 !== 0) throw new Error(`unmergeTokens: expected (B, ${h * h}, 4W), got ${fmtShape(x.shape)}`);
  return reshape(permute(reshape(x, [b, h, h, 2, 2, d]), [0, 1, 3, 2, 4, 5]), [b, n * 4, d]);
}

/** Images (B, C, g·p, g·p) → patch rows (B·g², C·p·p), rows row-major over the grid, each (C, p, p). */
export function patchify(x: Tensor, p: number): Tensor {
  const [b, c, hh, ww] = x.shape;
  if (x.ndim !== 4 || hh !== ww || hh % p !== 0) throw new Error(`patchify: expected square images (B, C, H, W) with H a multiple of ${p}, got ${fmtShape(x.shape)}`);
  const g = hh / p;
  return reshape(permute(reshape(x, [b, c, g, p, g, p]), [0, 2, 4, 1, 3, 5]), [b * g * g, c * p * p]);
}

/** The inverse of patchify: rows (B·g², C·p·p) → images (B, C, g·p, g·p). */
export function unpatchify(rows: Tensor, b: number, c: number, p: number): Tensor {
  const n = rows.shape[0] / b, g = Math.round(Math.sqrt(n));
  if (rows.ndim !== 2 || g * g * b !== rows.shape[0] || rows.shape[1] !== c * p * p) throw new Error(`unpatchify: rows ${fmtShape(rows.shape)} are not B=${b} square grids of ${c}·${p}² values`);
  return reshape(permute(reshape(rows, [b, g, g, c, p, p]), [0, 3, 1, 4, 2, 5]), [b, c, g * p, g * p]);
}

/** A global transformer block: RMSNorm, q/k-norm RoPE attention, RMSNorm, SwiGLU; pre-norm residuals, no conditioning. */
export class GlobalBlock extends Module {
  readonly norm1: RMSNorm;
  readonly attn: RopeAttention;
  readonly norm2: RMSNorm;
  readonly mlp: SwiGLU;

  constructor(dim: number, heads: number, mlpRatio: number, rng: Rng) {
    super();
    this.norm1 = this.child('norm1', new RMSNorm(dim, 1e-6));
    this.attn = this.child('attn', new RopeAttention(dim, heads, rng.child('attn'), { qkvBias: false, qkNorm: true }));
    this.norm2 = this.child('norm2', new RMSNorm(dim, 1e-6));
    this.mlp = this.child('mlp', new SwiGLU(dim, swigluHidden(Math.round(dim * mlpRatio)), rng.child('mlp')));
  }

  /** x (B, N, W); angles (N, d/2) → (B, N, W). */
  forward(x: Tensor, angles: Float64Array | null): Tensor {
    x = add(x, this.attn.forward(this.norm1.forward(x), angles));
    return add(x, this.mlp.forward(this.norm2.forward(x)));
  }
}

/** One adaLN ResBlock of v_θ: h + gate ⊙ MLP(LN(h)(1 + scale) + shift), (shift, scale, gate) from SiLU(y). */
export class FlowResBlock extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly adaLN_modulation: Linear;

  constructor(readonly width: number, rng: Rng) {
    super();
    this.fc1 = this.child('fc1', new Linear(width, width, rng.child('fc1')));
    this.fc2 = this.child('fc2', new Linear(width, width, rng.child('fc2')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Linear(width, 3 * width, rng.child('adaLN_modulation')));
    zeros(this.adaLN_modulation.weight);
    zeros(this.adaLN_modulation.bias!);
  }

  /** h (R, 1, W_f); y (R, W_f) → (R, 1, W_f). */
  forward(h: Tensor, y: Tensor): Tensor {
    const [shift, scale, gate] = chunk(this.adaLN_modulation.forward(silu(y)), 3, -1); // 3 × (R, W_f)
    const m = this.fc2.forward(silu(this.fc1.forward(layerNormModulate(h, shift, scale, 1e-6)))); // (R, 1, W_f)
    return gatedResidual(h, gate, m);
  }
}

/** v_θ(x_t, t, c): the per-patch flow MLP. Every row is its own sample: row i reads only x_t[i], t[i], c[i]. */
export class FlowMlp extends Module {
  readonly input_proj: Linear;
  readonly cond_embed: Linear;
  readonly time_embed: TimestepEmbedder;
  readonly res_blocks: ModuleList<FlowResBlock>;
  readonly final_adaLN: Linear;
  readonly final_linear: Linear;

  constructor(readonly pixels: number, readonly condDim: number, readonly width: number, depth: number, rng: Rng) {
    super();
    this.input_proj = this.child('input_proj', new Linear(pixels, width, rng.child('input_proj')));
    this.cond_embed = this.child('cond_embed', new Linear(condDim, width, rng.child('cond_embed')));
    this.time_embed = this.child('time_embed', new TimestepEmbedder(width, rng.child('time_embed'), 256, 1000));
    this.res_blocks = this.child('res_blocks', new ModuleList(Array.from({ length: depth }, (_, i) => new FlowResBlock(width, rng.child(`res_blocks.${i}`)))));
    this.final_adaLN = this.child('final_adaLN', new Linear(width, 2 * width, rng.child('final_adaLN')));
    this.final_linear = this.child('final_linear', new Linear(width, pixels, rng.child('final_linear')));
    for (const l of [this.final_adaLN, this.final_linear]) { zeros(l.weight); zeros(l.bias!); }
  }

  /** xt (R, P), t (R) in [0, 1], c (R, W) → v (R, P). */
  forward(xt: Tensor, t: ArrayLike<number>, c: Tensor): Tensor {
    const r = xt.shape[0];
    if (xt.ndim !== 2 || xt.shape[1] !== this.pixels || t.length !== r || c.ndim !== 2 || c.shape[0] !== r || c.shape[1] !== this.condDim) {
      throw new Error(`FlowMlp: expected x_t (R, ${this.pixels}), t (R), c (R, ${this.condDim}); got ${fmtShape(xt.shape)}, ${t.length}, ${fmtShape(c.shape)}`);
    }
    // the embedder's MLP on the frequencies of 1000·t, in the input's dtype (float64 in gradchecks)
    const freq = tensor(timestepFrequencies(Array.from(t, (v) => v * this.time_embed.timeScale), this.time_embed.frequencySize), [r, this.time_embed.frequencySize], xt.dtype);
    const y = add(this.time_embed.mlp.forward(freq), this.cond_embed.forward(c)); // (R, W_f)
    let h = reshape(this.input_proj.forward(xt), [r, 1, this.width]); // (R, 1, W_f)
    for (const blk of this.res_blocks.items) h = blk.forward(h, y);
    const [shift, scale] = chunk(this.final_adaLN.forward(silu(y)), 2, -1); // 2 × (R, W_f)
    return reshape(this.final_linear.forward(layerNormModulate(h, shift, scale, 1e-6)), [r, this.pixels]); // (R, P)
  }
}

export class PixelFlowDecoder extends Module {
  readonly config: PixelFlowConfig;
  readonly down: ModuleList<Linear>;
  readonly up: Linear;
  readonly pos_embed: Tensor; // (g², W) buffer
  readonly blocks: ModuleList<GlobalBlock>;
  readonly norm: RMSNorm;
  readonly flow: FlowMlp;
  private readonly angles: Float64Array | null;

  constructor(config: PixelFlowConfig, rng: Rng) {
    super();
    const c = (this.config = checkPixelFlowConfig(config));
    const w = c.width, g = c.grid;
    this.down = this.child('down', new ModuleList([new Linear(4 * c.tokenDim, w, rng.child('down.0')), new Linear(w, c.latentChannels, rng.child('down.1'))]));
    this.up = this.child('up', new Linear(c.latentChannels, 4 * w, rng.child('up')));
    this.pos_embed = this.buffer('pos_embed', [g * g, w], (d) => d.set(sincosPosEmbed2d(w, g)));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.gtbDepth }, (_, i) => new GlobalBlock(w, c.heads, c.mlpRatio, rng.child(`blocks.${i}`)))));
    this.norm = this.child('norm', new RMSNorm(w, 1e-6));
    this.flow = this.child('flow', new FlowMlp(c.patchSize * c.patchSize * c.channels, w, c.flowWidth, c.flowDepth, rng.child('flow')));
    this.angles = c.gtbDepth > 0 ? rope2dAngles(g, g, w / c.heads) : null;
  }

  /** Encoder tokens (B, g², d) → the compact latent z (B, (g/2)², zc). */
  latent(tokens: Tensor): Tensor {
    const c = this.config;
    if (tokens.ndim !== 3 || tokens.shape[1] !== c.grid * c.grid || tokens.shape[2] !== c.tokenDim) throw new Error(`PixelFlowDecoder: expected tokens (B, ${c.grid * c.grid}, ${c.tokenDim}), got ${fmtShape(tokens.shape)}`);
    return this.down.items[1].forward(silu(this.down.items[0].forward(mergeTokens(tokens, c.grid))));
  }

  /** z (B, (g/2)², zc) → per-patch conditions c (B, g², W). */
  condition(z: Tensor): Tensor {
    let h = add(unmergeTokens(this.up.forward(z), this.config.grid), this.pos_embed); // (B, g², W)
    for (const blk of this.blocks.items) h = blk.forward(h, this.angles);
    return this.norm.forward(h);
  }

  /** The velocity of noised patches: x_t (B, C, H, W), t per patch (B·g²), c (B, g², W) → v (B, C, H, W). */
  velocity(xt: Tensor, t: ArrayLike<number>, c: Tensor): Tensor {
    const cf = this.config, b = xt.shape[0];
    const rows = this.flow.forward(patchify(xt, cf.patchSize), t, reshape(c, [b * cf.grid * cf.grid, cf.width])); // (B·g², P)
    return unpatchify(rows, b, cf.channels, cf.patchSize);
  }

  /** Euler from t = 1 (x = ε) to t = 0 in `steps` equal steps: x ← x − Δ·v(x, t, c). One step: ε − v(ε, 1, c). */
  decode(c: Tensor, eps: Tensor, steps = 1): Tensor {
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`PixelFlowDecoder.decode: steps must be a positive integer, got ${steps}`);
    const rows = eps.shape[0] * this.config.grid * this.config.grid;
    let x = eps;
    for (let i = 0; i < steps; i++) {
      const t = 1 - i / steps, dt = 1 / steps, xi = x;
      const step = (): Tensor => { const v = this.velocity(xi, new Float64Array(rows).fill(t), c); return sub(xi, dt === 1 ? v : mul(v, dt)); };
      // Without a tape each step's intermediates go back to the pool when it ends: kept to the end of
      // the decode, 50 steps of 100 images held 14.5 GB (scripts/uniflow-eval.ts --steps 50 was
      // killed for memory). With a tape they are the backward's inputs and must stay.
      x = isGradEnabled() ? step() : tidy(step);
    }
    return x;
  }
}

/** x_t = (1 − t)·x + t·ε with t per patch (B·g² values, rows row-major): images (B, C, H, W). */
export function noisePatches(x: Tensor, eps: Tensor, t: ArrayLike<number>, patchSize: number): Tensor {
  const [b, c, h] = x.shape, g = h / patchSize;
  if (t.length !== b * g * g) throw new Error(`noisePatches: ${t.length} times for ${b}·${g}² patches`);
  const tt = new Float32Array(b * c * h * h);
  for (let i = 0; i < b; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let xx = 0; xx < h; xx++) {
    tt[((i * c + ch) * h + y) * h + xx] = t[(i * g + Math.floor(y / patchSize)) * g + Math.floor(xx / patchSize)];
  }
  const tm = tensor(tt, x.shape, x.dtype);
  return add(sub(x, mul(x, tm)), mul(eps, tm));
}
