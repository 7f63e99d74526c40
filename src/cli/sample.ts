// `diffactor sample`: draw a class-per-row PNG grid from a checkpoint's EMA (default) or raw weights.
import { loadCheckpoint } from '../train/checkpoint.ts';
import { backboneForCheckpoint } from '../train/methodParts.ts';
import { drawSamples, gridLabels, type SampleSettings } from '../train/draw.ts';
import { writePngGrid } from '../io/png.ts';
import { progressBar } from './progress.ts';
import { createVAE, vaeFactor } from '../models/vae.ts';
import { inferSdVaeConfig } from '../models/sdVae.ts';
import { vaeConfigFor } from '../train/setup.ts';
import { RepaESiT, decodeLatentSamples } from '../methods/repa-e/pieces.ts';

export interface SampleCliOptions {
  checkpoint: string; out: string; sampler?: SampleSettings['sampler']; steps?: number; cfg?: number;
  classes?: string; perClass?: number; seed?: number; raw?: boolean; guidanceLow?: number; guidanceHigh?: number;
}

export function sample(o: SampleCliOptions): void {
  const c = loadCheckpoint(o.checkpoint);
  const model = backboneForCheckpoint(c);
  model.loadStateDict(o.raw ? c.model : c.ema);
  const s: SampleSettings = {
    ...c.spec.sample,
    ...(o.sampler && { sampler: o.sampler }),
    ...(o.steps && { steps: o.steps }),
    ...(o.cfg !== undefined && { cfg: o.cfg }),
    ...(o.perClass && { per_class: o.perClass }),
    ...(o.guidanceLow !== undefined && { guidance_low: o.guidanceLow }),
    ...(o.guidanceHigh !== undefined && { guidance_high: o.guidanceHigh }),
  };
  const all = Array.from({ length: c.config.numClasses }, (_, i) => i);
  const classes = o.classes ? o.classes.split(',').map((v) => {
    const k = Number(v);
    if (!Number.isInteger(k) || k < 0 || k >= c.config.numClasses) throw new Error(`--classes: '${v}' is not a class index in 0..${c.config.numClasses - 1}`);
    return k;
  }) : all;
  let bar: ReturnType<typeof progressBar> | null = null;
  const imgs = drawSamples(model, s, {
    seed: o.seed ?? c.spec.seed,
    labels: gridLabels(classes, s.per_class),
    onStep: (i, n) => { bar ??= progressBar(n, `sample (${s.sampler}, ${s.steps} steps, cfg ${s.cfg})`); bar.update(i, {}); },
  });
  (bar as ReturnType<typeof progressBar> | null)?.stop();
  const cf = c.config, n = classes.length * s.per_class;
  if (model instanceof RepaESiT) {
    // REPA-E samples BN-normalised latents: de-normalise with the chosen weights' BN buffers and
    // decode with the jointly tuned VAE stored under `vae.`.
    if (!c.vae?.size) throw new Error(`${o.checkpoint}: a repa-e checkpoint without 'vae.' tensors; cannot decode its latents`);
    // The spec names the VAE (preset or file); the weights give its input size and channels.
    const shape = inferSdVaeConfig(c.vae, {}, { normNumGroups: 1 });
    const vae = createVAE(vaeConfigFor(c.spec, { channels: shape.inChannels, height: cf.inputSize * vaeFactor(shape) }), 0);
    vae.loadStateDict(c.vae);
    const images = decodeLatentSamples(vae.eval(), model.bn, imgs, n, cf.inputSize);
    const side = cf.inputSize * vaeFactor(vae.config);
    writePngGrid(o.out, images, n, vae.config.outChannels, side, side, s.per_class);
  } else {
    writePngGrid(o.out, imgs, n, cf.inChannels, cf.inputSize, cf.inputSize, s.per_class);
  }
  console.error(`wrote ${o.out}: ${classes.length} rows (classes ${classes.join(',')}) × ${s.per_class}`);
}
