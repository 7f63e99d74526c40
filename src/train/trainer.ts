// The reference trainer: a plain in-process loop (no actors) for the SiT and DiT baselines and the
// REPA, SRA, REG and REPA-E protocols. The actor runtime is later proven equal to it step for step,
// so it stays small and obvious: one `step()` is fetch → noise → forward → loss → backward → clip →
// AdamW → EMA; a protocol's forward and loss live in protocolLoss.ts, its extra modules (encoder,
// projector or head, REG's model, REPA-E's VAE) in methodParts.ts. REPA-E puts a whole VAE update
// (repaeStep, pieces in methods/repa-e/pieces.ts) before the SiT's loss. Every random draw comes from a
// named child stream of the spec's seed (time, noise, label dropout, loader, and the protocol's
// own), and those streams' counters are checkpointed, so a resumed run reproduces an uninterrupted
// one bit for bit.
// Not here: the CLI (src/cli/train.ts), sampling (draw.ts), files (checkpoint.ts).
import { Loader, type ImageDataset } from '../data/index.ts';
import type { SiTConfig } from '../models/config.ts';
import { SiT } from '../models/sit.ts';
import { AdamW, Ema, clipGradNorm, constantSchedule, cosineSchedule, linearWarmup, type Schedule } from '../optim/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { backward, detach } from '../autograd/index.ts';
import {
  interpolantByName, sampleTimes, uniformTimesteps, DdpmSchedule, qSample, epsLoss, hybridLoss, type Interpolant,
} from '../diffusion/index.ts';
import { vaeFactor, type VAE } from '../models/vae.ts';
import {
  RepaESiT, copyBnCounter, decodeLatentSamples, repaeEmaTensors, repaeSitLoss, vaeAlignGrad, vaeBackward, vaeRegLoss,
} from '../methods/repa-e/pieces.ts';
import type { FrozenEncoder } from '../methods/encoder.ts';
import type { RunSpec } from '../spec/schema.ts';
import { checkSpecConsistency, modelConfigFor, vaeConfigFor } from './setup.ts';
import type { Checkpoint, TrainState } from './checkpoint.ts';
import { buildBackbone, buildEncoder, buildHeads, buildVae, section, type Backbone, type MethodHeads } from './methodParts.ts';
import { flowStepLoss, protocolStreams, type StepLoss } from './protocolLoss.ts';

export interface StepLog {
  step: number;
  loss: number;
  /**
   * Loss terms beyond the total (DiT hybrid: mse, vb; REPA: diff, proj; SRA: diff, align,
   * align_weight; REG: diff, proj, cls; REPA-E: diff, proj, vae_l1, vae_kl, vae_align, vae_grad_norm).
   */
  terms: Record<string, number>;
  lr: number;
  grad_norm: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly value: number, readonly where: string) {
    super(`${Number.isNaN(value) && where.startsWith('parameter') ? 'training diverged' : `loss became ${value}`} at step ${step} (${where}); the run stopped and no checkpoint was written over`);
  }
}

export function scheduleFor(spec: RunSpec): Schedule {
  const t = spec.train;
  // A short run (--steps below the warm-up) warms up over the whole run rather than failing.
  const warmup = Math.min(t.warmup_steps, t.steps);
  if (t.schedule === 'cosine') return cosineSchedule({ totalSteps: t.steps, warmupSteps: warmup, minFactor: t.min_lr_ratio });
  return warmup > 0 ? linearWarmup(warmup) : constantSchedule();
}

/** One batch's flow times as the spec's diffusion section names them (one draw from `rng`). */
function flowTimes(spec: RunSpec, rng: Rng, batch: number, path: Interpolant): Float64Array {
  const d = spec.diffusion;
  return sampleTimes(rng, batch, d.time_sampling === 'uniform'
    ? { kind: 'uniform' }
    : { kind: 'logitNormal', mean: d.logit_normal_mean, std: d.logit_normal_std }, path);
}

export class Trainer {
  readonly spec: RunSpec;
  readonly config: SiTConfig;
  readonly model: Backbone;
  /** The EMA teacher as a full model (its parameters are the EMA targets). */
  readonly emaModel: Backbone;
  /** REPA/REG projector or SRA head (trained, checkpointed under `proj.`); null for the baselines. */
  readonly heads: MethodHeads | null;
  /** REPA/REG/REPA-E's frozen encoder; null otherwise. */
  readonly encoder: FrozenEncoder | null;
  /** REPA-E's VAE, trained with the SiT, and its own AdamW (lr repa_e.vae_lr); null otherwise. */
  readonly vae: VAE | null;
  readonly vaeOpt: AdamW | null;
  readonly ema: Ema;
  readonly opt: AdamW;
  readonly loader: Loader;
  readonly schedule: Schedule;
  /** Named streams: time, noise, dropout, and the protocol's (teacher-offset, cls-noise). */
  readonly rngs: Record<string, Rng>;
  /** Steps counted as one epoch by epoch-based schedules (SRA's sml1 weight). */
  readonly stepsPerEpoch: number;
  step = 0;
  wallSeconds = 0;
  private readonly ddpm: DdpmSchedule | null;

  constructor(spec: RunSpec, data: ImageDataset) {
    this.spec = spec;
    const vaeConfig = spec.protocol === 'repa-e' ? vaeConfigFor(spec, data) : undefined;
    this.config = modelConfigFor(spec, data, vaeConfig);
    checkSpecConsistency(spec, this.config.depth);
    const encoded = spec.protocol === 'repa' || spec.protocol === 'reg' || spec.protocol === 'repa-e';
    this.encoder = encoded ? buildEncoder(spec, data, this.config) : null;
    const encoderDim = this.encoder?.dim ?? null;
    this.model = buildBackbone(spec, this.config, encoderDim, vaeConfig);
    this.emaModel = buildBackbone(spec, this.config, encoderDim, vaeConfig).eval();
    // REPA-E's EMA also averages the latent BN's running mean and variance (methods-b §2 step 5).
    const averaged = (m: Backbone) => (m instanceof RepaESiT ? repaeEmaTensors(m) : m.namedParameters());
    this.ema = new Ema(averaged(this.emaModel), averaged(this.model), spec.train.ema_decay);
    this.ema.copyFrom();
    this.heads = buildHeads(spec, this.config, encoderDim);
    const t = spec.train;
    const params = [...this.model.namedParameters(), ...(this.heads?.namedParameters('proj.') ?? [])];
    this.opt = new AdamW(params, { lr: t.lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay });
    this.vae = vaeConfig ? buildVae(spec, vaeConfig) : null;
    this.vaeOpt = this.vae
      ? new AdamW(this.vae.namedParameters(), { lr: section(spec, 'repa_e').vae_lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay })
      : null;
    this.loader = new Loader(data, { batchSize: t.batch_size, seed: spec.seed, hflip: spec.data.hflip });
    this.schedule = scheduleFor(spec);
    this.stepsPerEpoch = spec.sra?.steps_per_epoch ?? Math.max(1, Math.floor(data.count / t.batch_size));
    const root = new Rng(spec.seed);
    this.rngs = { time: root.child('time'), noise: root.child('noise'), dropout: root.child('label-dropout') };
    for (const name of protocolStreams(spec.protocol)) this.rngs[name] = root.child(name);
    this.ddpm = spec.diffusion.objective === 'ddpm' ? DdpmSchedule.linear() : null;
  }

  /** One optimisation step; returns what metrics.jsonl records. Throws NonFiniteLossError on NaN/Inf. */
  trainStep(): StepLog {
    const stepNo = this.step + 1;
    const log = tidy(() => {
      const { x, y } = this.loader.next(); // (B, C, H, W), (B)
      const B = x.shape[0];
      let loss: Tensor;
      const terms: Record<string, number> = {};
      const eps = this.vae ? null : this.rngs.noise.normal(x.shape); // (B, C, H, W); REPA-E's is latent-shaped
      if (this.vae) {
        const r = this.repaeStep(x, y, stepNo);
        loss = r.loss;
        Object.assign(terms, r.terms);
      } else if (this.ddpm) {
        if (!(this.model instanceof SiT)) throw new Error('DDPM training needs the plain SiT/DiT model');
        const t = uniformTimesteps(this.rngs.time, B, this.ddpm.T);
        const xt = qSample(this.ddpm, x, eps!, t);
        const { out } = this.model.forward(xt, t, y, { rng: this.rngs.dropout });
        if (this.config.learnSigma) {
          const h = hybridLoss(this.ddpm, out, x, xt, eps!, t);
          loss = h.loss;
          terms.mse = mean1(h.mse);
          terms.vb = mean1(h.vb);
        } else {
          loss = epsLoss(out, eps!).loss;
        }
      } else {
        const path = interpolantByName(this.spec.diffusion.path);
        const t = flowTimes(this.spec, this.rngs.time, B, path);
        const r = flowStepLoss({
          spec: this.spec, path, model: this.model, emaModel: this.emaModel, heads: this.heads, encoder: this.encoder,
          rngs: this.rngs, stepIndex: this.step, stepsPerEpoch: this.stepsPerEpoch,
        }, { x, y, eps: eps!, t });
        loss = r.loss;
        Object.assign(terms, r.terms);
      }
      const value = loss.item();
      if (!Number.isFinite(value)) throw new NonFiniteLossError(stepNo, value, `${this.spec.protocol} loss of the student`);
      backward(loss);
      const gradNorm = clipGradNorm(this.opt.params, this.spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(stepNo, gradNorm, 'gradient norm');
      const factor = this.schedule(this.step);
      this.opt.step(factor);
      this.opt.zeroGrad();
      const d = this.spec.train.ema_decay;
      this.ema.update(this.spec.train.ema_warmup ? Math.min(d, (1 + this.step) / (10 + this.step)) : d);
      if (this.model instanceof RepaESiT) copyBnCounter(this.emaModel as RepaESiT, this.model);
      return { step: stepNo, loss: value, terms, lr: this.spec.train.lr * factor, grad_norm: gradNorm };
    });
    this.step = stepNo;
    return log;
  }

  /**
   * REPA-E's VAE update and the SiT's loss (methods-b.md §2 "Training step"), in the official order;
   * trainStep then runs the SiT's backward, clip, AdamW and the EMA (parameters and BN buffers).
   *  0. y* = encoder(x) on the raw image, no gradient
   *  1. VAE forward: posterior (μ, log σ²), z = μ + σ·ξ (ξ: stream 'posterior'), x̂ = decode(z)
   *  2. t (stream 'time'), then ε (stream 'noise', latent-shaped): one pair for both passes
   *  3. VAE update: g = ∂(c·L_REPA)/∂z through the frozen eval-mode SiT (BN on running stats,
   *     unchanged); backward of l1·L1 + kl·KL seeded with g at z; clip; AdamW (vae_lr × the
   *     schedule's factor, the SiT's factor, so warm-up and decay apply to both)
   *  4. SiT loss on z.detach() in train mode (BN batch statistics and running-stat update, label
   *     dropout from stream 'label-dropout'): velocity MSE + proj_coeff·L_REPA
   */
  private repaeStep(x: Tensor, y: Int32Array, stepNo: number): StepLoss {
    const s = section(this.spec, 'repa_e');
    const model = this.model as RepaESiT, projector = this.heads!.projector(), vae = this.vae!, vaeOpt = this.vaeOpt!;
    const path = interpolantByName(this.spec.diffusion.path);
    const feats = this.encoder!.features(x); // (B, T, Dz)
    const post = vae.forward(x, this.rngs.posterior); // z (B, L, h, w), recon (B, C, H, W)
    const t = flowTimes(this.spec, this.rngs.time, x.shape[0], path); // (B)
    const eps = this.rngs.noise.normal(post.z.shape); // (B, L, h, w)
    const align = vaeAlignGrad(model, projector, post.z, t, eps, y, feats.patch, { depth: s.encoder_depth, coeff: s.vae_align_coeff, path });
    const reg = vaeRegLoss(x, post.recon, post, { l1: s.l1_weight, kl: s.kl_weight });
    const vaeLoss = reg.loss.item() + s.vae_align_coeff * align.loss;
    if (!Number.isFinite(vaeLoss)) throw new NonFiniteLossError(stepNo, vaeLoss, 'repa-e loss of the VAE');
    vaeBackward(reg.loss, post.z, align.grad);
    const vaeGradNorm = clipGradNorm(vaeOpt.params, this.spec.train.grad_clip);
    if (!Number.isFinite(vaeGradNorm)) throw new NonFiniteLossError(stepNo, vaeGradNorm, 'gradient norm of the VAE');
    vaeOpt.step(this.schedule(this.step));
    vaeOpt.zeroGrad();
    model.train();
    const sit = repaeSitLoss(model, projector, detach(post.z), t, eps, y, this.rngs.dropout, feats.patch, { depth: s.encoder_depth, coeff: s.proj_coeff, path });
    return {
      loss: sit.loss,
      terms: { diff: sit.diff, proj: sit.proj, vae_l1: reg.l1, vae_kl: reg.kl, vae_align: align.loss, vae_grad_norm: vaeGradNorm },
    };
  }

  /**
   * drawSamples' output as images: REPA-E samples BN-normalised latents, de-normalised with the EMA
   * model's BN buffers and decoded by the jointly tuned VAE; the other protocols sample images.
   */
  samplesToImages(samples: Float32Array, n: number): { images: Float32Array; channels: number; side: number } {
    const c = this.config;
    if (!this.vae) return { images: samples, channels: c.inChannels, side: c.inputSize };
    const images = decodeLatentSamples(this.vae, (this.emaModel as RepaESiT).bn, samples, n, c.inputSize);
    return { images, channels: this.vae.config.outChannels, side: c.inputSize * vaeFactor(this.vae.config) };
  }

  trainState(): TrainState {
    return {
      step: this.step,
      rng: Object.fromEntries(Object.entries(this.rngs).map(([k, r]) => [k, r.state()])),
      loader: this.loader.state(),
      optStep: this.opt.state().step,
      wallSeconds: this.wallSeconds,
      ...(this.vaeOpt && { vaeOptStep: this.vaeOpt.state().step }),
    };
  }

  checkpoint(): Checkpoint {
    return {
      config: this.config,
      spec: this.spec,
      state: this.trainState(),
      model: this.model.stateDict(),
      ema: this.emaModel.stateDict(),
      proj: this.heads?.stateDict() ?? new Map(),
      opt: this.opt.state().tensors,
      ...(this.vae && { vae: this.vae.stateDict(), vaeOpt: this.vaeOpt!.state().tensors }),
    };
  }

  /** Continue from a checkpoint: weights, EMA, heads, optimiser moments, RNG counters, data position (and REPA-E's VAE and its AdamW). */
  restore(c: Checkpoint): void {
    if (this.vae) {
      if (!c.vae?.size || c.state.vaeOptStep === undefined) throw new Error(`checkpoint: protocol ${this.spec.protocol} needs 'vae.' tensors and the VAE optimiser's step`);
      this.vae.loadStateDict(c.vae);
      this.vaeOpt!.loadState({ step: c.state.vaeOptStep, tensors: c.vaeOpt ?? new Map() });
    } else if (c.vae?.size) {
      throw new Error(`checkpoint: ${c.vae.size} 'vae.' tensors but protocol ${this.spec.protocol} trains no VAE`);
    }
    this.model.loadStateDict(c.model);
    this.emaModel.loadStateDict(c.ema);
    if (this.heads) this.heads.loadStateDict(c.proj);
    else if (c.proj.size) throw new Error(`checkpoint: ${c.proj.size} 'proj.' tensors but protocol ${this.spec.protocol} has no heads`);
    this.opt.loadState({ step: c.state.optStep, tensors: c.opt });
    for (const k of Object.keys(this.rngs)) {
      const s = c.state.rng[k];
      if (!s) throw new Error(`checkpoint: no RNG state for stream '${k}'`);
      this.rngs[k] = Rng.fromState(s);
    }
    this.loader.restore(c.state.loader);
    this.step = c.state.step;
    this.wallSeconds = c.state.wallSeconds ?? 0;
  }
}

function mean1(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += v;
  return s / t.size;
}
