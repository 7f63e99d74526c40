// The reference trainer: a plain in-process loop (no actors) for the SiT and DiT baselines and the
// REPA, SRA and REG protocols. The actor runtime is later proven equal to it step for step, so it
// stays small and obvious: one `step()` is fetch → noise → forward → loss → backward → clip →
// AdamW → EMA; a protocol's forward and loss live in protocolLoss.ts, its extra modules (encoder,
// projector or head, REG's model) in methodParts.ts. Every random draw comes from a named child
// stream of the spec's seed (time, noise, label dropout, loader, and the protocol's own), and those
// streams' counters are checkpointed, so a resumed run reproduces an uninterrupted one bit for bit.
// Not here: the CLI (src/cli/train.ts), sampling (draw.ts), files (checkpoint.ts).
import { Loader, type ImageDataset } from '../data/index.ts';
import type { SiTConfig } from '../models/config.ts';
import { SiT } from '../models/sit.ts';
import { AdamW, Ema, clipGradNorm, constantSchedule, cosineSchedule, linearWarmup, type Schedule } from '../optim/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { backward } from '../autograd/index.ts';
import {
  interpolantByName, sampleTimes, uniformTimesteps, DdpmSchedule, qSample, epsLoss, hybridLoss,
} from '../diffusion/index.ts';
import type { FrozenEncoder } from '../methods/encoder.ts';
import type { RunSpec } from '../spec/schema.ts';
import { checkSpecConsistency, modelConfigFor } from './setup.ts';
import type { Checkpoint, TrainState } from './checkpoint.ts';
import { buildBackbone, buildEncoder, buildHeads, type Backbone, type MethodHeads } from './methodParts.ts';
import { flowStepLoss, protocolStreams } from './protocolLoss.ts';

export interface StepLog {
  step: number;
  loss: number;
  /** Loss terms beyond the total (DiT hybrid: mse, vb; REPA: diff, proj; SRA: diff, align, align_weight; REG: diff, proj, cls). */
  terms: Record<string, number>;
  lr: number;
  grad_norm: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly value: number, readonly where: string) {
    super(`${Number.isNaN(value) && where.startsWith('parameter') ? 'training diverged' : `loss became ${value}`} at step ${step} (${where}); the run stopped and no checkpoint was written over`);
  }
}

function scheduleFor(spec: RunSpec): Schedule {
  const t = spec.train;
  // A short run (--steps below the warm-up) warms up over the whole run rather than failing.
  const warmup = Math.min(t.warmup_steps, t.steps);
  if (t.schedule === 'cosine') return cosineSchedule({ totalSteps: t.steps, warmupSteps: warmup, minFactor: t.min_lr_ratio });
  return warmup > 0 ? linearWarmup(warmup) : constantSchedule();
}

export class Trainer {
  readonly spec: RunSpec;
  readonly config: SiTConfig;
  readonly model: Backbone;
  /** The EMA teacher as a full model (its parameters are the EMA targets). */
  readonly emaModel: Backbone;
  /** REPA/REG projector or SRA head (trained, checkpointed under `proj.`); null for the baselines. */
  readonly heads: MethodHeads | null;
  /** REPA/REG's frozen encoder; null otherwise. */
  readonly encoder: FrozenEncoder | null;
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
    this.config = modelConfigFor(spec, data);
    checkSpecConsistency(spec, this.config.depth);
    this.encoder = spec.protocol === 'repa' || spec.protocol === 'reg' ? buildEncoder(spec, data, this.config) : null;
    const encoderDim = this.encoder?.dim ?? null;
    this.model = buildBackbone(spec, this.config, encoderDim);
    this.emaModel = buildBackbone(spec, this.config, encoderDim).eval();
    this.ema = new Ema(this.emaModel.namedParameters(), this.model.namedParameters(), spec.train.ema_decay);
    this.ema.copyFrom();
    this.heads = buildHeads(spec, this.config, encoderDim);
    const t = spec.train;
    const params = [...this.model.namedParameters(), ...(this.heads?.namedParameters('proj.') ?? [])];
    this.opt = new AdamW(params, { lr: t.lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay });
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
      const eps = this.rngs.noise.normal(x.shape); // (B, C, H, W)
      let loss: Tensor;
      const terms: Record<string, number> = {};
      if (this.ddpm) {
        if (!(this.model instanceof SiT)) throw new Error('DDPM training needs the plain SiT/DiT model');
        const t = uniformTimesteps(this.rngs.time, B, this.ddpm.T);
        const xt = qSample(this.ddpm, x, eps, t);
        const { out } = this.model.forward(xt, t, y, { rng: this.rngs.dropout });
        if (this.config.learnSigma) {
          const h = hybridLoss(this.ddpm, out, x, xt, eps, t);
          loss = h.loss;
          terms.mse = mean1(h.mse);
          terms.vb = mean1(h.vb);
        } else {
          loss = epsLoss(out, eps).loss;
        }
      } else {
        const d = this.spec.diffusion;
        const path = interpolantByName(d.path);
        const t = sampleTimes(this.rngs.time, B, d.time_sampling === 'uniform'
          ? { kind: 'uniform' }
          : { kind: 'logitNormal', mean: d.logit_normal_mean, std: d.logit_normal_std }, path);
        const r = flowStepLoss({
          spec: this.spec, path, model: this.model, emaModel: this.emaModel, heads: this.heads, encoder: this.encoder,
          rngs: this.rngs, stepIndex: this.step, stepsPerEpoch: this.stepsPerEpoch,
        }, { x, y, eps, t });
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
      return { step: stepNo, loss: value, terms, lr: this.spec.train.lr * factor, grad_norm: gradNorm };
    });
    this.step = stepNo;
    return log;
  }

  trainState(): TrainState {
    return {
      step: this.step,
      rng: Object.fromEntries(Object.entries(this.rngs).map(([k, r]) => [k, r.state()])),
      loader: this.loader.state(),
      optStep: this.opt.state().step,
      wallSeconds: this.wallSeconds,
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
    };
  }

  /** Continue from a checkpoint: weights, EMA, heads, optimiser moments, RNG counters, data position. */
  restore(c: Checkpoint): void {
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
