// Draw class-conditional samples from a model with the sampler a spec names: the one place that
// maps SampleSpec to the diffusion samplers, used by the trainer's end-of-run grid and by
// `diffactor sample`. Images come back as (N, C, H, W) float32 in the data range [-1, 1]. A REG
// model samples with REG's SDE sampler (image and class-token streams; its class token starts from
// the stream's own N(0, I) draw and is discarded at the end).
import { sampleOde, sampleSde, sampleDdpm, sampleDdim, DdpmSchedule, spacedTimesteps, ddimTimesteps, type ModelFn } from '../diffusion/index.ts';
import { Rng } from '../tensor/rng.ts';
import { tensor, type Tensor } from '../tensor/tensor.ts';
import type { SiT } from '../models/sit.ts';
import { RegSiT } from '../models/reg.ts';
import { sampleSdeReg, type RegModelFn } from '../methods/regSampler.ts';
import type { RunSpec } from '../spec/schema.ts';

export type SampleSettings = RunSpec['sample'];

export interface DrawOptions {
  seed: number;
  /** Labels to draw, one sample each. */
  labels: readonly number[];
  /** Samples per model batch (memory bound). */
  batch?: number;
  onStep?: (done: number, total: number) => void;
}

/** Labels for a grid with one row per class: class c repeated perClass times, c = 0..K-1. */
export function gridLabels(classes: readonly number[], perClass: number): number[] {
  return classes.flatMap((c) => new Array<number>(perClass).fill(c));
}

export function drawSamples(model: SiT | RegSiT, s: SampleSettings, o: DrawOptions): Float32Array {
  const c = model.config;
  const reg = model instanceof RegSiT ? model : null;
  if (reg && s.sampler !== 'sde') throw new Error(`REG samples with its SDE sampler only (sample.sampler: sde), got ${s.sampler}`);
  const wasTraining = model.training;
  model.eval();
  const fn: ModelFn = (x, t, y) => (model as SiT).forward(x, t, y).out;
  const regFn: RegModelFn = (x, t, y, g) => {
    const r = reg!.forward(x, t, y, { cls: g });
    return { v: r.out, vg: r.cls };
  };
  const per = c.inChannels * c.inputSize * c.inputSize;
  const out = new Float32Array(o.labels.length * per);
  const root = new Rng(o.seed).child('sample');
  const B = o.batch ?? 100;
  const chunks = Math.ceil(o.labels.length / B);
  const guidance = s.cfg > 1 ? { scale: s.cfg, nullClass: c.numClasses, interval: [s.guidance_low, s.guidance_high] as const } : undefined;
  try {
    for (let k = 0; k < chunks; k++) {
      const labels = o.labels.slice(k * B, (k + 1) * B);
      const rng = root.child(k);
      const noise = rng.normal([labels.length, c.inChannels, c.inputSize, c.inputSize]);
      const y = tensor(labels, [labels.length]);
      const onStep = (i: number, n: number) => o.onStep?.(k * n + i, chunks * n);
      let x: Tensor;
      switch (s.sampler) {
        case 'euler': x = sampleOde(fn, noise, y, { steps: s.steps, guidance, onStep }); break;
        case 'heun': x = sampleOde(fn, noise, y, { steps: s.steps, heun: true, guidance, onStep }); break;
        case 'sde':
          x = reg
            ? sampleSdeReg(regFn, noise, rng.child('cls').normal([labels.length, reg.clsDim]), y, {
              steps: s.steps, rng: rng.child('sde'), clsRng: rng.child('sde-cls'), guidance, clsScale: s.cls_cfg, onStep,
            }).x
            : sampleSde(fn, noise, y, { steps: s.steps, rng: rng.child('sde'), guidance, onStep });
          break;
        case 'ddpm':
        case 'ddim': {
          const base = DdpmSchedule.linear();
          const schedule = base.respace(s.sampler === 'ddim' ? ddimTimesteps(base.T, s.steps) : spacedTimesteps(base.T, s.steps));
          // The guidance interval is given in flow time [0, 1]; DDPM models see timesteps 0..T-1.
          const g = guidance && { ...guidance, interval: [s.guidance_low * (base.T - 1), s.guidance_high * (base.T - 1)] as const };
          const opts = { schedule, rng: rng.child('ddpm'), variance: c.learnSigma ? 'learned' as const : 'fixedLarge' as const, clipDenoised: true, guidance: g, onStep };
          x = s.sampler === 'ddim' ? sampleDdim(fn, noise, y, opts) : sampleDdpm(fn, noise, y, opts);
          break;
        }
      }
      out.set(x.data, k * B * per);
    }
  } finally {
    model.train(wasTraining);
  }
  return out;
}
