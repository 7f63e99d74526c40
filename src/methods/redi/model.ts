// ReDi's joint model (Kouzelis et al., "Boosting Generative Image Modeling via Joint Image-Feature
// Synthesis", NeurIPS 2025, arXiv 2504.16064; github.com/zelaki/ReDi models.py): a SiT whose state
// is the image's C channels followed by r PCA channels of the frozen encoder's features, one
// PatchEmbed over all C + r channels (the paper's "merged tokens": W_x·x + W_z·z summed per token)
// and an output head of C + r channels. Weight for weight it is the SiT of config
// {inChannels: C + r} and the same Rng, so its state_dict keeps SiT's official names, plus the
// fitted feature statistics and PCA as buffers under `pca.` (fitted once on the training set,
// pca.ts; stored in every checkpoint, never trained).
//   forward(x)          x with C + r channels: the joint prediction (C + r channels);
//                       x with C channels: the feature channels are zeros (RG's "unconditional"
//                       input) and only the C image channels come back — how evaluation, the
//                       held-out loss and `predict` see it as an image model.
//   samplingVelocity    what the samplers integrate: representation guidance with `rgScale`
//                       (loss.ts), the plain prediction at rgScale 1;
//   guidedChannels      with `cfgImageOnly` (--cfg-vae), CFG guides the image channels only.
// Not here: the training step (index.ts), the losses (loss.ts).
import { Tensor, zeros } from '../../tensor/tensor.ts';
import { Rng } from '../../tensor/rng.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { add, concat, slice } from '../../autograd/ops/index.ts';
import { Module } from '../../nn/module.ts';
import { SiT, type SiTForwardOptions, type SiTOutput } from '../../models/sit.ts';
import type { SiTConfig } from '../../models/config.ts';
import type { FeaturePca } from './pca.ts';
import { representationGuidance } from './loss.ts';

/** The fitted statistics as buffers: feat_mean, feat_std, mean (d) and components (r, d), float32. */
export class RediPca extends Module {
  readonly feat_mean: Tensor;
  readonly feat_std: Tensor;
  readonly mean: Tensor;
  readonly components: Tensor;

  constructor(readonly dim: number, readonly rank: number) {
    super();
    if (!Number.isInteger(rank) || rank < 1 || rank > dim) throw new Error(`redi.rank must be in 1..${dim} (the encoder's width), got ${rank}`);
    this.feat_mean = this.buffer('feat_mean', [dim]);
    this.feat_std = this.buffer('feat_std', [dim], (d) => d.fill(1));
    this.mean = this.buffer('mean', [dim]);
    this.components = this.buffer('components', [rank, dim]);
  }

  /** Stores a fit's μ, σ, PCA mean and its top `rank` components. */
  set(p: FeaturePca): void {
    if (p.dim !== this.dim) throw new Error(`ReDi PCA: fitted on width ${p.dim}, the model expects ${this.dim}`);
    this.feat_mean.data.set(p.featMean);
    this.feat_std.data.set(p.featStd);
    this.mean.data.set(p.pcaMean);
    this.components.data.set(p.components.subarray(0, this.rank * this.dim));
  }

  /** Patch tokens (B, T, d) on a g×g grid → PCA channels (B, r, g, g); no gradient (features are frozen). */
  project(patch: Tensor): Tensor {
    const [b, t, d] = patch.shape;
    if (patch.ndim !== 3 || d !== this.dim) throw new Error(`ReDi: expected encoder tokens (B, T, ${this.dim}), got ${fmtShape(patch.shape)}`);
    const g = Math.round(Math.sqrt(t));
    if (g * g !== t) throw new Error(`ReDi: ${t} encoder tokens are not a square grid`);
    const r = this.rank, f = patch.data, mu = this.feat_mean.data, sd = this.feat_std.data, pm = this.mean.data, P = this.components.data;
    const out = zeros([b, r, g, g]);
    const c = new Float64Array(d);
    for (let i = 0; i < b; i++) {
      for (let n = 0; n < t; n++) {
        const o = (i * t + n) * d;
        for (let j = 0; j < d; j++) c[j] = (f[o + j] - mu[j]) / sd[j] - pm[j];
        for (let k = 0; k < r; k++) {
          let s = 0;
          for (let j = 0; j < d; j++) s += c[j] * P[k * d + j];
          out.data[(i * r + k) * t + n] = s; // (B, r, g, g): token n = row-major (gy, gx)
        }
      }
    }
    return out;
  }
}

export class RediSiT extends SiT {
  /** C: the image's channels (the first C of the state). */
  readonly imageChannels: number;
  readonly pca: RediPca;
  /** w_r of representation guidance at sampling; 1 = off. */
  rgScale = 1;
  /** CFG on the image channels only (ReDi's --cfg-vae): the feature channels keep the conditional prediction. */
  cfgImageOnly = false;

  /** `config` is the run's (image) config; the network sees C + rank channels. */
  constructor(config: SiTConfig, rank: number, encoderDim: number, rng: Rng) {
    if (config.learnSigma) throw new Error('ReDi trains a flow (velocity) model; model.learn_sigma must be false');
    super({ ...config, inChannels: config.inChannels + rank }, rng);
    this.imageChannels = config.inChannels;
    this.pca = this.child('pca', new RediPca(encoderDim, rank));
  }

  get rank(): number { return this.pca.rank; }

  /** SampledState: the channels CFG guides (undefined: all). */
  get guidedChannels(): number | undefined { return this.cfgImageOnly ? this.imageChannels : undefined; }

  /** x (B, C, H, W) → [x ; 0] (B, C + r, H, W). */
  withZeroFeatures(x: Tensor): Tensor {
    const [b, , h, w] = x.shape;
    return concat([x, zeros([b, this.rank, h, w], x.dtype)], 1);
  }

  /** RG's unconditional input: the image channels of x as they are, the feature channels 0. */
  featuresZeroed(x: Tensor): Tensor {
    return this.withZeroFeatures(slice(x, 1, 0, this.imageChannels));
  }

  private joint(x: Tensor): { x: Tensor; imageOnly: boolean } {
    if (x.ndim === 4 && x.shape[1] === this.imageChannels) return { x: this.withZeroFeatures(x), imageOnly: true };
    return { x, imageOnly: false };
  }

  forward(x: Tensor, t: Tensor | ArrayLike<number>, y: Tensor | ArrayLike<number>, opts: SiTForwardOptions = {}): SiTOutput {
    const j = this.joint(x);
    const o = super.forward(j.x, t, y, opts);
    return j.imageOnly ? { ...o, out: slice(o.out, 1, 0, this.imageChannels) } : o;
  }

  /** The hidden state after `block` (labels as given), on a C- or (C + r)-channel input. */
  hiddenAfter(x: Tensor, tIn: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    const xj = this.joint(x).x;
    if (!Number.isInteger(block) || block < 1 || block > this.config.depth) throw new Error(`RediSiT: block ${block} is not in 1..${this.config.depth}`);
    const y = this.y_embedder.dropLabels(labels, { training: false });
    let h = add(this.x_embedder.forward(xj), this.pos_embed); // (B, T, D)
    const cond = add(this.t_embedder.forward(tIn), this.y_embedder.forward(y)); // (B, D)
    for (let i = 0; i < block; i++) h = this.blocks.items[i].forward(h, cond); // (B, T, D)
    return h;
  }

  /** The velocity the samplers integrate on the joint state: RG with rgScale (1: the prediction itself). */
  samplingVelocity(x: Tensor, t: Tensor, y: Tensor): Tensor {
    const vc = this.forward(x, t, y).out; // (B, C + r, H, W)
    if (this.rgScale === 1) return vc;
    return representationGuidance(vc, this.forward(this.featuresZeroed(x), t, y).out, this.rgScale);
  }
}

/** A fresh ReDi SiT from the run's config, r, the encoder width and a seed (createSiT's stream). */
export function createRediSiT(config: SiTConfig, rank: number, encoderDim: number, seed: number): RediSiT {
  return new RediSiT(config, rank, encoderDim, new Rng(seed).child('model'));
}
