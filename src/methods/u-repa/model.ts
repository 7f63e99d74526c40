// U-REPA's U-shaped SiT, "SiT↓" (Tian et al., "U-REPA: Aligning Diffusion U-Nets to ViTs",
// NeurIPS 2025, arXiv 2503.18414): a SiT whose middle blocks run on a 2× downsampled token grid,
// upsampled back with long skips. The paper states: tokens downsampled in the middle, the hidden
// width NOT doubled, no downsampled attention (unlike U-DiT), the code derived from REPA's SiT.
// The official code (github.com/YuchuanTian/U-REPA) could not be read here, so the layout below
// is OUR reconstruction:
//   stage 1   `stage` SiT blocks on the g×g grid; the output of each is kept as a skip
//   down      2×2 average pooling of the tokens (parameter-free; tokens.ts)      g×g → g/2×g/2
//   middle    `mid` SiT blocks on the (g/2)×(g/2) grid (the stage U-REPA aligns)
//   up        nearest ×2 (parameter-free)                                        g/2×g/2 → g×g
//   stage 2   `stage` SiT blocks; before block j, skips.j = Linear(2D → D) fuses [h ; skip] with
//             the stage-1 outputs taken in reverse (U-ViT's long skips: last in, first out)
// Blocks are numbered 1..depth in that order (depth = 2·stage + mid), so `blocks.N.*`, the
// embedders, pos_embed and final_layer keep SiT's official names and values: every module but the
// skips is built by a SiT of the same Rng (weight for weight the SiT of that seed); the skips are
// xavier-uniform with zero bias, as REPA's initialize_weights treats every nn.Linear. Hidden states
// after block k are (B, T_k, D) with T_k = g² outside the middle and (g/2)² inside. Not here: the
// alignment (loss.ts), the method (index.ts).
import { Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, concat, permute, reshape } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { xavierUniform, zeros } from '../../nn/init.ts';
import type { PatchEmbed } from '../../nn/patchEmbed.ts';
import { gridSize, outChannels, type SiTConfig } from '../../models/config.ts';
import type { LabelEmbedder, TimestepEmbedder } from '../../models/embeddings.ts';
import { SiT, type FinalLayer, type SiTBlock, type SiTForwardOptions, type SiTOutput } from '../../models/sit.ts';
import { tokenDown, tokenUp } from './tokens.ts';

/** How the depth splits: `stage` blocks on each side of `mid` downsampled blocks. */
export interface UShape { stage: number; mid: number }

/** Throws (naming the fields) unless depth = 2·stage + mid with stage, mid ≥ 1 and an even token grid. */
export function checkUShape(config: SiTConfig, u: UShape, field = 'u_repa'): void {
  if (!Number.isInteger(u.stage) || u.stage < 1) throw new Error(`${field}.stage_blocks must be a positive integer, got ${u.stage}`);
  if (!Number.isInteger(u.mid) || u.mid < 1) throw new Error(`${field}.mid_blocks must be a positive integer, got ${u.mid}`);
  if (2 * u.stage + u.mid !== config.depth) {
    throw new Error(`model.depth is ${config.depth} but the U-shaped SiT needs 2·${field}.stage_blocks + ${field}.mid_blocks = ${2 * u.stage + u.mid} blocks`);
  }
  const g = gridSize(config);
  if (g % 2 !== 0) throw new Error(`the U-shaped SiT halves the token grid but it is ${g}×${g} (data.size / model.patch_size must be even)`);
}

export class USiT extends Module {
  readonly config: SiTConfig;
  readonly shape: UShape;
  readonly x_embedder: PatchEmbed;
  readonly t_embedder: TimestepEmbedder;
  readonly y_embedder: LabelEmbedder;
  /** (1, g², D) SiT's 2-D sin-cos table at the full grid; a buffer, never trained. */
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<SiTBlock>;
  /** Stage-2 skip fusions, Linear(2D → D), one per stage-2 block. */
  readonly skips: ModuleList<Linear>;
  readonly final_layer: FinalLayer;

  constructor(config: SiTConfig, shape: UShape, rng: Rng) {
    super();
    const base = new SiT(config, rng);
    const c = (this.config = base.config);
    if (c.learnSigma) throw new Error('USiT: U-REPA trains a flow (velocity) model; learn_sigma must be false');
    checkUShape(c, shape);
    this.shape = { ...shape };
    const d = c.hiddenSize;
    this.x_embedder = this.child('x_embedder', base.x_embedder);
    this.t_embedder = this.child('t_embedder', base.t_embedder);
    this.y_embedder = this.child('y_embedder', base.y_embedder);
    this.pos_embed = this.buffer('pos_embed', base.pos_embed.shape, (data) => data.set(base.pos_embed.data));
    this.blocks = this.child('blocks', base.blocks);
    this.skips = this.child('skips', new ModuleList(Array.from({ length: shape.stage }, (_, j) => {
      const l = new Linear(2 * d, d, rng.child(`skips.${j}`));
      xavierUniform(l.weight, rng.child(`init.skips.${j}`));
      zeros(l.bias!);
      return l;
    })));
    this.final_layer = this.child('final_layer', base.final_layer);
  }

  /** 1-based blocks of the middle (downsampled) stage. */
  middleBlocks(): [number, number] {
    return [this.shape.stage + 1, this.shape.stage + this.shape.mid];
  }

  /** (B, T, p*p*C) with tokens read as (py, px, c) -> (B, C, H, W), as SiT.unpatchify. */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize, g = gridSize(this.config), ch = outChannels(this.config);
    const b = x.shape[0];
    return reshape(permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]);
  }

  /**
   * The blocks 1..last on embedded tokens h (B, g², D) with conditioning cond (B, D); the hidden
   * state after each tapped block; h after block `last` (at its stage's grid).
   */
  private run(h: Tensor, cond: Tensor, last: number, taps: ReadonlySet<number>, hidden: Map<number, Tensor>): Tensor {
    const { stage, mid } = this.shape;
    const skips: Tensor[] = [];
    for (let k = 1; k <= last; k++) {
      if (k === stage + 1) h = tokenDown(h); // (B, g²/4, D)
      if (k === stage + mid + 1) h = tokenUp(h, 'nearest'); // (B, g², D)
      if (k > stage + mid) h = this.skips.items[k - stage - mid - 1].forward(concat([h, skips.pop()!], -1)); // (B, g², 2D) -> (B, g², D)
      h = this.blocks.items[k - 1].forward(h, cond); // (B, T_k, D)
      if (k <= stage) skips.push(h);
      if (taps.has(k)) hidden.set(k, h);
    }
    return h;
  }

  private check(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, taps: Iterable<number>): void {
    const c = this.config, b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`USiT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== b || y.length !== b) throw new Error(`USiT: batch ${b} but ${t.length} timesteps and ${y.length} labels`);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`USiT: tap ${k} is not a block index in 1..${c.depth}`);
  }

  /**
   * As SiT.forward: x (B, C, H, W); t (B) flow time in [0, 1] (t = 0 data, as REPA); y (B) labels
   * (numClasses = null). Label dropout in training mode (opts.rng) or where opts.forceDrop says.
   */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    const t = tIn instanceof Tensor ? tIn.data : tIn, y = yIn instanceof Tensor ? yIn.data : yIn;
    const taps = new Set(opts.taps ?? []);
    this.check(x, t, y, taps);
    const h0 = add(this.x_embedder.forward(x), this.pos_embed); // (B, g², D)
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const cond = add(this.t_embedder.forward(t), this.y_embedder.forward(labels)); // (B, D)
    const hidden = new Map<number, Tensor>();
    const h = this.run(h0, cond, this.config.depth, taps, hidden); // (B, g², D)
    return { out: this.unpatchify(this.final_layer.forward(h, cond)), hidden, labels };
  }

  /**
   * The hidden state after `block` (1-based) with labels as given (no dropout): the blocks after it
   * and the final layer are not run. What the evaluator's probe and a teacher query read.
   */
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    this.check(x, t, labels, [block]);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    const h0 = add(this.x_embedder.forward(x), this.pos_embed);
    const cond = add(this.t_embedder.forward(t), this.y_embedder.forward(y));
    return this.run(h0, cond, block, new Set(), new Map());
  }
}

/** A fresh U-shaped SiT from a config, its split and a seed (shared modules = createSiT's). */
export function createUSiT(config: SiTConfig, shape: UShape, seed: number): USiT {
  return new USiT(config, shape, new Rng(seed).child('model'));
}
