// DeepFlow's SiT (Shin et al., "Deeply Supervised Flow-Based Generative Models", ICCV 2025, arXiv
// 2503.14494; official models/deepflow.py of github.com/ByteDance-Seed/DeepFlow, class DeepFlow):
// the SiT trunk cut after blocks `cuts` (1-based, df_idxs) into K = cuts.length + 1 branches.
// Branch k runs under the condition c_k = temb(t_k) + yemb; at the end of branch k < K
//   v_k = final_layer.0(h, c_k)            one intermediate velocity head shared by every cut
//   a_f, h' = df_blocks.k(h, P, dt_embedder(t_{k+1} − t_k))    the VeRA block (vera.ts)
//   a_k = final_acc_layer(a_f, c_k)        one acceleration head shared by every cut
//   h ← h', c ← c_{k+1}
// and v_K = final_layer.1(h, c_K). P = patch tokens + pos_embed of the input x_{t_1}. Names and
// initialisation are the official ones; every module a SiT has (embedders, pos_embed, blocks and
// the last head as final_layer.1) is built by a SiT of the same Rng, so with no cut (K = 1) this
// IS that SiT, weight for weight. dt_embedder, final_layer.0, final_acc_layer and df_blocks exist
// only when K > 1 (the official model builds them anyway; unused they would carry no gradient).
// Hidden state after block k: what block k + 1 reads, i.e. h' after a cut (where the official
// SSL projectors read). forward(x, t, y) runs every branch at the same t (Δ = 0) and returns v_K:
// the official sampler's call, so sampling and evaluation see a plain velocity model.
// Not here: the times (loss.ts), the losses (loss.ts), the method (index.ts).
import { Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, permute, reshape } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { zeros } from '../../nn/init.ts';
import type { PatchEmbed } from '../../nn/patchEmbed.ts';
import { gridSize, outChannels, type SiTConfig } from '../../models/config.ts';
import { TimestepEmbedder, type LabelEmbedder } from '../../models/embeddings.ts';
import { FinalLayer, SiT, type SiTBlock, type SiTForwardOptions, type SiTOutput } from '../../models/sit.ts';
import { VeraBlock } from './vera.ts';

/** The cut points and the VeRA sizes. */
export interface DeepFlowShape {
  /** 1-based blocks after which a branch ends (strictly increasing, each in 1..depth − 1). */
  cuts: readonly number[];
  /** ACC_MLP hidden width Pm (official projector_dim 2048). */
  accHidden: number;
  /** Clamp the time-gap modulation's scale to [−5, 5] (official legacy_scaling, default true). */
  legacyScaling: boolean;
}

/** Throws (naming the field) unless the cuts are strictly increasing block indices in 1..depth − 1. */
export function checkCuts(cuts: readonly number[], depth: number, field = 'deepflow.branch_blocks'): void {
  cuts.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || k > depth - 1) throw new Error(`${field}[${i}] is ${k}: expected a block index in 1..${depth - 1} (model.depth ${depth}; a branch needs blocks after it)`);
    if (i > 0 && k <= cuts[i - 1]) throw new Error(`${field} must be strictly increasing, got [${cuts.join(', ')}]`);
  });
}

/** The two velocity heads: `0` shared by the intermediate branches (only when K > 1), `1` the last. */
class VelocityHeads extends Module {
  readonly inter: FinalLayer | null;
  readonly last: FinalLayer;
  constructor(inter: FinalLayer | null, last: FinalLayer) {
    super();
    this.inter = inter ? this.child('0', inter) : null;
    this.last = this.child('1', last);
  }
}

export interface DeepFlowOutput {
  /** K × (B, C, H, W): v_1 .. v_K (v_K is the model's prediction). */
  velocities: Tensor[];
  /** (K − 1) × (B, C, H, W): a_1 .. a_{K−1}. */
  accelerations: Tensor[];
  hidden: Map<number, Tensor>;
  labels: Int32Array;
}

export class DeepFlowSiT extends Module {
  readonly config: SiTConfig;
  readonly shape: DeepFlowShape;
  readonly x_embedder: PatchEmbed;
  readonly t_embedder: TimestepEmbedder;
  readonly y_embedder: LabelEmbedder;
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<SiTBlock>;
  readonly final_layer: VelocityHeads;
  readonly dt_embedder: TimestepEmbedder | null;
  readonly df_blocks: ModuleList<VeraBlock> | null;
  readonly final_acc_layer: FinalLayer | null;

  constructor(config: SiTConfig, shape: DeepFlowShape, rng: Rng) {
    super();
    const base = new SiT(config, rng);
    const c = (this.config = base.config);
    if (c.learnSigma) throw new Error('DeepFlowSiT: DeepFlow trains a flow (velocity) model; model.learn_sigma must be false');
    if (c.family !== 'SiT') throw new Error(`DeepFlowSiT: DeepFlow is built on SiT, got model.family ${c.family}`);
    checkCuts(shape.cuts, c.depth);
    if (!Number.isInteger(shape.accHidden) || shape.accHidden < 1) throw new Error(`deepflow.acc_hidden must be a positive integer, got ${shape.accHidden}`);
    this.shape = { ...shape, cuts: [...shape.cuts] };
    const d = c.hiddenSize, K = shape.cuts.length + 1;
    this.x_embedder = this.child('x_embedder', base.x_embedder);
    this.t_embedder = this.child('t_embedder', base.t_embedder);
    this.y_embedder = this.child('y_embedder', base.y_embedder);
    this.pos_embed = this.buffer('pos_embed', base.pos_embed.shape, (data) => data.set(base.pos_embed.data));
    this.blocks = this.child('blocks', base.blocks);
    const r = rng.child('deepflow');
    const zeroHead = (name: string): FinalLayer => {
      const f = new FinalLayer(d, c.patchSize, outChannels(c), r.child(name));
      for (const l of [f.adaLN_modulation.at<Linear>(-1), f.linear]) { zeros(l.weight); zeros(l.bias!); }
      return f;
    };
    this.final_layer = this.child('final_layer', new VelocityHeads(K > 1 ? zeroHead('final_layer.0') : null, base.final_layer));
    this.dt_embedder = K > 1 ? this.child('dt_embedder', new TimestepEmbedder(2 * d, r.child('dt_embedder'), 256, c.timeScale)) : null;
    this.df_blocks = K > 1
      ? this.child('df_blocks', new ModuleList(shape.cuts.map((_, j) => new VeraBlock(d, shape.accHidden, c.numHeads, shape.legacyScaling, r.child(`df_blocks.${j}`)))))
      : null;
    this.final_acc_layer = K > 1 ? this.child('final_acc_layer', zeroHead('final_acc_layer')) : null;
  }

  /** Number of branches K. */
  get branches(): number {
    return this.shape.cuts.length + 1;
  }

  /** (B, T, p*p*C) with tokens read as (py, px, c) -> (B, C, H, W), as SiT.unpatchify. */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize, g = gridSize(this.config), ch = outChannels(this.config);
    const b = x.shape[0];
    return reshape(permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]);
  }

  private check(x: Tensor, times: readonly ArrayLike<number>[], y: ArrayLike<number>, taps: Iterable<number>): void {
    const c = this.config, b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`DeepFlowSiT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (times.length !== this.branches) throw new Error(`DeepFlowSiT: ${this.branches} branches need ${this.branches} time arrays, got ${times.length}`);
    for (const t of times) if (t.length !== b) throw new Error(`DeepFlowSiT: batch ${b} but a time array of ${t.length}`);
    if (y.length !== b) throw new Error(`DeepFlowSiT: batch ${b} but ${y.length} labels`);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`DeepFlowSiT: tap ${k} is not a block index in 1..${c.depth}`);
  }

  /**
   * Blocks 1..last under the branch times; velocities and accelerations of the branches that end
   * on the way (heads only when `heads`), the hidden state after each tapped block, h after `last`.
   */
  private run(x: Tensor, times: readonly ArrayLike<number>[], labels: Int32Array, last: number, taps: ReadonlySet<number>, heads: boolean): DeepFlowOutput & { h: Tensor } {
    const spatial = add(this.x_embedder.forward(x), this.pos_embed); // (B, T, D): P, kept for every VeRA
    const yEmb = this.y_embedder.forward(labels); // (B, D)
    let cond = add(this.t_embedder.forward(times[0]), yEmb); // (B, D): c_1
    let h = spatial;
    const velocities: Tensor[] = [], accelerations: Tensor[] = [], hidden = new Map<number, Tensor>();
    for (let k = 1; k <= last; k++) {
      h = this.blocks.items[k - 1].forward(h, cond); // (B, T, D)
      const j = this.shape.cuts.indexOf(k);
      if (j >= 0) {
        if (heads) velocities.push(this.unpatchify(this.final_layer.inter!.forward(h, cond))); // v_j (B, C, H, W)
        const gap = Float64Array.from(times[j + 1], (t, i) => t - times[j][i]); // Δ_j = t_{j+1} − t_j (signed)
        const v = this.df_blocks!.items[j].forward(h, spatial, this.dt_embedder!.forward(gap));
        if (heads) accelerations.push(this.unpatchify(this.final_acc_layer!.forward(v.acc, cond))); // a_j (B, C, H, W)
        h = v.out; // (B, T, D): h'
        cond = add(this.t_embedder.forward(times[j + 1]), yEmb); // c_{j+1}
      }
      if (taps.has(k)) hidden.set(k, h);
    }
    if (heads && last === this.config.depth) velocities.push(this.unpatchify(this.final_layer.last.forward(h, cond))); // v_K
    return { velocities, accelerations, hidden, labels, h };
  }

  /**
   * Training forward: x (B, C, H, W) = x_{t_1}; times K arrays (B) (flow time, t = 0 data, as the
   * official code); y (B) labels, dropped in training mode (opts.rng) or where opts.forceDrop says.
   */
  forwardBranches(x: Tensor, times: readonly ArrayLike<number>[], yIn: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): DeepFlowOutput {
    const y = yIn instanceof Tensor ? yIn.data : yIn;
    const taps = new Set(opts.taps ?? []);
    this.check(x, times, y, taps);
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const { velocities, accelerations, hidden } = this.run(x, times, labels, this.config.depth, taps, true);
    return { velocities, accelerations, hidden, labels };
  }

  /** As SiT.forward: every branch at the same t (the official sampler's call); out = v_K. */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    const t = tIn instanceof Tensor ? tIn.data : tIn;
    const o = this.forwardBranches(x, Array.from({ length: this.branches }, () => t), yIn, opts);
    return { out: o.velocities[this.branches - 1], hidden: o.hidden, labels: o.labels };
  }

  /**
   * The hidden state after `block` with every branch at t and labels as given (no dropout); the
   * heads and later blocks are not run (PartialForward: the evaluator's probe, a teacher query).
   */
  hiddenAfter(x: Tensor, tIn: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    const times = Array.from({ length: this.branches }, () => tIn);
    this.check(x, times, labels, [block]);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    return this.run(x, times, y, block, new Set(), false).h;
  }
}

/** A fresh DeepFlow SiT from a config, its shape and a seed (the SiT modules = createSiT's of that seed). */
export function createDeepFlowSiT(config: SiTConfig, shape: DeepFlowShape, seed: number): DeepFlowSiT {
  return new DeepFlowSiT(config, shape, new Rng(seed).child('model'));
}
