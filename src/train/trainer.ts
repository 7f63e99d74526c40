// The reference trainer: a plain in-process loop (no actors) for the SiT and DiT baselines. The
// actor runtime is later proven equal to it step for step, so it stays small and obvious: one
// `step()` is fetch → noise → forward → loss → backward → clip → AdamW → EMA. Every random draw
// comes from a named child stream of the spec's seed (time, noise, label dropout, loader), and
// those streams' counters are checkpointed, so a resumed run reproduces an uninterrupted one bit
// for bit. Not here: the CLI (src/cli/train.ts), sampling (draw.ts), files (checkpoint.ts).
import { Loader, type ImageDataset } from '../data/index.ts';
import { createSiT, type SiT } from '../models/sit.ts';
import type { SiTConfig } from '../models/config.ts';
import { AdamW, Ema, clipGradNorm, constantSchedule, cosineSchedule, linearWarmup, type Schedule } from '../optim/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { backward } from '../autograd/index.ts';
import {
  interpolantByName, flowTrainingPair, velocityLoss, sampleTimes, uniformTimesteps,
  DdpmSchedule, qSample, epsLoss, hybridLoss,
} from '../diffusion/index.ts';
import type { RunSpec } from '../spec/schema.ts';
import { checkSpecConsistency, modelConfigFor } from './setup.ts';
import type { Checkpoint, TrainState } from './checkpoint.ts';

export interface StepLog {
  step: number;
  loss: number;
  /** Loss terms beyond the total (DiT hybrid: mse, vb). */
  terms: Record<string, number>;
  lr: number;
  grad_norm: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly value: number, readonly where: string) {
    super(`loss became ${value} at step ${step} (${where}); the run stopped and no checkpoint was written over`);
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
  readonly model: SiT;
  /** The EMA teacher as a full model (its parameters are the EMA targets). */
  readonly emaModel: SiT;
  readonly ema: Ema;
  readonly opt: AdamW;
  readonly loader: Loader;
  readonly schedule: Schedule;
  /** Named streams: time, noise, dropout. */
  readonly rngs: Record<'time' | 'noise' | 'dropout', Rng>;
  step = 0;
  wallSeconds = 0;
  private readonly ddpm: DdpmSchedule | null;

  constructor(spec: RunSpec, data: ImageDataset) {
    checkSpecConsistency(spec);
    this.spec = spec;
    this.config = modelConfigFor(spec, data);
    this.model = createSiT(this.config, spec.seed);
    this.emaModel = createSiT(this.config, spec.seed).eval();
    this.ema = new Ema(this.emaModel.namedParameters(), this.model.namedParameters(), spec.train.ema_decay);
    this.ema.copyFrom();
    const t = spec.train;
    this.opt = new AdamW(this.model.namedParameters(), { lr: t.lr, betas: [t.beta1, t.beta2], weightDecay: t.weight_decay });
    this.loader = new Loader(data, { batchSize: t.batch_size, seed: spec.seed, hflip: spec.data.hflip });
    this.schedule = scheduleFor(spec);
    const root = new Rng(spec.seed);
    this.rngs = { time: root.child('time'), noise: root.child('noise'), dropout: root.child('label-dropout') };
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
        const { xt, target } = flowTrainingPair(path, x, eps, t);
        const { out } = this.model.forward(xt, t, y, { rng: this.rngs.dropout });
        loss = velocityLoss(out, target).loss;
      }
      const value = loss.item();
      if (!Number.isFinite(value)) throw new NonFiniteLossError(stepNo, value, `${this.spec.protocol} loss of the student`);
      backward(loss);
      const gradNorm = clipGradNorm(this.opt.params, this.spec.train.grad_clip);
      if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(stepNo, gradNorm, 'gradient norm');
      const factor = this.schedule(this.step);
      this.opt.step(factor);
      this.opt.zeroGrad();
      this.ema.update();
      return { step: stepNo, loss: value, terms, lr: this.spec.train.lr * factor, grad_norm: gradNorm };
    });
    this.step = stepNo;
    return log;
  }

  trainState(): TrainState {
    const r = this.rngs;
    return {
      step: this.step,
      rng: { time: r.time.state(), noise: r.noise.state(), dropout: r.dropout.state() },
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
      opt: this.opt.state().tensors,
    };
  }

  /** Continue from a checkpoint: weights, EMA, optimiser moments, RNG counters, data position. */
  restore(c: Checkpoint): void {
    this.model.loadStateDict(c.model);
    this.emaModel.loadStateDict(c.ema);
    this.opt.loadState({ step: c.state.optStep, tensors: c.opt });
    for (const k of ['time', 'noise', 'dropout'] as const) {
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
