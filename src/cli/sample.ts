// `diffactor sample`: draw a class-per-row PNG grid from a checkpoint's EMA (default) or raw weights.
import { loadCheckpointWith, pickWeights } from '../build/checkpoint.ts';
import { ownDrawLabel, samplesToImages, samplingModel, vaeForCheckpoint } from '../build/parts.ts';
import { checkSampler } from '../build/setup.ts';
import { drawSamples, gridLabels, type SampleSettings } from '../build/draw.ts';
import { writePngGrid } from '../io/png.ts';
import { progressBar } from '../progress.ts';
import { formatGridAccuracy, gridAccuracy, gridAccuracySkipped } from '../eval/gridAccuracy.ts';

export interface SampleCliOptions {
  checkpoint: string; out: string; sampler?: SampleSettings['sampler']; steps?: number; cfg?: number;
  classes?: string; perClass?: number; seed?: number; raw?: boolean; guidanceLow?: number; guidanceHigh?: number;
  /** `path=value` overrides of the checkpoint's spec (a method's sampling option: --set redi.rg_scale=1.5), validated like the file's. */
  set?: string[];
}

export function sample(o: SampleCliOptions): void {
  const c = loadCheckpointWith(o.checkpoint, o.set);
  // The checkpoint's spec fixes the sampler family (its objective, its methods); refuse another before any work.
  if (o.sampler) checkSampler(c.spec, o.sampler, '--sampler');
  const weights = pickWeights(c, o.checkpoint, o.raw ? 'raw' : undefined, 'ema', '--raw');
  const vae = vaeForCheckpoint(c, o.checkpoint);
  const model = samplingModel(c.spec, c.config, weights);
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
    onStep: (i, n) => { bar ??= progressBar(n, `sample (${ownDrawLabel(c.spec) ?? `${s.sampler}, ${s.steps} steps`}, cfg ${s.cfg})`); bar.update(i, {}); },
  });
  (bar as ReturnType<typeof progressBar> | null)?.stop();
  const n = classes.length * s.per_class;
  const { images, channels, side } = samplesToImages(c.spec, c.config, vae, weights, imgs, n);
  writePngGrid(o.out, images, n, channels, side, side, s.per_class);
  console.error(`wrote ${o.out}: ${classes.length} rows (classes ${classes.join(',')}) × ${s.per_class}`);
  // The same recognisability check as the end of `train`, when a classifier fits these images.
  const g = gridAccuracy(c.spec, c.spec.data.dataset, images, gridLabels(classes, s.per_class), channels, side, (why) => console.error(gridAccuracySkipped(why)));
  if (g) console.error(formatGridAccuracy(g));
}
