// `diffactor standin encoder`: trains the stand-in self-supervised encoder (DINO + iBOT, dino.ts)
// on a dataset's training images without their labels, for a number of steps or a wall-clock
// budget, writes the EMA teacher's backbone as DINOv2-layout safetensors (loadDinov2 reads it;
// REPA/REG name it in `encoder.checkpoint` with `normalization: identity`), then linear-probes it
// (probe.ts) against the same architecture at random init and against the specs' placeholder
// (ViT-P/4 from seed 0, what buildEncoder makes without a checkpoint), and writes those numbers
// with the run's facts to <out without .safetensors>.json. Not here: the objective (dino.ts).
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { Rng } from '../../tensor/rng.ts';
import { tidy } from '../../tensor/tidy.ts';
import { Loader, openDataset, sampleSize, type ImageDataset } from '../../data/index.ts';
import type { Plane } from '../../data/transforms.ts';
import { createViT, vitPreset, type ViT, type ViTConfig } from '../../models/vit.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { writeFileAtomic } from '../../io/atomic.ts';
import { progressBar } from '../../progress.ts';
import { DinoTrainer, OBJECTIVE_DESCRIPTIONS, sslConfig, type DinoConfig, type SslObjective, type StepStats } from './dino.ts';
import { extractFeatures, probeFeatures, type ProbeResult } from './probe.ts';

export interface TrainEncoderOptions {
  data: 'fashion-mnist' | 'builtin';
  /** Default 'contrastive' (see dino.ts sslConfig). */
  objective?: SslObjective;
  /** Wall-clock budget (schedules follow elapsed / budget). */
  minutes?: number;
  /** Step count (schedules follow step / steps; deterministic). Wins over minutes. */
  steps?: number;
  out: string;
  seed?: number;
  batchSize?: number;
  /** Probe sizes: training features (a seeded random subset) and test features; 0 skips probing. */
  probeTrain?: number;
  probeTest?: number;
  /** Architecture overrides of the encoder (default width 128, depth 4, 4 heads, patch 4). */
  embedDim?: number;
  depth?: number;
  numHeads?: number;
  /** Silence the progress bar and log (tests). */
  quiet?: boolean;
}

/** The encoder architecture: ViT-P/4's layout on 32×32 images with the dataset's channels. */
export function encoderConfig(ds: Pick<ImageDataset, 'channels'>, o: Pick<TrainEncoderOptions, 'embedDim' | 'depth' | 'numHeads'> = {}): ViTConfig {
  return vitPreset('ViT-P/4', { imgSize: 32, patchSize: 4, inChannels: ds.channels, embedDim: o.embedDim ?? 128, depth: o.depth ?? 4, numHeads: o.numHeads ?? 4 });
}

/** A batch's images as planes (copies, so they outlive the batch's pooled tensor). */
function planes(x: Float32Array, b: number, ds: ImageDataset): Plane[] {
  const sz = sampleSize(ds);
  return Array.from({ length: b }, (_, i) => ({ data: x.slice(i * sz, (i + 1) * sz), channels: ds.channels, height: ds.height, width: ds.width }));
}

export interface TrainLogEntry { step: number; seconds: number; loss: number; dino: number; ibot: number; contrast: number; patchContrast: number; koleo: number; teacherH: number; teacherRowH: number; lr: number }

export interface TrainEncoderResult {
  steps: number;
  seconds: number;
  log: TrainLogEntry[];
  trainer: DinoTrainer;
}

/** The DINO loop alone (no saving, no probe). */
export function runDino(ds: ImageDataset, config: DinoConfig, o: { steps?: number; minutes?: number; seed: number; batchSize: number; quiet?: boolean }): TrainEncoderResult {
  if (!o.steps && !o.minutes) throw new Error('standin encoder: give --steps or --minutes');
  const trainer = new DinoTrainer(config, o.seed);
  const loader = new Loader(ds, { batchSize: o.batchSize, seed: o.seed });
  const budget = o.steps ? 0 : o.minutes! * 60;
  const bar = o.quiet ? null : progressBar(o.steps ?? Math.round(budget), o.steps ? 'encoder step' : 'encoder seconds', o.steps ? Math.max(1, Math.floor(o.steps / 20)) : 30);
  const log: TrainLogEntry[] = [];
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  let smooth = NaN, lastBucket = 0;
  for (let step = 0; ; step++) {
    const p = o.steps ? step / o.steps : elapsed() / budget;
    if (p >= 1) break;
    const imgs = tidy(() => { const b = loader.next(); return planes(b.x.data as Float32Array, o.batchSize, ds); });
    const s: StepStats = trainer.step(imgs, p);
    smooth = Number.isNaN(smooth) ? s.loss : 0.9 * smooth + 0.1 * s.loss;
    if (step % 10 === 0) log.push({ step: step + 1, seconds: elapsed(), loss: s.loss, dino: s.dino, ibot: s.ibot, contrast: s.contrast, patchContrast: s.patchContrast, koleo: s.koleo, teacherH: s.teacherH, teacherRowH: s.teacherRowH, lr: s.sched.lr * config.lr });
    // The bar counts seconds in --minutes mode, so the step goes in the fields there.
    const fields: Record<string, number> = o.steps ? { loss: smooth } : { loss: smooth, step: step + 1 };
    if (!Number.isNaN(s.teacherH)) Object.assign(fields, { H: s.teacherH, Hrow: s.teacherRowH }); // DINO's collapse monitors
    if (o.steps) bar?.update(step + 1, fields);
    else {
      // Seconds as the bar's unit; a pipe gets one line per 30 s (the bar prints multiples of `every`).
      const sec = Math.min(Math.floor(elapsed()), Math.round(budget)), bucket = Math.floor(sec / 30) * 30;
      if (process.stderr.isTTY) bar?.update(sec, fields);
      else if (bucket > lastBucket) { lastBucket = bucket; bar?.update(bucket, fields); }
    }
  }
  bar?.stop();
  return { steps: trainer.steps, seconds: elapsed(), log, trainer };
}

export interface ProbeReport { patchMean: ProbeResult; cls: ProbeResult; seconds: number }

/** Ridge probes of one encoder on (mean patch token, class token). */
export function probeEncoder(vit: ViT, train: ImageDataset, test: ImageDataset, trainIdx: Int32Array, testIdx: Int32Array): ProbeReport {
  const t0 = performance.now();
  const ftr = extractFeatures(vit, train, trainIdx), fte = extractFeatures(vit, test, testIdx);
  return { patchMean: probeFeatures(ftr, fte, 'patchMean', train.numClasses), cls: probeFeatures(ftr, fte, 'cls', train.numClasses), seconds: (performance.now() - t0) / 1000 };
}

/** Train, save, probe, report. */
export function trainEncoder(o: TrainEncoderOptions): Record<string, unknown> {
  const seed = o.seed ?? 0, batchSize = o.batchSize ?? 64;
  const train = openDataset(o.data, { split: 'train', ...(o.data === 'builtin' ? { count: 20000 } : {}) });
  const test = openDataset(o.data, { split: 'test' });
  const vit = encoderConfig(train, o);
  const objective = o.objective ?? 'contrastive';
  const config = sslConfig(vit, objective);
  const say = (s: string) => { if (!o.quiet) console.error(s); };
  say(`standin encoder: ${objective} on ${train.name} (${train.count} images, labels unused), ViT ${vit.embedDim}x${vit.depth} (${vit.numHeads} heads, patch ${vit.patchSize}), ` +
    `batch ${batchSize}, ${config.multiCrop.localCrops} local crops, ${o.steps ? `${o.steps} steps` : `${o.minutes} min`}`);
  const r = runDino(train, config, { steps: o.steps, minutes: o.minutes, seed, batchSize, quiet: o.quiet });
  const backbone = r.trainer.teacher.backbone;
  mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  const facts = {
    format: 'dinov2', num_heads: String(vit.numHeads), vit_config: JSON.stringify(vit),
    objective: `${objective}: ${OBJECTIVE_DESCRIPTIONS[objective]}`,
    dataset: o.data, steps: String(r.steps), wall_seconds: r.seconds.toFixed(1), seed: String(seed), batch_size: String(batchSize),
    normalization: 'identity (images in [-1, 1])',
  };
  writeSafetensors(o.out, backbone.stateDict(), facts);
  say(`standin encoder: ${r.steps} steps in ${(r.seconds / 60).toFixed(1)} min; wrote ${o.out}`);

  const report: Record<string, unknown> = { ...facts, vit_config: vit, dino_config: { ...config, vit: undefined }, log: r.log };
  if ((o.probeTrain ?? 10000) > 0) {
    const nTr = Math.min(o.probeTrain ?? 10000, train.count), nTe = Math.min(o.probeTest ?? test.count, test.count);
    const trainIdx = new Rng(seed).child('probe').permutation(train.count).subarray(0, nTr);
    const testIdx = Int32Array.from({ length: nTe }, (_, i) => i);
    const probes: Record<string, ProbeReport> = {};
    probes.trained = probeEncoder(backbone, train, test, trainIdx, testIdx);
    probes.random_init_same_arch = probeEncoder(createViT(vit, seed), train, test, trainIdx, testIdx);
    probes.placeholder_vit_p4 = probeEncoder(createViT(vitPreset('ViT-P/4', { imgSize: 32, patchSize: 4, inChannels: train.channels }), 0), train, test, trainIdx, testIdx);
    report.probe = { method: 'eval/linearProbe.ts: logistic regression on z-scored features, L-BFGS in float64, l2 1e-4', train_samples: nTr, test_samples: nTe, ...probes };
    for (const [k, v] of Object.entries(probes)) say(`probe ${k}: mean patch ${(100 * v.patchMean.accuracy).toFixed(2)}%, cls ${(100 * v.cls.accuracy).toFixed(2)}%`);
  }
  const json = o.out.replace(/\.safetensors$/, '') + '.json';
  writeFileAtomic(json, JSON.stringify(report, null, 1) + '\n');
  say(`standin encoder: report ${json}`);
  return report;
}
