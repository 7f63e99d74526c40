// Draw class-conditional samples from a model with the sampler a spec names: the one place that
// maps SampleSpec to the diffusion samplers, used by the trainer's end-of-run grid and by
// `diffactor sample`. Images come back as (N, C, H, W) float32 in the data range [-1, 1]. A REG
// model samples with REG's SDE sampler (image and class-token streams; its class token starts from
// the stream's own N(0, I) draw and is discarded at the end). A backbone with a sampler of its own
// for the spec's sampler (OwnSampler: DDT's Euler with encoder sharing) gets the noise and labels
// drawn here and draws itself.
import { noGrad } from '../autograd/tape.ts';
import { tidy } from '../tensor/tidy.ts';
import { sampleOde, sampleSde, sampleDdpm, sampleDdim, DdpmSchedule, spacedTimesteps, ddimTimesteps, type ModelFn } from '../diffusion/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { SiT } from '../models/sit.ts';
import { RegSiT } from '../models/reg.ts';
import { sampleSdeReg, type RegModelFn } from '../methods/reg/sampler.ts';
import type { RunSpec } from '../spec/schema.ts';
import { isOwnSampler, isSampledState, type Backbone } from '../methods/method.ts';
import { slice } from '../autograd/ops/index.ts';

/** A spec's sample section, and the labels of the draw before this batch (OwnSampleSettings.labelsBefore). */
export type SampleSettings = RunSpec['sample'] & { labelsBefore?: readonly number[] };

export interface DrawOptions {
  seed: number;
  /** Labels to draw, one sample each. */
  labels: readonly number[];
  /** Samples per model batch (memory bound). */
  batch?: number;
  onStep?: (done: number, total: number) => void;
}

/**
 * Model evaluations per sample of a sampler at `steps` steps (each one a forward of the whole
 * batch; classifier-free guidance doubles the batch, not the count): Heun's last step is a plain
 * Euler step (2N − 1), every other sampler calls the model once per step.
 */
export function modelCallsPerSample(sampler: SampleSettings['sampler'], steps: number): number {
  return sampler === 'heun' ? 2 * steps - 1 : steps;
}

/** The most steps whose model evaluations per sample do not exceed `nfe` (at least 1): equal-cost sampling. */
export function stepsForNfe(sampler: SampleSettings['sampler'], nfe: number): number {
  if (!Number.isInteger(nfe) || nfe < 1) throw new Error(`stepsForNfe: nfe must be a positive integer, got ${nfe}`);
  return sampler === 'heun' ? Math.max(1, Math.floor((nfe + 1) / 2)) : nfe;
}

/** Labels for a grid with one row per class: class c repeated perClass times, c = 0..K-1. */
export function gridLabels(classes: readonly number[], perClass: number): number[] {
  return classes.flatMap((c) => new Array<number>(perClass).fill(c));
}

export function drawSamples(model: SiT | RegSiT | Backbone, s: SampleSettings, o: DrawOptions): Float32Array {
  const c = model.config;
  if (model instanceof RegSiT && s.sampler !== 'sde') throw new Error(`REG samples with its SDE sampler only (sample.sampler: sde), got ${s.sampler}`);
  const wasTraining = model.training;
  model.eval();
  const per = imageChannels(model) * c.inputSize * c.inputSize;
  const out = new Float32Array(o.labels.length * per);
  const root = new Rng(o.seed).child('sample');
  const B = o.batch ?? 100;
  const chunks = Math.ceil(o.labels.length / B);
  try {
    for (let k = 0; k < chunks; k++) {
      const labels = o.labels.slice(k * B, (k + 1) * B);
      const x = drawBatch(model, { ...s, labelsBefore: o.labels.slice(0, k * B) }, labels, root.child(k), (i, n) => o.onStep?.(k * n + i, chunks * n));
      out.set(x.data, k * B * per);
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/** The channels of the images a model draws: config.inChannels, or the image part of a larger sampled state (SampledState). */
export function imageChannels(model: SiT | RegSiT | Backbone): number {
  return isSampledState(model) ? model.imageChannels : model.config.inChannels;
}

/**
 * One model batch of drawSamples: the images for `labels`, every random draw taken from `rng`
 * (drawSamples passes batch k's stream, Rng(seed).child('sample').child(k)). Every draw is one
 * (rows, ...) array, so a stream that hands out only some rows of each draw samples part of a
 * batch exactly (src/actors/samplePool.ts). The model must already be in eval mode.
 */
export function drawBatch(model: SiT | RegSiT | Backbone, s: SampleSettings, labels: readonly number[], rng: Rng, onStep?: (i: number, n: number) => void): Tensor {
  const c = model.config;
  const reg = model instanceof RegSiT ? model : null;
  if (reg && s.sampler !== 'sde') throw new Error(`REG samples with its SDE sampler only (sample.sampler: sde), got ${s.sampler}`);
  // A SampledState integrates its own velocity (ReDi: representation guidance) over all its
  // channels and keeps the image's; the rest (REG below excepted) integrate forward().out.
  const state = isSampledState(model) ? model : null;
  const fn: ModelFn = state ? (x, t, y) => state.samplingVelocity(x, t, y) : (x, t, y) => (model as SiT).forward(x, t, y).out;
  const regFn: RegModelFn = (x, t, y, g) => {
    const r = reg!.forward(x, t, y, { cls: g });
    return { v: r.out, vg: r.cls };
  };
  const guidance = s.cfg > 1 ? { scale: s.cfg, nullClass: c.numClasses, interval: [s.guidance_low, s.guidance_high] as const, channels: state?.guidedChannels } : undefined;
  const noise = rng.normal([labels.length, c.inChannels, c.inputSize, c.inputSize]);
  const y = tensor(labels, [labels.length]);
  // A backbone with its own sampler for this one (DDT's Euler with encoder sharing) draws itself,
  // never on a tape.
  // tidy: whatever a sampler leaves untracked goes back to the pool with the batch.
  if (isOwnSampler(model) && model.ownsSampler(s.sampler)) return noGrad(() => tidy(() => model.drawOwn(noise, y, s, onStep)));
  const drawn = ((): Tensor => {
    switch (s.sampler) {
      case 'euler': return sampleOde(fn, noise, y, { steps: s.steps, guidance, onStep });
      case 'heun': return sampleOde(fn, noise, y, { steps: s.steps, heun: true, guidance, onStep });
      case 'sde':
        return reg
          ? sampleSdeReg(regFn, noise, rng.child('cls').normal([labels.length, reg.clsDim]), y, {
            steps: s.steps, rng: rng.child('sde'), clsRng: rng.child('sde-cls'), guidance, clsScale: s.cls_cfg, onStep,
          }).x
          : sampleSde(fn, noise, y, { steps: s.steps, rng: rng.child('sde'), guidance, onStep });
      case 'ddpm':
      case 'ddim': {
        const base = DdpmSchedule.linear();
        const schedule = base.respace(s.sampler === 'ddim' ? ddimTimesteps(base.T, s.steps) : spacedTimesteps(base.T, s.steps));
        // The guidance interval is given in flow time [0, 1]; DDPM models see timesteps 0..T-1.
        const g = guidance && { ...guidance, interval: [s.guidance_low * (base.T - 1), s.guidance_high * (base.T - 1)] as const };
        const opts = { schedule, rng: rng.child('ddpm'), variance: c.learnSigma ? 'learned' as const : 'fixedLarge' as const, clipDenoised: true, guidance: g, onStep };
        return s.sampler === 'ddim' ? sampleDdim(fn, noise, y, opts) : sampleDdpm(fn, noise, y, opts);
      }
    }
  })(); // (B, config.inChannels, H, W)
  return state && state.imageChannels !== c.inChannels ? slice(drawn, 1, 0, state.imageChannels) : drawn;
}
