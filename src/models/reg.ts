// REG's SiT (github.com/Martinser/REG models/sit.py): the SiT of sit.ts plus one extra input token,
// the noisy class token of the frozen encoder, "entangled" with the patch tokens. Names follow
// Martinser/REG models/sit.py: `cls_projectors2` Linear(d_enc → D) and `wg_norm` LayerNorm(D,
// affine, eps 1e-6) embed g_t into token 0; `pos_embed` is (1, 1+T, D) with row 0 zero (the class
// token gets no position code); `final_layer.linear_cls` Linear(D → d_enc), zero-initialised,
// reads the class-token velocity from token 0 after the shared final adaLN and LayerNorm; patch
// tokens 1.. go through `final_layer.linear` and unpatchify as usual. Every other module is built
// by a SiT from the same Rng (so it is the SiT of that seed, weight for weight); the REPA projector
// lives outside (models/projector.ts) and sees all 1+T tokens. Not here: the losses (methods/reg/loss.ts),
// the sampler (methods/reg/sampler.ts).
import { Tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { fmtShape } from '../tensor/shape.ts';
import { add, chunk, concat, permute, reshape, slice } from '../autograd/index.ts';
import { Module, ModuleList } from '../nn/module.ts';
import { Linear } from '../nn/linear.ts';
import { LayerNorm } from '../nn/layerNorm.ts';
import { PatchEmbed } from '../nn/patchEmbed.ts';
import { Sequential } from '../nn/sequential.ts';
import { modulate } from '../autograd/ops/modulate.ts';
import { xavierUniform, zeros } from '../nn/init.ts';
import { gridSize, numTokens, outChannels, type SiTConfig } from './config.ts';
import { LabelEmbedder, TimestepEmbedder, sincosPosEmbed2d } from './embeddings.ts';
import { SiT, type FinalLayer, type SiTBlock, type SiTForwardOptions } from './sit.ts';

/** SiT's final layer with REG's `linear_cls` beside `linear` (children adopted from a FinalLayer). */
export class RegFinalLayer extends Module {
  readonly norm_final: LayerNorm;
  readonly linear: Linear;
  readonly linear_cls: Linear;
  readonly adaLN_modulation: Sequential;

  constructor(base: FinalLayer, hidden: number, clsDim: number, rng: Rng) {
    super();
    this.norm_final = this.child('norm_final', base.norm_final);
    this.linear = this.child('linear', base.linear);
    this.linear_cls = this.child('linear_cls', new Linear(hidden, clsDim, rng));
    this.adaLN_modulation = this.child('adaLN_modulation', base.adaLN_modulation);
    zeros(this.linear_cls.weight);
    zeros(this.linear_cls.bias!);
  }

  /** x (B, 1+T, D), c (B, D) -> patch outputs (B, T, p*p*C_out) and class velocity (B, d_enc). */
  forward(x: Tensor, c: Tensor): { patches: Tensor; cls: Tensor } {
    const [shift, scale] = chunk(this.adaLN_modulation.forward(c), 2, -1); // 2 x (B, D)
    const h = modulate(this.norm_final.forward(x), shift, scale); // (B, 1+T, D)
    const b = x.shape[0];
    return {
      patches: this.linear.forward(slice(h, 1, 1)), // (B, T, p*p*C_out)
      cls: reshape(this.linear_cls.forward(slice(h, 1, 0, 1)), [b, this.linear_cls.outFeatures]), // (B, d_enc)
    };
  }
}

export interface RegForwardOptions extends SiTForwardOptions {
  /** The noisy class token g_t (B, d_enc). */
  cls: Tensor;
}

export interface RegOutput {
  /** (B, C, H, W) image velocity. */
  out: Tensor;
  /** (B, d_enc) class-token velocity. */
  cls: Tensor;
  /** Block index (1-based) -> hidden state (B, 1+T, D), class token first. */
  hidden: Map<number, Tensor>;
  /** Labels after dropout (numClasses = null). */
  labels: Int32Array;
}

export class RegSiT extends Module {
  readonly config: SiTConfig;
  /** Width of the encoder's class token d_enc. */
  readonly clsDim: number;
  readonly x_embedder: PatchEmbed;
  readonly t_embedder: TimestepEmbedder;
  readonly y_embedder: LabelEmbedder;
  readonly cls_projectors2: Linear;
  readonly wg_norm: LayerNorm;
  /** (1, 1+T, D): row 0 zero, rows 1.. the SiT's 2-D sin-cos table. */
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<SiTBlock>;
  readonly final_layer: RegFinalLayer;

  constructor(config: SiTConfig, clsDim: number, rng: Rng) {
    super();
    if (!Number.isInteger(clsDim) || clsDim < 1) throw new Error(`RegSiT: class-token width must be a positive integer, got ${clsDim}`);
    const base = new SiT(config, rng);
    const c = (this.config = base.config);
    if (c.learnSigma) throw new Error('RegSiT: REG is a flow (velocity) model; learnSigma must be false');
    const d = c.hiddenSize;
    this.clsDim = clsDim;
    this.x_embedder = this.child('x_embedder', base.x_embedder);
    this.t_embedder = this.child('t_embedder', base.t_embedder);
    this.y_embedder = this.child('y_embedder', base.y_embedder);
    this.cls_projectors2 = this.child('cls_projectors2', new Linear(clsDim, d, rng.child('cls_projectors2')));
    xavierUniform(this.cls_projectors2.weight, rng.child('init.cls_projectors2'));
    zeros(this.cls_projectors2.bias!);
    this.wg_norm = this.child('wg_norm', new LayerNorm(d, { eps: 1e-6, elementwiseAffine: true }));
    this.pos_embed = this.buffer('pos_embed', [1, 1 + numTokens(c), d], (data) => data.set(sincosPosEmbed2d(d, gridSize(c)), d));
    this.blocks = this.child('blocks', base.blocks);
    this.final_layer = this.child('final_layer', new RegFinalLayer(base.final_layer, d, clsDim, rng.child('final_layer.linear_cls')));
  }

  /** (B, T, p*p*C) with tokens read as (py, px, c) -> (B, C, H, W), as SiT.unpatchify. */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize, g = gridSize(this.config), ch = outChannels(this.config);
    const b = x.shape[0];
    return reshape(permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]);
  }

  /**
   * x (B, C, H, W); t (B) flow time; y (B) labels (numClasses = null); opts.cls the noisy class
   * token (B, d_enc) at the same t. Label dropout as SiT (training mode with opts.rng, or forceDrop).
   */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: RegForwardOptions): RegOutput {
    const c = this.config;
    const t = tIn instanceof Tensor ? tIn.data : tIn, y = yIn instanceof Tensor ? yIn.data : yIn;
    const b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`RegSiT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    const g = opts.cls;
    if (!g || g.ndim !== 2 || g.shape[0] !== b || g.shape[1] !== this.clsDim) {
      throw new Error(`RegSiT: expected the class token cls (${b}, ${this.clsDim}), got ${g ? fmtShape(g.shape) : 'none'}`);
    }
    if (t.length !== b || y.length !== b) throw new Error(`RegSiT: batch ${b} but ${t.length} timesteps and ${y.length} labels`);
    const taps = new Set(opts.taps ?? []);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`RegSiT: tap ${k} is not a block index in 1..${c.depth}`);

    const e = reshape(this.wg_norm.forward(this.cls_projectors2.forward(g)), [b, 1, c.hiddenSize]); // (B, 1, D)
    let h = add(concat([e, this.x_embedder.forward(x)], 1), this.pos_embed); // (B, 1+T, D)
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const cond = add(this.t_embedder.forward(t), this.y_embedder.forward(labels)); // (B, D)
    const hidden = new Map<number, Tensor>();
    this.blocks.items.forEach((block, i) => {
      h = block.forward(h, cond); // (B, 1+T, D)
      if (taps.has(i + 1)) hidden.set(i + 1, h);
    });
    const { patches, cls } = this.final_layer.forward(h, cond);
    return { out: this.unpatchify(patches), cls, hidden, labels };
  }
}

/** A fresh REG model from a config, the class-token width and a seed (shared weights = createSiT's). */
export function createRegSiT(config: SiTConfig, clsDim: number, seed: number): RegSiT {
  return new RegSiT(config, clsDim, new Rng(seed).child('model'));
}
