// SoftREPA's caption-conditioned SiT and its soft tokens (Lee et al., "Aligning Text to Image in
// Diffusion Models is Easier Than You Think", arXiv 2503.08250; official code
// github.com/softrepa/SoftREPA, `transformer.py`). The paper's base is SD3's MM-DiT: a text stream
// and an image stream in joint attention, the caption reaching the image only through attention.
// Small-scale version (ours, as methods-b.md §4 "Small scale" allows): SiT's blocks run over the
// joined sequence [soft ; text ; image], one set of weights for all tokens (MM-DiT has one per
// stream), conditioned by adaLN on the time only (no label embedding, no pooled text: the caption
// is the only class signal):
//   txt  = context_embedder(text_encoder(ids))                          (B, L, D)
//   img  = x_embedder(x) + pos_embed                                     (B, N, D)
//   block k (1-based): seq = [soft_k ; txt ; img] if k ≤ n_layers else [txt ; img]
//                      seq = block(seq, t_embedder(t)); the soft part is dropped, txt and img kept
//   out  = unpatchify(final_layer(img, c))                              (B, C, H, W)
// Soft tokens (SD3 branch of transformer.py): `dc_tokens` (n_layers, n_tok, d_text), N(0, 0.02),
// in the text encoder's space, passed through the same frozen context_embedder; block k's tokens
// replace block k−1's (stripped after each block, so the text stream stays L long and soft tokens
// never accumulate), and blocks after n_layers see none. SD3's optional t-dependent table
// (`dc_t_tokens`) is left out: the released sampler does not load it (methods-b.md §4).
// SiT's modules keep their official names and are built by a SiT of the same Rng (as U-REPA's
// model); its y_embedder is not kept. Label ↔ caption: labels index the class names; the null
// class (numClasses) is the null caption; label dropout (stage 1) drops to it.
// Not here: the captions (captions.ts), the contrastive loss (loss.ts), which stage trains (index.ts).
import { Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, concat, expand, permute, reshape, slice } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { xavierUniform, zeros } from '../../nn/init.ts';
import type { PatchEmbed } from '../../nn/patchEmbed.ts';
import { gridSize, outChannels, type SiTConfig } from '../../models/config.ts';
import type { TimestepEmbedder } from '../../models/embeddings.ts';
import { SiT, type FinalLayer, type SiTBlock, type SiTForwardOptions, type SiTOutput } from '../../models/sit.ts';
import { FrozenTextEncoder } from './textEncoder.ts';
import { CaptionVocab } from './captions.ts';

export interface SoftTokenShape {
  /** Blocks 1..layers get soft tokens (SD3: the first 5 joint blocks). */
  layers: number;
  /** Tokens per block (SD3: 4). */
  tokens: number;
}

export interface CaptionSiTOptions {
  vocab: CaptionVocab;
  /** Width of the text encoder's space (d_text; T5's 4096 in SD3). */
  textDim: number;
  /** Soft tokens, or null for the stage-1 model that has none. */
  soft: SoftTokenShape | null;
}

export interface CaptionForwardOptions extends SiTForwardOptions {
  /** (B·L) caption ids per sample (captions.ts); default: each label's first-template caption. */
  captions?: Int32Array;
}

export class CaptionSiT extends Module {
  readonly config: SiTConfig;
  readonly vocab: CaptionVocab;
  readonly soft: SoftTokenShape | null;
  readonly x_embedder: PatchEmbed;
  readonly t_embedder: TimestepEmbedder;
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<SiTBlock>;
  readonly final_layer: FinalLayer;
  readonly text_encoder: FrozenTextEncoder;
  /** Linear(d_text → D): SD3's context_embedder. */
  readonly context_embedder: Linear;
  /** (n_layers, n_tok, d_text) soft tokens; null in stage 1. */
  readonly dc_tokens: Tensor | null;

  constructor(config: SiTConfig, o: CaptionSiTOptions, rng: Rng) {
    super();
    const base = new SiT(config, rng);
    const c = (this.config = base.config);
    if (c.learnSigma) throw new Error('CaptionSiT: SoftREPA trains a flow (velocity) model; learn_sigma must be false');
    if (o.vocab.classNames.length !== c.numClasses) {
      throw new Error(`softrepa.class_names has ${o.vocab.classNames.length} names but the data has ${c.numClasses} classes`);
    }
    if (o.soft && !(o.soft.layers >= 1 && o.soft.layers <= c.depth)) throw new Error(`softrepa.soft_layers must be in 1..${c.depth} (model.depth), got ${o.soft.layers}`);
    if (o.soft && !(o.soft.tokens >= 1)) throw new Error(`softrepa.soft_tokens must be ≥ 1, got ${o.soft.tokens}`);
    this.vocab = o.vocab;
    this.soft = o.soft ? { ...o.soft } : null;
    const d = c.hiddenSize;
    this.x_embedder = this.child('x_embedder', base.x_embedder);
    this.t_embedder = this.child('t_embedder', base.t_embedder);
    this.pos_embed = this.buffer('pos_embed', base.pos_embed.shape, (data) => data.set(base.pos_embed.data));
    this.blocks = this.child('blocks', base.blocks);
    this.final_layer = this.child('final_layer', base.final_layer);
    this.text_encoder = this.child('text_encoder', new FrozenTextEncoder(o.vocab.size, o.vocab.maxTokens, o.textDim, rng.child('text_encoder')));
    this.context_embedder = this.child('context_embedder', new Linear(o.textDim, d, rng.child('context_embedder')));
    xavierUniform(this.context_embedder.weight, rng.child('init.context_embedder'));
    zeros(this.context_embedder.bias!);
    this.dc_tokens = o.soft ? this.param('dc_tokens', [o.soft.layers, o.soft.tokens, o.textDim], (data) => data.set(rng.child('dc_tokens').normalArray(data.length, 0, 0.02))) : null;
  }

  /** Stage 2: every parameter but the soft tokens stops taking gradients (requiresGrad off). */
  freezeBase(): this {
    if (!this.dc_tokens) throw new Error('CaptionSiT.freezeBase: this model has no soft tokens to train');
    for (const [, p] of this.namedParameters()) p.requireGrad(p === this.dc_tokens);
    return this;
  }

  /** (B, T, p*p*C) with tokens read as (py, px, c) -> (B, C, H, W), as SiT.unpatchify. */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize, g = gridSize(this.config), ch = outChannels(this.config);
    const b = x.shape[0];
    return reshape(permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]);
  }

  /** Labels after dropout: u < p drops (training, with rng), or forceDrop; dropped → numClasses. */
  dropLabels(y: ArrayLike<number>, opts: SiTForwardOptions): Int32Array {
    const n = this.config.numClasses, p = this.config.classDropoutProb, out = Int32Array.from(y);
    for (let i = 0; i < out.length; i++) {
      if (!Number.isInteger(y[i]) || y[i] < 0 || y[i] > n) throw new Error(`CaptionSiT: label ${y[i]} at ${i} is not in [0, ${n}]`);
    }
    let drop: ArrayLike<number | boolean> | null = null;
    if (opts.forceDrop) {
      if (opts.forceDrop.length !== out.length) throw new Error(`CaptionSiT: forceDrop has ${opts.forceDrop.length} entries for ${out.length} labels`);
      drop = opts.forceDrop;
    } else if (this.training && opts.rng && p > 0) {
      drop = Array.from(opts.rng.uniformArray(out.length), (u) => u < p);
    }
    if (drop) for (let i = 0; i < out.length; i++) if (drop[i]) out[i] = n;
    return out;
  }

  /** Soft tokens of block k (1-based) in the SiT width, (1, n_tok, D), or null when block k has none. */
  softTokens(k: number): Tensor | null {
    if (!this.dc_tokens || k > this.soft!.layers) return null;
    return this.context_embedder.forward(slice(this.dc_tokens, 0, k - 1, k)); // (1, n_tok, D)
  }

  /** Embedded caption tokens (B, L, D) for labels after dropout and optional caption ids. */
  text(labels: Int32Array, captions?: Int32Array): Tensor {
    const L = this.vocab.maxTokens;
    let ids: Int32Array;
    if (captions) {
      if (captions.length !== labels.length * L) throw new Error(`CaptionSiT: ${captions.length} caption ids for ${labels.length} samples of ${L} tokens`);
      ids = Int32Array.from(captions);
      const nul = this.vocab.batch([this.config.numClasses]);
      for (let i = 0; i < labels.length; i++) if (labels[i] === this.config.numClasses) ids.set(nul, i * L);
    } else {
      ids = this.vocab.batch(labels);
    }
    return this.context_embedder.forward(this.text_encoder.forward(ids)); // (B, L, D)
  }

  /** Blocks 1..last; returns the image tokens after block `last`, tapped image tokens into `hidden`. */
  private run(img: Tensor, txt: Tensor, cond: Tensor, last: number, taps: ReadonlySet<number>, hidden: Map<number, Tensor>): Tensor {
    const b = img.shape[0], L = txt.shape[1], D = this.config.hiddenSize;
    for (let k = 1; k <= last; k++) {
      const s = this.softTokens(k);
      const parts = s ? [expand(s, [b, s.shape[1], D]), txt, img] : [txt, img];
      const out = this.blocks.items[k - 1].forward(concat(parts, 1), cond); // (B, S + L + N, D)
      const off = s ? s.shape[1] : 0;
      txt = slice(out, 1, off, off + L); // (B, L, D): the soft tokens are stripped
      img = slice(out, 1, off + L); // (B, N, D)
      if (taps.has(k)) hidden.set(k, img);
    }
    return img;
  }

  private check(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, taps: Iterable<number>): void {
    const c = this.config, b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`CaptionSiT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== b || y.length !== b) throw new Error(`CaptionSiT: batch ${b} but ${t.length} timesteps and ${y.length} labels`);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`CaptionSiT: tap ${k} is not a block index in 1..${c.depth}`);
  }

  /**
   * As SiT.forward: x (B, C, H, W); t (B) flow time (t = 0 data); y (B) labels (numClasses = the
   * null caption). The caption is opts.captions or each label's first-template caption. Hidden
   * states are the image tokens (B, N, D) after each tapped block.
   */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: CaptionForwardOptions = {}): SiTOutput {
    const t = tIn instanceof Tensor ? tIn.data : tIn, y = yIn instanceof Tensor ? yIn.data : yIn;
    const taps = new Set(opts.taps ?? []);
    this.check(x, t, y, taps);
    const labels = this.dropLabels(y, opts);
    const cond = this.t_embedder.forward(t); // (B, D)
    const hidden = new Map<number, Tensor>();
    const img = this.run(add(this.x_embedder.forward(x), this.pos_embed), this.text(labels, opts.captions), cond, this.config.depth, taps, hidden);
    return { out: this.unpatchify(this.final_layer.forward(img, cond)), hidden, labels }; // (B, C, H, W)
  }

  /** PartialForward: image tokens after `block` (labels as given, first-template captions). */
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    this.check(x, t, labels, [block]);
    const y = this.dropLabels(labels, {});
    return this.run(add(this.x_embedder.forward(x), this.pos_embed), this.text(y), this.t_embedder.forward(t), block, new Set(), new Map());
  }
}

export function createCaptionSiT(config: SiTConfig, o: CaptionSiTOptions, seed: number): CaptionSiT {
  return new CaptionSiT(config, o, new Rng(seed).child('model'));
}
