// DDT's decoupled transformer (Wang et al., "DDT: Decoupled Diffusion Transformer", arXiv
// 2504.05741; official MCG-NJU/DDT src/models/denoiser/decoupled_improved_dit.py, class DDT):
// L = config.depth DDT blocks (models/ddtBlock.ts) split into a condition encoder (blocks 0..E−1)
// and a velocity decoder (blocks E..L−1), each with its own patch embedder:
//   tokens = unfold(x) (c, py, px order);  c = SiLU(t_emb + y_emb) (B, 1, D)
//   encoder: s = s_embedder(tokens) → blocks[0..E−1](·, c);  z = SiLU(t_emb + s)  (B, T, D) the state
//   decoder: h = x_embedder(tokens) → blocks[E..L−1](·, z) (per-token adaLN);  final_layer(h, z) → fold
// No absolute position embedding: 2-D RoPE in every attention (rope2dAngles, positions in [0, 16]).
// Timestep features with max_period 10; label table (K + 1) rows with the null class K, N(0, 0.02);
// embedders xavier, t-MLP weights N(0, 0.02), final adaLN and linear zero; block Linears keep
// torch's default init (the official one). The decoder reads t and y only through z.
//
// TIME CONVENTION. The official model (and forwardDDT here) takes DDT time τ: τ = 0 noise, τ = 1
// data, x_τ = τ·x + (1 − τ)·ε, and predicts x − ε. diffactor's time is t = 1 − τ (t = 1 noise,
// target ε − x). forward(x, t, y) — what the engines, samplers and evaluator call — converts at the
// boundary: τ = 1 − t and out = −(model's prediction). Weights therefore mean what the official
// ones mean.
// Not here: the method (index.ts), the sampler with encoder sharing (sampler.ts).
import { Tensor } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, mul, permute, reshape, silu, unsqueeze } from '../../autograd/index.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { xavierUniform, zeros, uniform } from '../../nn/init.ts';
import { rope2dAngles } from '../../autograd/ops/rope.ts';
import { gridSize, parseSiTConfig, type SiTConfig } from '../../models/config.ts';
import { LabelEmbedder, TimestepEmbedder } from '../../models/embeddings.ts';
import { DDTBlock, DDTFinalLayer } from '../../models/ddtBlock.ts';
import type { SiTForwardOptions, SiTOutput } from '../../models/sit.ts';
import type { OwnSampleSettings } from '../method.ts';
import { DDT_SAMPLING_DEFAULTS, recomputeSteps, sampleDdt, type DdtSampling } from './sampler.ts';

/** DDT's `Embed`: a Linear on each unfolded patch (norm = Identity in the official configs). */
class PatchLinear extends Module {
  readonly proj: Linear;
  constructor(inFeatures: number, hidden: number, rng: Rng) {
    super();
    this.proj = this.child('proj', new Linear(inFeatures, hidden, rng.child('proj')));
  }
  forward(x: Tensor): Tensor { return this.proj.forward(x); }
}

/** Throws (naming the field) unless 1 ≤ E ≤ depth − 1. */
export function checkEncoderBlocks(e: number, depth: number, field = 'ddt.encoder_blocks'): void {
  if (!Number.isInteger(e) || e < 1 || e > depth - 1) throw new Error(`${field} is ${e}: expected an integer in 1..${depth - 1} (model.depth ${depth}; the decoder needs at least one block)`);
}

export interface DDTOutput extends SiTOutput {
  /** The encoder's state z (B, T, D) the decoder read (given or computed). */
  state: Tensor;
}

export interface DDTForwardOptions extends SiTForwardOptions {
  /** A state z from an earlier call to reuse (encoder sharing): the encoder is not run. */
  state?: Tensor | null;
}

export class DDT extends Module {
  readonly config: SiTConfig;
  readonly encoderBlocks: number;
  readonly x_embedder: PatchLinear;
  readonly s_embedder: PatchLinear;
  readonly t_embedder: TimestepEmbedder;
  readonly y_embedder: LabelEmbedder;
  readonly final_layer: DDTFinalLayer;
  readonly blocks: ModuleList<DDTBlock>;
  /** RoPE angles (T, headDim/2) of the token grid. */
  readonly angles: Float64Array;
  /** Its Euler sampler's settings (the ddt section's sampling fields; the official ones by default). */
  sampling: DdtSampling = { ...DDT_SAMPLING_DEFAULTS };
  /** The last schedule solved, by settings and weights (the DP's template run is not repeated per batch). */
  private scheduleCache: { key: string; steps: number[] } | null = null;
  /** Encoder evaluations per image of the last drawOwn (= steps without sharing). */
  lastEncoderCalls = 0;

  constructor(config: SiTConfig, encoderBlocks: number, rng: Rng) {
    super();
    const c = (this.config = parseSiTConfig(config));
    if (c.family !== 'SiT') throw new Error(`DDT: a flow model (model.family SiT), got ${c.family}`);
    if (c.learnSigma) throw new Error('DDT predicts a velocity: model.learn_sigma must be false');
    if (c.timeScale !== 1) throw new Error(`DDT reads the raw flow time: model.time_scale must be 1, got ${c.timeScale}`);
    checkEncoderBlocks(encoderBlocks, c.depth);
    if ((c.hiddenSize / c.numHeads) % 4 !== 0) throw new Error(`DDT's 2-D RoPE needs a head dim (hidden_size / num_heads = ${c.hiddenSize / c.numHeads}) divisible by 4`);
    this.encoderBlocks = encoderBlocks;
    const d = c.hiddenSize, p = c.patchSize, cp = c.inChannels * p * p;
    this.x_embedder = this.child('x_embedder', new PatchLinear(cp, d, rng.child('x_embedder')));
    this.s_embedder = this.child('s_embedder', new PatchLinear(cp, d, rng.child('s_embedder')));
    this.t_embedder = this.child('t_embedder', new TimestepEmbedder(d, rng.child('t_embedder'), 256, 1, 10));
    if (!(c.classDropoutProb > 0)) throw new Error('DDT keeps a null class for guidance (its table has num_classes + 1 rows): model.class_dropout_prob must be > 0');
    this.y_embedder = this.child('y_embedder', new LabelEmbedder(c.numClasses, d, c.classDropoutProb, rng.child('y_embedder')));
    this.final_layer = this.child('final_layer', new DDTFinalLayer(d, cp, rng.child('final_layer')));
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: c.depth }, (_, i) => new DDTBlock(d, c.numHeads, c.mlpRatio, rng.child(`blocks.${i}`)))));
    const g = gridSize(c);
    this.angles = rope2dAngles(g, g, d / c.numHeads);
    this.initializeWeights(rng.child('init'));
  }

  /** The official initialize_weights; the t-MLP biases keep torch's default U(±1/√in) as there. */
  private initializeWeights(rng: Rng): void {
    for (const e of [this.x_embedder, this.s_embedder]) { xavierUniform(e.proj.weight, rng.child('embed')); zeros(e.proj.bias!); }
    const mlp = this.t_embedder.mlp;
    [0, 2].forEach((i) => { const l = mlp.at<Linear>(i); uniform(l.bias!, rng.child(`t_bias.${i}`), -1 / Math.sqrt(l.inFeatures), 1 / Math.sqrt(l.inFeatures)); });
    for (const l of [this.final_layer.adaLN_modulation.at<Linear>(0), this.final_layer.linear]) { zeros(l.weight); zeros(l.bias!); }
  }

  /** unfold: (B, C, H, W) -> (B, T, C·p·p), each token in (c, py, px) order, tokens row-major. */
  patchify(x: Tensor): Tensor {
    const c = this.config, p = c.patchSize, g = gridSize(c), b = x.shape[0];
    return reshape(permute(reshape(x, [b, c.inChannels, g, p, g, p]), [0, 2, 4, 1, 3, 5]), [b, g * g, c.inChannels * p * p]);
  }

  /** fold: (B, T, C·p·p) in (c, py, px) order -> (B, C, H, W). */
  unpatchify(x: Tensor): Tensor {
    const c = this.config, p = c.patchSize, g = gridSize(c), b = x.shape[0];
    return reshape(permute(reshape(x, [b, g, g, c.inChannels, p, p]), [0, 3, 1, 4, 2, 5]), [b, c.inChannels, g * p, g * p]);
  }

  private check(x: Tensor, t: ArrayLike<number>, y: ArrayLike<number>, taps: Iterable<number>): void {
    const c = this.config, b = x.shape[0];
    if (x.ndim !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.inputSize || x.shape[3] !== c.inputSize) {
      throw new Error(`DDT: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(x.shape)}`);
    }
    if (t.length !== b || y.length !== b) throw new Error(`DDT: batch ${b} but ${t.length} timesteps and ${y.length} labels`);
    for (const k of taps) if (!Number.isInteger(k) || k < 1 || k > c.depth) throw new Error(`DDT: tap ${k} is not a block index in 1..${c.depth}`);
  }

  /** The encoder's blocks 1..last (≤ E) on x_τ's tokens: s after block `last` (B, T, D). */
  private encode(tokens: Tensor, tEmb: Tensor, labels: Int32Array, last: number, taps: ReadonlySet<number>, hidden: Map<number, Tensor>): Tensor {
    const c = silu(add(tEmb, unsqueeze(this.y_embedder.forward(labels), 1))); // (B, 1, D)
    let s = this.s_embedder.forward(tokens); // (B, T, D)
    for (let i = 0; i < last; i++) {
      s = this.blocks.items[i].forward(s, c, this.angles);
      if (taps.has(i + 1)) hidden.set(i + 1, s);
    }
    return s;
  }

  /**
   * The official forward in DDT time: x (B, C, H, W) = x_τ, tau (B) with τ = 0 noise, y (B) labels
   * (dropped in training mode with opts.rng, or where opts.forceDrop says). With opts.state the
   * encoder is skipped and that state is used (its t is the one it was computed at: DDT's stale t).
   * Returns the prediction of x − ε, the tapped hidden states (encoder taps only when it ran), the
   * labels and the state.
   */
  forwardDDT(x: Tensor, tauIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: DDTForwardOptions = {}): DDTOutput {
    const tau = tauIn instanceof Tensor ? tauIn.data : tauIn, y = yIn instanceof Tensor ? yIn.data : yIn;
    const taps = new Set(opts.taps ?? []);
    this.check(x, tau, y, taps);
    const b = x.shape[0], d = this.config.hiddenSize;
    const labels = this.y_embedder.dropLabels(y, { training: this.training, rng: opts.rng, forceDrop: opts.forceDrop });
    const tokens = this.patchify(x); // (B, T, C·p·p)
    const hidden = new Map<number, Tensor>();
    let state = opts.state ?? null;
    if (state) {
      if (state.ndim !== 3 || state.shape[0] !== b || state.shape[2] !== d || state.shape[1] !== tokens.shape[1]) {
        throw new Error(`DDT: a reused state must be (${b}, ${tokens.shape[1]}, ${d}), got ${fmtShape(state.shape)}`);
      }
    } else {
      const tEmb = reshape(this.t_embedder.forward(tau), [b, 1, d]); // (B, 1, D)
      state = silu(add(tEmb, this.encode(tokens, tEmb, labels, this.encoderBlocks, taps, hidden))); // z (B, T, D)
    }
    let h = this.x_embedder.forward(tokens); // (B, T, D)
    for (let i = this.encoderBlocks; i < this.config.depth; i++) {
      h = this.blocks.items[i].forward(h, state, this.angles);
      if (taps.has(i + 1)) hidden.set(i + 1, h);
    }
    const out = this.unpatchify(this.final_layer.forward(h, state)); // (B, C, H, W)
    return { out, hidden, labels, state };
  }

  /**
   * diffactor's call (engines, samplers, evaluator): t (B) with t = 1 noise; returns the velocity
   * ε − x. τ = 1 − t, out = −forwardDDT(...).out.
   */
  forward(x: Tensor, tIn: Tensor | ArrayLike<number>, yIn: Tensor | ArrayLike<number>, opts: DDTForwardOptions = {}): DDTOutput {
    const o = this.forwardDDT(x, toDdtTime(tIn instanceof Tensor ? tIn.data : tIn), yIn, opts);
    return { ...o, out: mul(o.out, -1) };
  }

  /** DDT's own sampler serves sample.sampler euler (OwnSampler); the others run the generic samplers on forward(). */
  ownsSampler(sampler: string): boolean {
    if (sampler !== 'euler' && this.sampling.period > 1) throw new Error(`ddt.share_period ${this.sampling.period} shares the encoder in DDT's Euler sampler: the sampler must be euler, got ${sampler}`);
    return sampler === 'euler';
  }

  /** Euler in DDT time with the always-doubled CFG batch and the schedule of ddt.share_* (sampler.ts). */
  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    const key = JSON.stringify([s.steps, s.cfg, s.guidance_low, s.guidance_high, this.sampling]) + (this.sampling.schedule === 'dp' && this.sampling.period > 1 ? `|${this.weightsFingerprint()}` : '');
    if (this.scheduleCache?.key !== key) this.scheduleCache = { key, steps: recomputeSteps(this, s, this.sampling) };
    const run = sampleDdt(this, noise, y.data, s, this.sampling, new Set(this.scheduleCache.steps), { onStep });
    this.lastEncoderCalls = run.encoderCalls;
    return run.x;
  }

  /** The schedule drawOwn uses for these settings (steps that recompute the state). */
  recomputeSchedule(s: OwnSampleSettings): number[] {
    return recomputeSteps(this, s, this.sampling);
  }

  /** A position-weighted sum of every parameter: changes when the weights do (the DP cache's key). */
  private weightsFingerprint(): string {
    let a = 0, b = 0;
    for (const [, p] of this.namedParameters()) {
      const d = p.data;
      for (let i = 0; i < d.length; i++) { a += d[i] * ((i % 7) + 1); b += d[i] * ((i % 11) + 3); }
    }
    return `${a}:${b}`;
  }

  /** The hidden state after `block` at diffactor time t, labels as given (PartialForward). */
  hiddenAfter(x: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    this.check(x, t, labels, [block]);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    const tau = toDdtTime(t), b = x.shape[0], d = this.config.hiddenSize;
    const tokens = this.patchify(x);
    const tEmb = reshape(this.t_embedder.forward(tau), [b, 1, d]);
    const hidden = new Map<number, Tensor>();
    if (block <= this.encoderBlocks) return this.encode(tokens, tEmb, y, block, new Set(), hidden);
    return this.forwardDDT(x, tau, y, { taps: [block], forceDrop: new Array<boolean>(b).fill(false) }).hidden.get(block)!; // labels as given, in train mode too
  }
}

/** τ = 1 − t: diffactor time (t = 1 noise) ↔ DDT time (τ = 0 noise); its own inverse. */
export function toDdtTime(t: ArrayLike<number>): Float64Array {
  return Float64Array.from(t, (v) => 1 - v);
}

/** A fresh DDT from a config, its encoder depth and a seed. */
export function createDDT(config: SiTConfig, encoderBlocks: number, seed: number): DDT {
  return new DDT(config, encoderBlocks, new Rng(seed).child('model'));
}
