// DiT^DH: the diffusion transformer with a wide, shallow DDT head that RAE trains in its
// representation encoder's token space (Zheng et al., "Diffusion Transformers with Representation
// Autoencoders", arXiv 2510.11690 §4; official code github.com/bytetriper/RAE
// src/stage2/models/DDT.py (DiTwDDTHead, LightningDDTBlock, DDTFinalLayer) and
// src/stage2/models/model_utils.py; methods-b §5 "Stage 2"). In diffactor's time (t = 1 noise), which
// is RAE's: x_t = (1 − t)·x + t·ε, the model predicts ε − x.
//   tokens  x (B, C, g, g) → (B, N, C), patch 1 (N = g², C the latent's channels)
//   c       = SiLU(t_emb + y_emb) (B, 1, D);  t_emb = MLP([sin, cos](2π·t·W)), W ~ N(0, 1)^256 fixed
//   body    s = s_embedder(tokens) + sin-cos pos → L Lightning blocks (·, c), RoPE on the grid
//   s_tok   = SiLU(t_emb + s) (B, N, D) → s_projector: Linear D → W (W the head width)
//   head    h = x_embedder(tokens) (a Linear C → W re-embedding the NOISY input; no pos embed)
//           → head_depth Lightning blocks (·, s_tok) with per-token adaLN, RoPE → final(h, s_tok) → C
// A Lightning block (LightningDDTBlock with RAE's settings: RMSNorm, SwiGLU, RoPE, no q/k-norm,
// adaLN with shift): (β1, γ1, α1, β2, γ2, α2) = Linear(SiLU(cond)), x += α1 ⊙ Attn(RMSNorm(x)(1 + γ1) + β1),
// x += α2 ⊙ SwiGLU(RMSNorm(x)(1 + γ2) + β2). The block applies SiLU to a condition that is already
// SiLU'd, as the official code does. The attention has a qkv bias; the SwiGLU is w3(silu(a) ⊙ b),
// [a, b] = w12(x), both with biases, width ⌊2/3 · mlp_ratio·D⌋. The final layer: RMSNorm (with
// weight), modulated per token by Linear(SiLU(s_tok)), no gate, then Linear W → C.
// RoPE (EVA's VisionRotaryEmbeddingFast): head channel pair m < d/4 turns by row·θ^(−4m/d), pair
// d/4 + m by col·θ^(−4m/d) (θ = 10⁴, rows and columns 0..g−1). Init as initialize_weights: embedders
// xavier with zero bias, label table N(0, 0.02), t-MLP weights N(0, 0.02), every block's adaLN and the
// final layer's adaLN and linear zero; other Linears PyTorch's default.
// Width rule (methods-b §5 (e)): the head width must be ≥ the token dimension C (asserted here).
// Not here: the method, the time shift and the sampler (index.ts).
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, chunk, mul, permute, reshape, silu, unsqueeze } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { Sequential } from '../../nn/sequential.ts';
import { SiLU } from '../../nn/activation.ts';
import { RMSNorm } from '../../nn/rmsNorm.ts';
import { RopeAttention } from '../../nn/ropeAttention.ts';
import { normal, xavierUniform, zeros } from '../../nn/init.ts';
import { modulateTokens } from '../../models/ddtBlock.ts';
import { LabelEmbedder, sincosPosEmbed2d } from '../../models/embeddings.ts';
import { gridSize, parseSiTConfig, type SiTConfig } from '../../models/config.ts';
import type { SiTForwardOptions, SiTOutput } from '../../models/sit.ts';
import { sampleOde } from '../../diffusion/odeSampler.ts';
import type { Guidance } from '../../diffusion/guidance.ts';
import type { ModelFn } from '../../diffusion/types.ts';
import type { OwnSampleSettings } from '../method.ts';
import { autoGuided } from './autoguidance.ts';

/** The head's size (the spec's dit_dh section). */
export interface DiTDHHead {
  /** W, the head's width (RAE-XL: 2048). */
  width: number;
  /** Blocks in the head (RAE: 2). */
  depth: number;
  /** Heads of its attention (RAE: 16). */
  heads: number;
}

/** EVA's 2-D RoPE angles (g·g, d/2): pair m < d/4 by row·f_m, pair d/4 + m by col·f_m, f_m = θ^(−4m/d). */
export function evaRopeAngles(g: number, headDim: number, theta = 10000): Float64Array {
  if (headDim % 4 !== 0) throw new Error(`DiT^DH: RoPE needs a head dim divisible by 4, got ${headDim}`);
  const q = headDim / 4, half = headDim / 2, out = new Float64Array(g * g * half);
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      const o = (r * g + c) * half;
      for (let m = 0; m < q; m++) {
        const f = theta ** ((-4 * m) / headDim);
        out[o + m] = r * f;
        out[o + q + m] = c * f;
      }
    }
  }
  return out;
}

/** Gaussian Fourier time features: MLP([sin(2π t W), cos(2π t W)]), W (256) ~ N(0, 1), fixed (a buffer). */
export class GaussianFourierEmbedding extends Module {
  readonly W: Tensor;
  readonly mlp: Sequential;

  constructor(readonly hidden: number, rng: Rng, readonly size = 256) {
    super();
    this.W = this.buffer('W', [size], (v) => v.set(rng.child('W').normalArray(size)));
    const l0 = new Linear(2 * size, hidden, rng.child('mlp.0')), l2 = new Linear(hidden, hidden, rng.child('mlp.2'));
    this.mlp = this.child('mlp', new Sequential([l0, SiLU(), l2]));
  }

  /** t (B) → (B, hidden). */
  forward(t: ArrayLike<number>): Tensor {
    const B = t.length, n = this.size, f = new Float64Array(B * 2 * n), W = this.W.data;
    for (let b = 0; b < B; b++) {
      for (let k = 0; k < n; k++) {
        const a = t[b] * W[k] * 2 * Math.PI;
        f[b * 2 * n + k] = Math.sin(a);
        f[b * 2 * n + n + k] = Math.cos(a);
      }
    }
    return this.mlp.forward(tensor(Float32Array.from(f), [B, 2 * n], this.W.dtype));
  }
}

/** SwiGLUFFN of RAE: w3(silu(a) ⊙ b), [a, b] = w12(x), with biases. */
export class BiasedSwiGLU extends Module {
  readonly w12: Linear;
  readonly w3: Linear;
  constructor(dim: number, readonly width: number, rng: Rng) {
    super();
    this.w12 = this.child('w12', new Linear(dim, 2 * width, rng.child('w12')));
    this.w3 = this.child('w3', new Linear(width, dim, rng.child('w3')));
  }
  forward(x: Tensor): Tensor {
    const [a, b] = chunk(this.w12.forward(x), 2, -1);
    return this.w3.forward(mul(silu(a), b));
  }
}

/** LightningDDTBlock with RAE's settings; cond (B, 1, D) or (B, N, D) (per-token adaLN). */
export class LightningBlock extends Module {
  readonly norm1: RMSNorm;
  readonly attn: RopeAttention;
  readonly norm2: RMSNorm;
  readonly mlp: BiasedSwiGLU;
  readonly adaLN_modulation: Sequential;

  constructor(readonly hidden: number, heads: number, mlpRatio: number, rng: Rng) {
    super();
    this.norm1 = this.child('norm1', new RMSNorm(hidden, 1e-6));
    this.attn = this.child('attn', new RopeAttention(hidden, heads, rng.child('attn'), { qkvBias: true, qkNorm: false }));
    this.norm2 = this.child('norm2', new RMSNorm(hidden, 1e-6));
    this.mlp = this.child('mlp', new BiasedSwiGLU(hidden, Math.floor((2 / 3) * Math.floor(hidden * mlpRatio)), rng.child('mlp')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([SiLU(), new Linear(hidden, 6 * hidden, rng.child('adaLN_modulation.1'))]));
  }

  forward(x: Tensor, cond: Tensor, angles: Float64Array): Tensor {
    if (x.ndim !== 3 || cond.ndim !== 3 || cond.shape[2] !== this.hidden || (cond.shape[1] !== 1 && cond.shape[1] !== x.shape[1])) {
      throw new Error(`LightningBlock: expected x (B, N, ${this.hidden}) and a condition (B, 1|N, ${this.hidden}), got ${fmtShape(x.shape)}, ${fmtShape(cond.shape)}`);
    }
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = chunk(this.adaLN_modulation.forward(cond), 6, -1);
    x = add(x, mul(gateMsa, this.attn.forward(modulateTokens(this.norm1.forward(x), shiftMsa, scaleMsa), angles)));
    return add(x, mul(gateMlp, this.mlp.forward(modulateTokens(this.norm2.forward(x), shiftMlp, scaleMlp))));
  }
}

/** DDTFinalLayer with RMSNorm: Linear(RMSNorm(x)(1 + γ) + β), (β, γ) = Linear(SiLU(cond)). */
export class DiTDHFinalLayer extends Module {
  readonly norm_final: RMSNorm;
  readonly linear: Linear;
  readonly adaLN_modulation: Sequential;
  constructor(hidden: number, out: number, rng: Rng) {
    super();
    this.norm_final = this.child('norm_final', new RMSNorm(hidden, 1e-6));
    this.linear = this.child('linear', new Linear(hidden, out, rng.child('linear')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([SiLU(), new Linear(hidden, 2 * hidden, rng.child('adaLN_modulation.1'))]));
  }
  forward(x: Tensor, cond: Tensor): Tensor {
    const [shift, scale] = chunk(this.adaLN_modulation.forward(cond), 2, -1);
    return this.linear.forward(modulateTokens(this.norm_final.forward(x), shift, scale));
  }
}

/**
 * The head alone as a function of the noisy tokens and s_tok: x_embedder → blocks(·, s_proj) →
 * final(·, s_proj), s_proj = s_projector(s_tok). What the head's gradcheck and invariant (f) probe.
 */
export class DiTDHHeadNet extends Module {
  readonly x_embedder: Linear;
  readonly s_projector: Linear;
  readonly blocks: ModuleList<LightningBlock>;
  readonly final_layer: DiTDHFinalLayer;
  readonly angles: Float64Array;

  constructor(readonly tokenDim: number, readonly bodyWidth: number, readonly head: DiTDHHead, mlpRatio: number, grid: number, rng: Rng) {
    super();
    const W = head.width;
    if (!(Number.isInteger(W) && W >= tokenDim)) throw new Error(`dit_dh.head_width ${W} is below the token dimension ${tokenDim}: RAE's width rule needs head width ≥ token channels (a narrower DiT cannot fit even one image)`);
    if (W % head.heads !== 0) throw new Error(`dit_dh.head_heads ${head.heads} does not divide dit_dh.head_width ${W}`);
    this.x_embedder = this.child('x_embedder', new Linear(tokenDim, W, rng.child('x_embedder')));
    this.s_projector = this.child('s_projector', new Linear(bodyWidth, W, rng.child('s_projector')));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: head.depth }, (_, i) => new LightningBlock(W, head.heads, mlpRatio, rng.child(`blocks.${i}`)))));
    this.final_layer = this.child('final_layer', new DiTDHFinalLayer(W, tokenDim, rng.child('final_layer')));
    this.angles = evaRopeAngles(grid, W / head.heads);
  }

  /** xTokens (B, N, C) the noisy input, sTok (B, N, D) → (B, N, C). */
  forward(xTokens: Tensor, sTok: Tensor): Tensor {
    const s = this.s_projector.forward(sTok);
    let h = this.x_embedder.forward(xTokens);
    for (const b of this.blocks.items) h = b.forward(h, s, this.angles);
    return this.final_layer.forward(h, s);
  }
}

export class DiTDH extends Module {
  readonly config: SiTConfig;
  readonly s_embedder: Linear;
  readonly t_embedder: GaussianFourierEmbedding;
  readonly y_embedder: LabelEmbedder;
  readonly blocks: ModuleList<LightningBlock>;
  readonly head: DiTDHHeadNet;
  readonly pos_embed: Tensor;
  readonly angles: Float64Array;
  /** The shift s = √(m / m_base) of training times and the sampling grid (set by the method). */
  shift = 1;
  /** AutoGuidance's weak model and scale (set by the method; null: none). */
  weak: DiTDH | null = null;
  guidanceScale = 1;

  constructor(config: SiTConfig, head: DiTDHHead, rng: Rng) {
    super();
    const c = (this.config = parseSiTConfig(config));
    if (c.patchSize !== 1) throw new Error(`DiT^DH embeds each latent token by itself: model.patch_size must be 1, got ${c.patchSize}`);
    if (c.learnSigma) throw new Error('DiT^DH predicts a velocity: model.learn_sigma must be false');
    if (!(c.classDropoutProb > 0)) throw new Error('DiT^DH keeps a null class for guidance: model.class_dropout_prob must be > 0');
    const D = c.hiddenSize, C = c.inChannels, g = gridSize(c);
    if (D % c.numHeads !== 0 || (D / c.numHeads) % 4 !== 0) throw new Error(`DiT^DH: model.hidden_size ${D} / model.num_heads ${c.numHeads} must be a whole head dim divisible by 4 (2-D RoPE)`);
    this.s_embedder = this.child('s_embedder', new Linear(C, D, rng.child('s_embedder')));
    this.t_embedder = this.child('t_embedder', new GaussianFourierEmbedding(D, rng.child('t_embedder')));
    this.y_embedder = this.child('y_embedder', new LabelEmbedder(c.numClasses, D, c.classDropoutProb, rng.child('y_embedder')));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.depth }, (_, i) => new LightningBlock(D, c.numHeads, c.mlpRatio, rng.child(`blocks.${i}`)))));
    this.head = this.child('head', new DiTDHHeadNet(C, D, head, c.mlpRatio, g, rng.child('head')));
    const pe = sincosPosEmbed2d(D, g);
    this.pos_embed = this.buffer('pos_embed', [1, g * g, D], (v) => v.set(pe));
    this.angles = evaRopeAngles(g, D / c.numHeads);
    this.initializeWeights(rng.child('init'));
  }

  private initializeWeights(rng: Rng): void {
    for (const l of [this.s_embedder, this.head.x_embedder]) { xavierUniform(l.weight, rng.child('embed')); zeros(l.bias!); }
    normal(this.y_embedder.embedding_table.weight, rng.child('y'), 0.02);
    for (const i of [0, 2]) normal(this.t_embedder.mlp.at<Linear>(i).weight, rng.child(`t.${i}`), 0.02);
    for (const b of [...this.blocks.items, ...this.head.blocks.items]) { const l = b.adaLN_modulation.at<Linear>(1); zeros(l.weight); zeros(l.bias!); }
    const f = this.head.final_layer;
    for (const l of [f.adaLN_modulation.at<Linear>(1), f.linear]) { zeros(l.weight); zeros(l.bias!); }
  }

  /** (B, C, g, g) → (B, N, C). */
  tokens(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    return reshape(permute(reshape(x, [B, C, H * W]), [0, 2, 1]), [B, H * W, C]);
  }

  private check(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>): void {
    const c = this.config;
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`DiT^DH: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== x.shape[0] || y.length !== x.shape[0]) throw new Error(`DiT^DH: batch ${x.shape[0]} but ${t.length} times and ${y.length} labels`);
  }

  /** The body on x_t: s after `last` blocks (B, N, D) and t_emb (B, 1, D). */
  private body(tokens: Tensor, t: ArrayLike<number>, labels: Int32Array, last: number, taps: ReadonlySet<number>, hidden: Map<number, Tensor>): { s: Tensor; tEmb: Tensor } {
    const B = tokens.shape[0], D = this.config.hiddenSize;
    const tEmb = reshape(this.t_embedder.forward(t), [B, 1, D]);
    const c = silu(add(tEmb, unsqueeze(this.y_embedder.forward(labels), 1))); // (B, 1, D)
    let s = add(this.s_embedder.forward(tokens), this.pos_embed);
    for (let i = 0; i < last; i++) {
      s = this.blocks.items[i].forward(s, c, this.angles);
      if (taps.has(i + 1)) hidden.set(i + 1, s);
    }
    return { s, tEmb };
  }

  /**
   * x_t (B, C, g, g) at diffactor times t (B), labels y (dropped in training mode with opts.rng or
   * where opts.forceDrop says) → the velocity (B, C, g, g); hidden states of the body's blocks.
   */
  forward(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    this.check(x, t, y);
    const taps = new Set(opts.taps ?? []);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > this.config.depth) throw new Error(`DiT^DH: tap ${k} is not a body block in 1..${this.config.depth}`);
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const hidden = new Map<number, Tensor>();
    const tokens = this.tokens(x);
    const { s, tEmb } = this.body(tokens, t, labels, this.config.depth, taps, hidden);
    const sTok = silu(add(tEmb, s)); // (B, N, D)
    const o = this.head.forward(tokens, sTok); // (B, N, C)
    const [B, C, H, W] = x.shape;
    return { out: reshape(permute(o, [0, 2, 1]), [B, C, H, W]), hidden, labels };
  }

  /** OwnSampler: Euler and Heun on the shifted grid t_i = τ_s(1 − i/N). */
  ownsSampler(sampler: string): boolean {
    return sampler === 'euler' || sampler === 'heun';
  }

  /** The ODE from noise at t = 1 to 0 on the shifted grid, with CFG or AutoGuidance (index.ts, autoguidance.ts). */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const interval = [s.guidance_low, s.guidance_high] as const;
    const own: ModelFn = (x, t, yy) => this.forward(x, t.data, yy.data).out;
    let fn = own, guidance: Guidance | undefined;
    if (this.weak) {
      const weak = this.weak;
      fn = autoGuided(own, (x, t, yy) => weak.forward(x, t.data, yy.data).out, this.guidanceScale, interval);
    } else if (s.cfg > 1) {
      guidance = { scale: s.cfg, nullClass: this.config.numClasses, interval };
    }
    return sampleOde(fn, noise, y, { steps: s.steps, heun: s.sampler === 'heun', shift: this.shift, guidance, onStep });
  }

  /** The hidden state after body block `block` at time t, labels as given (PartialForward). */
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    this.check(x, t, labels);
    if (!Number.isInteger(block) || block < 1 || block > this.config.depth) throw new Error(`DiT^DH: block ${block} is not a body block in 1..${this.config.depth}`);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    return this.body(this.tokens(x), t, y, block, new Set(), new Map()).s;
  }
}

/** A fresh DiT^DH from a config, its head and a seed. */
export function createDiTDH(config: SiTConfig, head: DiTDHHead, seed: number): DiTDH {
  return new DiTDH(config, head, new Rng(seed).child('model'));
}
