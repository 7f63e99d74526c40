// EPG's networks (Wang et al., arXiv 2510.12586; official github.com/AMAP-ML/EPG: rcm/vit.py
// RCMViT and EPGViT, read through methods-b §7; written from that description, not the code):
//   EpgEncoder        ViT on [CLS, time, patches] + a learned position table: the input is
//                     preconditioned, x·c_in(σ) with c_in = 1/√(σ² + σ_data²); the time token is the
//                     sinusoidal embedding (width D) of 250·ln σ; pre-norm blocks (qkv without bias,
//                     GELU MLP); e = LayerNorm(tokens)[CLS]
//   EpgPretrainModel  stage 1: the encoder, a projector p = MLP(e) and the EMA target network (a
//                     copy of encoder + projector held as buffers, `target.*`, updated once per
//                     training step before the step's target is read: target ← d·target + (1 − d)·θ,
//                     which equals the official update after the previous optimiser step)
//   EpgModel          stage 2: the encoder (class embedding added to its CLS token) + a decoder of
//                     adaLN-Zero blocks conditioned on time token + class embedding, with U-ViT
//                     long skips (decoder block j reads encoder block L−j's output through
//                     concat → Linear → LayerNorm; block 0 = the embedded tokens), output
//                     LayerNorm → Linear → patches, zero-initialised with the adaLN: D = x0 prediction;
//                     stage 'consistency' sets `boundary`: D = c_skip·x + c_out·forward (consistency.ts)
// Ours: the projector is REPA's 3-Linear SiLU MLP (projector.ts) instead of the BN/ReLU one (a
// batch-statistics layer at batch 64 and two engines); the time token has no MLP (the sinusoid is
// the token, as §7 describes); the decoder's blocks are SiT's adaLN-Zero block.
import { noGrad } from '../../autograd/tape.ts';
import { add, concat, expand, mul, permute, reshape, slice } from '../../autograd/index.ts';
import { Rng } from '../../tensor/rng.ts';
import { tensor, type DType, type Tensor } from '../../tensor/tensor.ts';
import { fmtShape } from '../../tensor/shape.ts';
import { Module, ModuleList } from '../../nn/module.ts';
import { Linear } from '../../nn/linear.ts';
import { LayerNorm } from '../../nn/layerNorm.ts';
import { Attention } from '../../nn/attention.ts';
import { Mlp } from '../../nn/mlp.ts';
import { PatchEmbed } from '../../nn/patchEmbed.ts';
import { normal, xavierUniform, zeros } from '../../nn/init.ts';
import { SiTBlock } from '../../models/sit.ts';
import { LabelEmbedder, timestepFrequencies } from '../../models/embeddings.ts';
import { Projector } from '../../models/projector.ts';
import { gridSize, numTokens, type SiTConfig } from '../../models/config.ts';
import { EDM, edmCIn, flowToVe, sigmaCondition, type KarrasGrid } from '../../diffusion/ve.ts';
import { classCounts, type OwnSampleSettings, type OwnSampler } from '../method.ts';
import { sampleConsistency, sampleEpg } from './sampler.ts';
import { applyBoundary } from './consistency.ts';
import { NO_PHOTOMETRIC, augmentView, type Photometric } from './augment.ts';
import type { OwnForward } from '../partialForward.ts';

/** The tokens before the patches: CLS and time. */
export const EPG_PREFIX = 2;

/** The time token: the sinusoid of 250·ln σ at width D, (B, D). */
export function timeToken(sigmas: ArrayLike<number>, dim: number, dtype: DType = 'float32'): Tensor {
  return tensor(timestepFrequencies(Array.from(sigmas, sigmaCondition), dim), [sigmas.length, dim], dtype);
}

/** x (B, ...) scaled per sample by c_in(σ_b). */
export function precondition(x: Tensor, sigmas: ArrayLike<number>, sigmaData: number = EDM.sigmaData): Tensor {
  return mul(x, tensor(Array.from(sigmas, (s) => edmCIn(s, sigmaData)), [sigmas.length, ...x.shape.slice(1).map(() => 1)], x.dtype));
}

/** Pre-norm ViT block: x + Attn(LN(x)), then x + MLP(LN(x)). */
export class EncoderBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;

  constructor(dim: number, heads: number, mlpRatio: number, rng: Rng) {
    super();
    this.norm1 = this.child('norm1', new LayerNorm(dim, { eps: 1e-6 }));
    this.attn = this.child('attn', new Attention(dim, heads, rng.child('attn'), { qkvBias: false }));
    this.norm2 = this.child('norm2', new LayerNorm(dim, { eps: 1e-6 }));
    this.mlp = this.child('mlp', new Mlp(dim, Math.round(dim * mlpRatio), rng.child('mlp'), { act: 'gelu' }));
  }

  forward(x: Tensor): Tensor {
    x = add(x, this.attn.forward(this.norm1.forward(x)));
    return add(x, this.mlp.forward(this.norm2.forward(x)));
  }
}

export interface EncoderOutput {
  /** hs[0] the embedded tokens, hs[k] the output of block k, each (B, 2 + T, D). */
  hs: Tensor[];
  /** LayerNorm of the last block's tokens, (B, 2 + T, D). */
  tokens: Tensor;
  /** e = tokens[:, CLS], (B, D). */
  e: Tensor;
}

export class EpgEncoder extends Module {
  readonly patch_embed: PatchEmbed;
  readonly cls_token: Tensor;
  readonly pos_embed: Tensor;
  readonly blocks: ModuleList<EncoderBlock>;
  readonly norm: LayerNorm;

  constructor(readonly config: SiTConfig, rng: Rng) {
    super();
    const d = config.hiddenSize;
    this.patch_embed = this.child('patch_embed', new PatchEmbed(config.inChannels, d, config.patchSize, rng.child('patch_embed')));
    this.cls_token = this.param('cls_token', [1, 1, d]);
    this.pos_embed = this.param('pos_embed', [1, EPG_PREFIX + numTokens(config), d]);
    this.blocks = this.child('blocks', new ModuleList(Array.from({ length: config.depth }, (_, i) => new EncoderBlock(d, config.numHeads, config.mlpRatio, rng.child(`blocks.${i}`)))));
    this.norm = this.child('norm', new LayerNorm(d, { eps: 1e-6 }));
    const init = rng.child('init');
    normal(this.cls_token, init.child('cls_token'), 0.02);
    normal(this.pos_embed, init.child('pos_embed'), 0.02);
    for (const [name, m] of this.namedModules()) {
      if (!(m instanceof Linear)) continue;
      xavierUniform(m.weight, init.child(name));
      if (m.bias) zeros(m.bias);
    }
  }

  /** x_σ (B, C, H, W) at σ (B); clsAdd (B, D) is added to the CLS token (stage 2's class embedding). */
  forward(xSigma: Tensor, sigmas: ArrayLike<number>, clsAdd?: Tensor): EncoderOutput {
    const c = this.config, B = xSigma.shape[0], d = c.hiddenSize;
    if (xSigma.ndim !== 4 || xSigma.shape[1] !== c.inChannels || xSigma.shape[2] !== c.inputSize || xSigma.shape[3] !== c.inputSize) {
      throw new Error(`EpgEncoder: expected x (B, ${c.inChannels}, ${c.inputSize}, ${c.inputSize}), got ${fmtShape(xSigma.shape)}`);
    }
    if (sigmas.length !== B) throw new Error(`EpgEncoder: ${sigmas.length} noise levels for a batch of ${B}`);
    const patches = this.patch_embed.forward(precondition(xSigma, sigmas)); // (B, T, D)
    let cls = expand(this.cls_token, [B, 1, d]);
    if (clsAdd) cls = add(cls, reshape(clsAdd, [B, 1, d]));
    const time = reshape(timeToken(sigmas, d, patches.dtype), [B, 1, d]);
    let h = add(concat([cls, time, patches], 1), this.pos_embed); // (B, 2 + T, D)
    const hs = [h];
    for (const block of this.blocks.items) { h = block.forward(h); hs.push(h); }
    const tokens = this.norm.forward(h);
    return { hs, tokens, e: reshape(slice(tokens, 1, 0, 1), [B, d]) };
  }
}

/** (B, T, p·p·C) patch rows, each read as (py, px, c) → (B, C, H, W). */
export function unpatchify(x: Tensor, c: SiTConfig): Tensor {
  const p = c.patchSize, g = gridSize(c), ch = c.inChannels, b = x.shape[0];
  return reshape(permute(reshape(x, [b, g, g, p, p, ch]), [0, 5, 1, 3, 2, 4]), [b, ch, g * p, g * p]);
}

/** An EMA copy of a module's parameters held as buffers (names with '_' for '.'), and a private net that runs them. */
export class EmaShadow extends Module {
  private readonly pairs: { shadow: Tensor; name: string }[] = [];

  constructor(src: Module) {
    super();
    for (const [name, t] of src.namedParameters()) {
      const shadow = this.buffer(name.replaceAll('.', '_'), [...t.shape], (data) => data.set(t.data));
      this.pairs.push({ shadow, name });
    }
  }

  /** shadow ← decay·shadow + (1 − decay)·θ, for the source's parameters (in float64, rounded once). */
  update(src: Module, decay: number): void {
    const params = new Map(src.namedParameters());
    for (const { shadow, name } of this.pairs) {
      const p = params.get(name);
      if (!p) throw new Error(`EmaShadow: the source has no parameter ${name}`);
      const s = shadow.data, q = p.data;
      for (let i = 0; i < s.length; i++) s[i] = decay * s[i] + (1 - decay) * q[i];
    }
  }

  /** Load the shadow into `net` (a module of the source's layout). */
  loadInto(net: Module): void {
    net.loadStateDict(new Map(this.pairs.map(({ shadow, name }) => [name, shadow])), false);
  }
}

/** Stage 1's online network: encoder + projector, one module so the target copies both. */
export class EpgOnline extends Module {
  readonly encoder: EpgEncoder;
  readonly projector: Projector;

  constructor(config: SiTConfig, projectorDim: number, projectorOut: number, rng: Rng) {
    super();
    this.encoder = this.child('encoder', new EpgEncoder(config, rng.child('encoder')));
    this.projector = this.child('projector', new Projector(config.hiddenSize, projectorDim, projectorOut, rng.child('projector')));
  }
}

export interface PretrainOptions { projectorDim: number; projectorOut: number; refImages: number; numClasses: number }

export class EpgPretrainModel extends Module implements OwnSampler {
  /** The crop scale of the grid's views (epg.crop_min; set by the method). */
  cropMin = 0.8;
  /** The views' photometric augmentation (epg.view_*; set by the method; off by default). */
  photometric: Photometric = NO_PHOTOMETRIC;
  /** K of the curriculum: the run's total steps unless epg.curriculum_steps names it (set by the method). */
  totalSteps = 1;
  readonly online: EpgOnline;
  readonly target: EmaShadow;
  /** The training step whose update the target last took (0: none). */
  readonly target_step: Tensor;
  /** Training images shown by the stage's grid (augmented view pairs), (K·R, C, H, W): the first R of each class training saw. */
  readonly ref_images: Tensor;
  /** How many of each class's R slots are filled, (K). */
  readonly ref_count: Tensor;
  /** The network the target's weights run in (not a child: its tensors are the target's buffers, copied in). */
  private readonly targetNet: EpgOnline;

  constructor(readonly config: SiTConfig, readonly opts: PretrainOptions, rng: Rng) {
    super();
    this.online = this.child('online', new EpgOnline(config, opts.projectorDim, opts.projectorOut, rng.child('online')));
    this.target = this.child('target', new EmaShadow(this.online));
    this.target_step = this.buffer('target_step', [1]);
    this.ref_images = this.buffer('ref_images', [opts.numClasses * opts.refImages, config.inChannels, config.inputSize, config.inputSize]);
    this.ref_count = this.buffer('ref_count', [opts.numClasses]);
    this.targetNet = new EpgOnline(config, opts.projectorDim, opts.projectorOut, new Rng(0));
  }

  /** The online network on x_σ: e (B, D) and p = projector(e) (B, out). */
  forward(xSigma: Tensor, sigmas: ArrayLike<number>): { e: Tensor; p: Tensor } {
    const e = this.online.encoder.forward(xSigma, sigmas).e;
    return { e, p: this.online.projector.forward(e) };
  }

  /** Keep the batch's images of classes whose grid slots are not yet full (training batches, in order). */
  keepReferences(x: Tensor, y: ArrayLike<number>): void {
    const per = x.size / x.shape[0], r = this.opts.refImages;
    for (let b = 0; b < y.length; b++) {
      const c = y[b], k = this.ref_count.data[c];
      if (!(c >= 0 && c < this.opts.numClasses) || k >= r) continue;
      this.ref_images.data.set(x.data.subarray(b * per, (b + 1) * per), (c * r + k) * per);
      this.ref_count.data[c] = k + 1;
    }
  }

  /** Take this training step's target update once (step 1 leaves target = θ_0). */
  advanceTarget(step: number, decay: number): void {
    if (step <= this.target_step.data[0]) return;
    this.target.update(this.online, decay);
    this.target_step.data[0] = step;
  }

  /**
   * Stage 1 has no generator: its grid shows what the contrastive term compares — for each label,
   * the next reference image of that class as view 1 and view 2 in turn (augment.ts; seeded by the
   * first noise value, so a grid is reproducible).
   */
  ownsSampler(_sampler: string): boolean { return true; }

  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings): Tensor {
    const [B, C, H, W] = noise.shape, per = C * H * W, r = this.opts.refImages, out = new Float32Array(B * per);
    const seen = classCounts(s.labelsBefore), x = new Float32Array(B * per);
    for (let b = 0; b < B; b++) {
      const c = y.data[b], k = seen.get(c) ?? 0;
      if (!(c >= 0 && c < this.opts.numClasses)) throw new Error(`epg stage 1 grid: label ${c} is not a class in 0..${this.opts.numClasses - 1}`);
      seen.set(c, k + 1);
      const filled = Math.max(1, this.ref_count.data[c]); // a class training never showed stays black
      const src = (c * r + (Math.floor(k / 2) % filled)) * per;
      x.set(this.ref_images.data.subarray(src, src + per), b * per);
    }
    const rng = new Rng(Math.floor(Math.abs(noise.data[0]) * 1e6));
    const v1 = augmentView(tensor(x, [B, C, H, W]), rng.child('view1'), this.cropMin, { p: this.photometric, view: 1 });
    const v2 = augmentView(tensor(x, [B, C, H, W]), rng.child('view2'), this.cropMin, { p: this.photometric, view: 2 });
    const counts = new Map<number, number>();
    for (let b = 0; b < B; b++) {
      const c = y.data[b], k = counts.get(c) ?? 0;
      counts.set(c, k + 1);
      out.set((k % 2 === 0 ? v1 : v2).data.subarray(b * per, (b + 1) * per), b * per);
    }
    return tensor(out, [B, C, H, W]);
  }

  /** p⁻ of the EMA target on x_σ, without gradient, (B, out). */
  targetProjection(xSigma: Tensor, sigmas: ArrayLike<number>): Tensor {
    return noGrad(() => {
      this.target.loadInto(this.targetNet);
      return this.targetNet.projector.forward(this.targetNet.encoder.forward(xSigma, sigmas).e);
    });
  }
}

/** U-ViT long skip: concat(h, skip) → Linear(2D → D) → LayerNorm. */
export class SkipFuse extends Module {
  readonly linear: Linear;
  readonly norm: LayerNorm;

  constructor(dim: number, rng: Rng) {
    super();
    this.linear = this.child('linear', new Linear(2 * dim, dim, rng.child('linear')));
    this.norm = this.child('norm', new LayerNorm(dim, { eps: 1e-6 }));
    xavierUniform(this.linear.weight, rng.child('init'));
    zeros(this.linear.bias!);
  }

  forward(h: Tensor, skip: Tensor): Tensor {
    return this.norm.forward(this.linear.forward(concat([h, skip], -1)));
  }
}

export interface EpgSampling { shift: number; grid: KarrasGrid; interval: readonly [number, number] }

export class EpgModel extends Module implements OwnSampler, OwnForward {
  /** forward is the VE x0 denoiser D(x_σ, σ, y), not a velocity model's: no held-out velocity loss (partialForward.ts). */
  readonly flowForward = false;
  /** The sampler's settings (set by the method from its section). */
  sampling: EpgSampling;
  /**
   * Stage 'consistency', and stage 'diffusion' with epg.prediction 'edm': D = c_skip(σ)·x +
   * c_out(σ)·forward(x, σ) with the boundary at sigmaMin (the shifted σ_min; consistency.ts). null
   * (stage 'diffusion', prediction 'x0'): D = forward, the x0 prediction.
   */
  boundary: { sigmaMin: number; sigmaData: number } | null = null;
  /**
   * Which sampler draws: EPG's Euler/Heun on the Karras grid (stage 'diffusion', whether D is the
   * output or carries the boundary scalings, epg.prediction), or the consistency model's multistep
   * sampler (stage 'consistency').
   */
  sampler: 'diffusion' | 'consistency' = 'diffusion';
  /** K of the consistency stage's ECT schedule: the run's total steps unless epg.curriculum_steps names it (set by the method). */
  totalSteps = 1;
  /** Stage 'consistency' with epg.perceptual_weight > 0: the frozen stage-1 encoder + projector (not a child: no state, no optimiser, no gradient). */
  perceptualNet: EpgOnline | null = null;
  readonly encoder: EpgEncoder;
  readonly y_embedder: LabelEmbedder;
  readonly skips: ModuleList<SkipFuse>;
  readonly decoder: ModuleList<SiTBlock>;
  readonly out_norm: LayerNorm;
  readonly out_proj: Linear;

  constructor(readonly config: SiTConfig, readonly decoderDepth: number, rng: Rng) {
    super();
    const c = config, d = c.hiddenSize;
    if (!Number.isInteger(decoderDepth) || decoderDepth < 1 || decoderDepth > c.depth) {
      throw new Error(`epg.decoder_depth must be in 1..${c.depth} = model.depth (decoder block j reads encoder block ${c.depth}−j; block 0 is the embedded tokens), got ${decoderDepth}`);
    }
    this.encoder = this.child('encoder', new EpgEncoder(c, rng.child('encoder')));
    this.y_embedder = this.child('y_embedder', new LabelEmbedder(c.numClasses, d, c.classDropoutProb, rng.child('y_embedder')));
    this.skips = this.child('skips', new ModuleList(Array.from({ length: decoderDepth }, (_, j) => new SkipFuse(d, rng.child(`skips.${j}`)))));
    this.decoder = this.child('decoder', new ModuleList(Array.from({ length: decoderDepth }, (_, j) => new SiTBlock(d, c.numHeads, c.mlpRatio, rng.child(`decoder.${j}`)))));
    this.out_norm = this.child('out_norm', new LayerNorm(d, { eps: 1e-6 }));
    this.out_proj = this.child('out_proj', new Linear(d, c.patchSize * c.patchSize * c.inChannels, rng.child('out_proj')));
    const init = rng.child('init');
    for (const [name, m] of this.decoder.namedModules('decoder')) {
      if (m instanceof Linear) { xavierUniform(m.weight, init.child(name)); if (m.bias) zeros(m.bias); }
    }
    // adaLN and the output start at zero (EPG, methods-b §7): the first output is exactly 0.
    for (const b of this.decoder.items) { const l = b.adaLN_modulation.at<Linear>(-1); zeros(l.weight); zeros(l.bias!); }
    zeros(this.out_proj.weight); zeros(this.out_proj.bias!);
    this.sampling = { shift: c.inputSize / 64, grid: EDM, interval: [0.19, 1.61] };
  }

  /** Every sampler name is routed here; drawOwn accepts euler and heun and names the others. */
  ownsSampler(_sampler: string): boolean { return true; }

  drawOwn(noise: Tensor, y: Tensor, s: OwnSampleSettings, onStep?: (i: number, n: number) => void): Tensor {
    if (this.sampler === 'consistency') {
      if (s.sampler !== 'euler') throw new Error(`epg stage 'consistency' draws with the consistency model's multistep sampler, named euler (sample.steps evaluations): sample.sampler must be euler, got ${s.sampler}`);
      if (s.cfg > 1) throw new Error(`epg stage 'consistency' samples without guidance (the official consistency config drops no labels): sample.cfg must be ≤ 1, got ${s.cfg}`);
      const rng = new Rng(Math.floor(Math.abs(noise.data[0]) * 1e6)).child('consistency');
      return sampleConsistency((x, sig, l) => this.denoise(x, sig, l), noise, Int32Array.from(y.data), {
        steps: s.steps, shift: this.sampling.shift, grid: this.sampling.grid, onStep,
        renoise: (i) => rng.child(`z${i}`).normal([...noise.shape], 0, 1, noise.dtype),
      });
    }
    if (s.sampler !== 'euler' && s.sampler !== 'heun') throw new Error(`epg samples with its own Euler or Heun sampler on the Karras grid: sample.sampler must be euler or heun, got ${s.sampler}`);
    if (s.cfg > 1 && this.config.classDropoutProb <= 0) throw new Error('epg: sample.cfg > 1 needs the null class (model.class_dropout_prob > 0)');
    return sampleEpg((x, sig, l) => this.denoise(x, sig, l), noise, Int32Array.from(y.data), {
      steps: s.steps, heun: s.sampler === 'heun', shift: this.sampling.shift, grid: this.sampling.grid,
      cfg: s.cfg, nullClass: this.config.numClasses, interval: this.sampling.interval, onStep,
    });
  }

  /** D(x_σ, σ, labels) — labels after dropout (numClasses = null) — the x0 prediction (B, C, H, W). */
  forward(xSigma: Tensor, sigmas: ArrayLike<number>, labels: Int32Array): Tensor {
    const c = this.config, B = xSigma.shape[0];
    if (labels.length !== B) throw new Error(`EpgModel: ${labels.length} labels for a batch of ${B}`);
    const y = this.y_embedder.forward(labels); // (B, D)
    const enc = this.encoder.forward(xSigma, sigmas, y);
    const cond = add(timeToken(sigmas, c.hiddenSize, y.dtype), y); // (B, D)
    let h = enc.tokens;
    this.decoder.items.forEach((block, j) => {
      h = block.forward(this.skips.items[j].forward(h, enc.hs[c.depth - 1 - j]), cond);
    });
    const out = this.out_proj.forward(this.out_norm.forward(slice(h, 1, EPG_PREFIX))); // (B, T, p·p·C)
    return unpatchify(out, c);
  }

  /**
   * The evaluator's probe and CKNNA (PartialForward): real images noised on the linear path at t,
   * read in EPG's VE form (flowToVe: x_σ = x_t/(1 − t) at σ = t/(1 − t), the same point of the same
   * trajectory), with the class embedding of `labels` on the CLS token as the forward adds it; the
   * encoder's patch tokens after block `block` (B, T, D).
   */
  hiddenAfter(xt: Tensor, t: ArrayLike<number>, labels: ArrayLike<number>, block: number): Tensor {
    const depth = this.encoder.blocks.items.length;
    if (!Number.isInteger(block) || block < 1 || block > depth) throw new Error(`EpgModel.hiddenAfter: block ${block} is not in 1..${depth} (the encoder's blocks)`);
    const { xSigma, sigmas } = flowToVe(xt, t);
    const enc = this.encoder.forward(xSigma, sigmas, this.y_embedder.forward(Int32Array.from(labels)));
    return slice(enc.hs[block - 1], 1, EPG_PREFIX);
  }

  /** The denoiser: forward (x0 prediction), or under the consistency boundary c_skip·x + c_out·forward. */
  denoise(xSigma: Tensor, sigmas: ArrayLike<number>, labels: Int32Array): Tensor {
    const f = this.forward(xSigma, sigmas, labels);
    return this.boundary ? applyBoundary(xSigma, f, sigmas, this.boundary.sigmaMin, this.boundary.sigmaData) : f;
  }

  /** Labels after the class dropout of training (rng) or as given (eval). */
  dropLabels(y: ArrayLike<number>, rng?: Rng): Int32Array {
    return this.y_embedder.dropLabels(y, { training: this.training, rng });
  }
}
