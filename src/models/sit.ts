// SiT / DiT: the class-conditional diffusion transformer with adaLN-Zero blocks, laid out exactly
// as facebookresearch/DiT models.py and sihyun-yu/REPA models/sit.py so that state_dict names and
// values move both ways (x_embedder.proj.*, t_embedder.mlp.{0,2}.*, y_embedder.embedding_table.*,
// pos_embed, blocks.N.{attn.qkv,attn.proj,mlp.fc1,mlp.fc2,adaLN_modulation.1}.*,
// final_layer.{adaLN_modulation.1,linear}.*). forward also returns the hidden states after
// requested blocks (REPA/SRA tap them). Not here: projectors (projector.ts), losses, samplers,
// REG's extra token. Option qkNorm (not in the config: checkpoints of the plain SiT are unchanged):
// every block's attention normalises q and k per head (nn/attention.ts; SVG's DiT, models_SVG.py).
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { add, chunk, gatedResidual, layerNormModulate, permute, reshape } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { LayerNorm } from '../nn/layerNorm.ts';
import { Attention } from '../nn/attention.ts';
import { Mlp } from '../nn/mlp.ts';
import { PatchEmbed } from '../nn/patchEmbed.ts';
import { Sequential } from '../nn/sequential.ts';
import { SiLU } from '../nn/activation.ts';
import { xavierUniform, zeros } from '../nn/init.ts';
import { parseSiTConfig, gridSize, numTokens, outChannels, type SiTConfig } from './config.ts';
import { LabelEmbedder, TimestepEmbedder, sincosPosEmbed2d, type LabelDropOptions } from './embeddings.ts';

//################################################################################
//                                 Core blocks                                   #
//################################################################################

/** adaLN-Zero block: x + a1 * Attn(LN(x)(1+g1)+b1), then x + a2 * MLP(LN(x)(1+g2)+b2). */
export class SiTBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly adaLN_modulation: Sequential;

  constructor(hidden: number, heads: number, mlpRatio: number, rng: Rng, opts: SiTOptions = {}) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(hidden, { elementwiseAffine: false, eps: 1e-6 }));
    this.attn = this.child('attn', new Attention(hidden, heads, rng.child('attn'), { qkvBias: true, qkNorm: opts.qkNorm ?? false }));
    this.norm2 = this.child('norm2', new LayerNorm(hidden, { elementwiseAffine: false, eps: 1e-6 }));
    this.mlp = this.child('mlp', new Mlp(hidden, hidden * mlpRatio, rng.child('mlp'), { act: 'gelu_tanh' }));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([SiLU(), new Linear(hidden, 6 * hidden, rng.child('adaLN_modulation.1'))]));
  }

  /**
   * x (B, T, D), c (B, D) -> (B, T, D). norm + modulate and the gated residual run as the fused
   * ops layerNormModulate / gatedResidual (equal to LN(x)(1+g)+b and x + a * f(...)).
   */
  forward(x: Tensor, c: Tensor): Tensor {
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = chunk(this.adaLN_modulation.forward(c), 6, -1); // 6 x (B, D)
    x = gatedResidual(x, gateMsa, this.attn.forward(layerNormModulate(x, shiftMsa, scaleMsa, this.norm1.eps))); // (B, T, D)
    return gatedResidual(x, gateMlp, this.mlp.forward(layerNormModulate(x, shiftMlp, scaleMlp, this.norm2.eps))); // (B, T, D)
  }
}

/** Final layer: Linear(LN(x)(1+g)+b) -> (B, T, p*p*C_out), each token read as (py, px, c). */
export class FinalLayer extends Module {
  readonly norm_final: LayerNorm;
  readonly linear: Linear;
  readonly adaLN_modulation: Sequential;

  constructor(hidden: number, patch: number, outCh: number, rng: Rng) {
    super();
    this.norm_final = this.child('norm_final', new LayerNorm(hidden, { elementwiseAffine: false, eps: 1e-6 }));
    this.linear = this.child('linear', new Linear(hidden, patch * patch * outCh, rng.child('linear')));
    this.adaLN_modulation = this.child('adaLN_modulation', new Sequential([SiLU(), new Linear(hidden, 2 * hidden, rng.child('adaLN_modulation.1'))]));
  }

  /** x (B, T, D), c (B, D) -> (B, T, p*p*C_out). */
  forward(x: Tensor, c: Tensor): Tensor {
    const [shift, scale] = chunk(this.adaLN_modulation.forward(c), 2, -1); // 2 x (B, D)
    return this.linear.forward(layerNormModulate(x, shift, scale, this.norm_final.eps));
  }
}

//################################################################################
//                                 The model                                     #
//################################################################################

/** Architecture options outside the config (SVG's DiT: q/k-norm). */
export interface SiTOptions { qkNorm?: boolean }

export interface SiTForwardOptions extends Partial<Omit<LabelDropOptions, 'training'>> {
  /** 1-based block indices whose outputs to return (block k's output is the input of block k+1). */
  taps?: readonly number[];
}

export interface SiTOutput {
  /** (B, C_out, H, W): velocity (SiT) or [noise ; variance interpolation] (DiT, learnSigma). */
  out: Tensor;
  /** Block index (1-based) -> hidden state after that block, (B, T, D), in the graph. */
  hidden: Map<number, Tensor>;
  /** The labels the model used after dropout (numClasses = null). SRA feeds them to its teacher. */
  labels: Int32Array;
}

export class SiT extends Module {
  readonly config: SiTConfig;
  readonly x_embedder: PatchEmbed;
  readonly t_embedder: TimestepEmbedder;
  readonly y_embedder: LabelEmbedder;
  /** Fixed 2-D sin-cos table (1, T, D); a state_dict entry, never trained. */
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<SiTBlock>;
  readonly final_layer: FinalLayer;

  /** Initial weights are a function of (config, rng's seed and stream) only. */
  constructor(config: SiTConfig, rng: Rng, opts: SiTOptions = {}) {
    super();
    const c = (this.config = parseSiTConfig(config));
    const d = c.hiddenSize;
    this.x_embedder = this.child('x_embedder', new PatchEmbed(c.inChannels, d, c.patchSize, rng.child('x_embedder')));
    this.t_embedder = this.child('t_embedder', new TimestepEmbedder(d, rng.child('t_embedder'), 256, c.timeScale));
    this.y_embedder = this.child('y_embedder', new LabelEmbedder(c.numClasses, d, c.classDropoutProb, rng.child('y_embedder')));
    this.pos_embed = this.buffer('pos_embed', [1, numTokens(c), d], (data) => data.set(sincosPosEmbed2d(d, gridSize(c))));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.depth }, (_, i) => new SiTBlock(d, c.numHeads, c.mlpRatio, rng.child(`blocks.${i}`), opts))));
    this.final_layer = this.child('final_layer', new FinalLayer(d, c.patchSize, outChannels(c), rng.child('final_layer')));
    this.initializeWeights(rng.child('init'));
  }

  /**
   * initialize_weights of the official code: every Linear xavier-uniform with zero bias; the patch
   * conv xavier-uniform as if it were (D, C*p*p); label table and t-MLP weights N(0, 0.02) (done
   * by the embedders); adaLN Linears and the final Linear zero, so the output is exactly 0.
   */
  private initializeWeights(rng: Rng): void {
    for (const [name, m] of this.namedModules()) {
      if (!(m instanceof Linear) || name.startsWith('t_embedder.')) continue;
      xavierUniform(m.weight, rng.child(name));
      if (m.bias) zeros(m.bias);
    }
    const w = this.x_embedder.proj.weight;
    xavierUniform(w, rng.child('x_embedder.proj'), 1, [w.shape[0], w.size / w.shape[0]]);
    zeros(this.x_embedder.proj.bias!);
    const zeroed = [...this.blocks.items.map((b) => b.adaLN_modulation.at<Linear>(-1)), this.final_layer.adaLN_modulation.at<Linear>(-1), this.final_layer.linear];
    for (const l of zeroed) { zeros(l.weight); zeros(l.bias!); }
  }

  /** (B, T, p*p*C) with tokens read as (py, px, c) -> (B, C, H, W) (einsum nhwpqc->nchpwq). */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize, g = gridSize(this.config), ch = outChannels(this.config);
    const b = x.shape[0];
    const y = permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]); // (B, C, h, p, w, p)
    return reshape(y, [b, ch, g * p, g * p]);
  }

  /**
   * x (B, C, H, W); t (B), a tensor or numbers: flow time in [0, 1] for SiT, the DDPM step for
   * DiT (see config.timeScale); y (B) integer labels (numClasses = null). Label dropout applies in training mode (needs
   * opts.rng) or wherever opts.forceDrop says.
   */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    const c = this.config;
    const t = tIn instanceof Tensor ? tIn.data : tIn, y = yIn instanceof Tensor ? yIn.data : yIn;
    const b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`SiT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== b || y.length !== b) throw new Error(`SiT: batch ${b} but ${t.length} timesteps and ${y.length} labels`);
    const taps = new Set(opts.taps ?? []);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`SiT: tap ${k} is not a block index in 1..${c.depth}`);

    let h = add(this.x_embedder.forward(x), this.pos_embed); // (B, T, D)
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const cond = add(this.t_embedder.forward(t), this.y_embedder.forward(labels)); // (B, D)
    const hidden = new Map<number, Tensor>();
    this.blocks.items.forEach((block, i) => {
      h = block.forward(h, cond); // (B, T, D)
      if (taps.has(i + 1)) hidden.set(i + 1, h);
    });
    const out = this.unpatchify(this.final_layer.forward(h, cond)); // (B, C_out, H, W)
    return { out, hidden, labels };
  }
}

/** A fresh model from a config and a seed. */
export function createSiT(config: SiTConfig, seed: number): SiT {
  return new SiT(config, new Rng(seed).child('model'));
}
