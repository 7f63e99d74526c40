// EPG (Wang et al., "Advancing End-to-End Pixel Space Generative Modeling via Self-supervised
// Pre-training", arXiv 2510.12586; official code github.com/AMAP-ML/EPG: rcm/rcm_denoiser.py,
// rcm/vit.py, train.py, gen_train.py; methods-b §7): a pixel-space generator with no VAE and no
// external encoder, in the VE/EDM σ convention (src/diffusion/ve.ts), in two stages, each its own
// spec and run:
//   stage 'pretrain'   (specs/epg-pretrain.yaml) the ViT encoder and a projector, per step with one
//                      ε for every term and ONE grid index i ~ U{0..N(k)−2} for the batch (N(k) the
//                      iCT curriculum s0 → s1 over K steps; σ = σ_i, σ′ = σ_{i+1}, σ0 = σ_{N−1}, ×shift):
//                        L = InfoNCE(p(v1 + σ0ε), sg p⁻(v2 + σ0ε)) + InfoNCE(p(v2 + σ0ε), sg p⁻(v1 + σ0ε))
//                          + InfoNCE(e(x + σε, σ), sg e(x + σ′ε, σ′))
//                      (logged `contrastive`, `consistency`), v1, v2 two seeded augmented views
//                      (augment.ts), p⁻ the EMA target (decay 0.99, updated every step; model.ts),
//                      the consistency target the ONLINE encoder's at σ′; τ 0.1 for both (the
//                      released config's constant schedules; `tau_schedule: interpolated` makes the
//                      consistency τ linear in the unshifted σ, loss.ts). The grid shows the view pairs.
//   stage 'diffusion'  (specs/epg.yaml) the encoder loaded from stage 1 (`init`) + a new decoder
//                      with U-ViT skips; σ = σ_i·shift with i the grid index (of `finetune_points`)
//                      nearest exp(P_mean + P_std·n), n ~ N(0, 1) per sample:
//                        L = mean_b ‖D(x + σ_bε, σ_b) − x‖²/(σ_i − σ_{i+1})   (`x0`; unshifted σ's)
//                      (the velocity slot `diff` logs the unweighted mean squared error, weight 0);
//                      sampled by its own Euler/Heun on the shifted Karras grid (sampler.ts).
//   stage 'consistency' (specs/epg-consistency.yaml) the same model and init as a consistency model
//                      f = c_skip·x + c_out·F, ECT's pairs (t, r) on one ε, target sg f(x + rε, r):
//                        L = mean_b ρ(f(x + t_bε, t_b) − sg f(x + r_bε, r_b))/(t_b − r_b)   (`cm`)
//                      ρ the pseudo-Huber (consistency.ts), + perceptual_weight·InfoNCE through the
//                      frozen stage-1 network (`perceptual`); one- or few-step sampling (sampler.ts).
// Ours (small scale, docs/methods.md "EPG"): mean over pixels instead of a sum (a constant factor);
// the projector MLP and the time token (model.ts); the augmentations (augment.ts; the official
// photometric ones that act on one channel behind epg.view_*, off by default); the stage-1 →
// stage-2 weights are the stage-1 run's EMA (`ema.online.encoder.*`).
import { z } from 'zod';
import { existsSync } from 'node:fs';
import { noGrad } from '../../autograd/tape.ts';
import { concat, mean, mul, slice, sub } from '../../autograd/index.ts';
import { readSafetensors } from '../../io/safetensors.ts';
import { Rng } from '../../tensor/rng.ts';
import { tensor, type Tensor } from '../../tensor/tensor.ts';
import type { SiTConfig } from '../../models/config.ts';
import { EDM, curriculumPoints, karrasSigmas, nearestGridIndex, veNoise, type KarrasGrid } from '../../diffusion/ve.ts';
import type { BuildContext, MethodDefinition, SpecView, StudentForward } from '../method.ts';
import { EpgModel, EpgOnline, EpgPretrainModel } from './model.ts';
import { augmentView, type Photometric } from './augment.ts';
import { infoNce, interpolatedTau, symmetricInfoNce, tauMaxAt } from './loss.ts';
import { consistencyObjective, ectR, ectStage, ectWeights } from './consistency.ts';

const STREAM = 'epg';
const positiveInt = z.number().int().positive();

export const EpgSection = z.strictObject({
  /**
   * Which stage this run trains: the self-supervised encoder ('pretrain'), the generator as an x0
   * diffusion model ('diffusion') or as a consistency model ('consistency', consistency.ts; one- or
   * few-step sampling).
   */
  stage: z.enum(['pretrain', 'diffusion', 'consistency']),
  /**
   * Stage 'diffusion': the stage-1 run to start the encoder from — its checkpoint (the EMA weights)
   * or a `diffactor export` of it. null: a seed-initialised encoder (no pre-training; tests, ablations).
   */
  init: z.string().min(1).nullable().default(null),
  /** The Karras grid (EDM: 0.002, 80, ρ 7) and σ_data (0.5). */
  sigma_min: z.number().positive().default(EDM.sigmaMin),
  sigma_max: z.number().positive().default(EDM.sigmaMax),
  rho: z.number().positive().default(EDM.rho),
  /** Every σ's factor; null: EPG's resolution shift H/64 (0.5 at 32 px). */
  shift: z.number().positive().nullable().default(null),
  /** Stage 1: iCT curriculum [s0, s1] (official 20 → 1280; methods-b §7's small-scale 10 → 320). */
  curriculum: z.tuple([positiveInt, positiveInt]).default([10, 320]),
  /** Stage 1: K of the curriculum; null: train.steps of the run. */
  curriculum_steps: positiveInt.nullable().default(null),
  /** Stage 1: the EMA target's decay, updated every step (official 0.99). */
  target_decay: z.number().min(0).max(1).default(0.99),
  /** Stage 1: InfoNCE temperature of both terms (released pretrain config: constant 0.1). */
  temperature: z.number().positive().default(0.1),
  /**
   * Stage 1: the consistency term's temperature (official rcm_denoiser.py get_tau): 'constant' is
   * `temperature` (the released config); 'interpolated' goes from `temperature` (τ_min, at σ_min) to
   * τ_max (at σ_max), linear in the unshifted σ̃ = σ·64/H. The contrastive term keeps `temperature`.
   */
  tau_schedule: z.enum(['constant', 'interpolated']).default('constant'),
  /** Stage 1, 'interpolated': τ_max, constant or the official cosine from tau_max towards tau_max_end over the curriculum's K steps. */
  tau_max: z.number().positive().default(0.1),
  tau_max_schedule: z.enum(['constant', 'cosine']).default('constant'),
  tau_max_end: z.number().positive().default(0.1),
  /** Stage 1: the projector's hidden and output width (official 4096 → 256; ours small). */
  projector_dim: positiveInt.default(256),
  projector_out: positiveInt.default(128),
  /** Stage 1: the views' smallest crop side, as a fraction of the image side (augment.ts). */
  crop_min: z.number().gt(0).max(1).default(0.8),
  /**
   * Stage 1: the views' photometric augmentation (augment.ts), default off. The official pair
   * (rcm/dataset.py): brightness and contrast jitter 0.4 with probability 0.8, blur σ 0.1–2 px
   * (at 224 px) with probability 1.0 on view 1 and 0.1 on view 2, solarize 0.2 on view 2.
   */
  view_brightness: z.number().min(0).default(0),
  view_contrast: z.number().min(0).max(1).default(0),
  view_jitter_p: z.number().min(0).max(1).default(0.8),
  view_blur: z.tuple([z.number().min(0), z.number().min(0)]).default([0, 0]),
  view_blur_p: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([1, 0.1]),
  view_solarize_p: z.number().min(0).max(1).default(0),
  /** Stage 1: images per class its grid shows as view pairs (the first ones of each class the training batches bring). */
  ref_per_class: positiveInt.default(4),
  /** Stage 2: decoder blocks (official: as many as the encoder); null: model.depth. */
  decoder_depth: positiveInt.nullable().default(null),
  /** Stage 2: lognormal σ draw (official P_mean −1.2, P_std 1.6) snapped to a grid of `finetune_points` (official 1280). */
  p_mean: z.number().default(-1.2),
  p_std: z.number().positive().default(1.6),
  finetune_points: z.number().int().min(2).default(1280),
  /**
   * Stage 'consistency' (consistency.ts): ECT's pair r(t) = t·(1 − q^{−s}·(1 + κ·sigmoid(−b·t))) at
   * stage s = δ before step d0, then +1 every d1 steps, with t ~ lognormal(p_mean, p_std) (the
   * official consistency config: P_mean −0.4, P_std 1.6, q 2, κ 8, b 1, d (100k, 100k) of 1M
   * steps, δ 1); ect_d null: a tenth of K (curriculum_steps, else train.steps) for each.
   */
  ect_q: z.number().gt(1).default(2),
  ect_k: z.number().min(0).default(8),
  ect_b: z.number().positive().default(1),
  ect_d: z.tuple([positiveInt, positiveInt]).nullable().default(null),
  ect_delta: z.number().int().min(0).default(1),
  /** Stage 'consistency': the pseudo-Huber's c over a whole sample (the released config 0.06; the class default 0.08). */
  huber_c: z.number().positive().default(0.06),
  /**
   * Stage 'consistency': the weight of the official perceptual term (0: off; the official script
   * adds it at 1, gen_train.py perceptual_model_path): InfoNCE(p(e(f(x_t), σ_min′)), sg p(e(x, σ_min′)))
   * at τ `temperature` through the FROZEN stage-1 encoder and projector of `init` (projector_dim
   * and projector_out as stage 1's), from ECT stage 1 on.
   */
  perceptual_weight: z.number().min(0).default(0),
  /**
   * Stage 'diffusion': what the network's output is (the official `diffusion.prediction_target`,
   * rcm/rcm_denoiser.py gen_denoise). 'x0' (the released configs/imagenet256_denoise.py): D = the
   * output. 'edm' (the class's default there): D = c_skip(σ)·x_σ + c_out(σ)·output with the
   * boundary scalings at σ_min·shift that the consistency stage uses (consistency.ts), so the
   * network need not carry x_σ through at low σ nor learn to drop it at high σ. The loss and the
   * sampler read D either way.
   */
  prediction: z.enum(['x0', 'edm']).default('x0'),
  /** Stage 2 sampling: guidance only for σ in (lo, hi] (official (0.19, 1.61]). */
  guidance_sigma: z.tuple([z.number().min(0), z.number().positive()]).default([0.19, 1.61]),
});
export type EpgSection = z.infer<typeof EpgSection>;

const gridOf = (s: EpgSection): KarrasGrid => ({ sigmaMin: s.sigma_min, sigmaMax: s.sigma_max, rho: s.rho });
const shiftOf = (s: EpgSection, c: SiTConfig): number => s.shift ?? c.inputSize / 64;

function asPretrain(m: unknown): EpgPretrainModel {
  if (!(m instanceof EpgPretrainModel)) throw new Error('epg: expected the stage-1 (pretrain) model');
  return m;
}

function asGenerator(m: unknown): EpgModel {
  if (!(m instanceof EpgModel)) throw new Error('epg: expected the stage-2 (diffusion) model');
  return m;
}

/** The encoder weights of a stage-1 file: a checkpoint's EMA `ema.online.encoder.*`, or an export's `online.encoder.*`. */
export function stageOneEncoder(file: string): Map<string, Tensor> {
  if (!existsSync(file)) throw new Error(`epg.init: ${file} does not exist: train stage 1 first (npx diffactor train --spec specs/epg-pretrain.yaml), or name its checkpoint or export`);
  const { tensors, metadata } = readSafetensors(file);
  const format = metadata?.format;
  const prefix = format === 'diffactor-checkpoint/1' ? 'ema.online.encoder.' : format === 'diffactor-weights/1' ? 'online.encoder.' : null;
  if (prefix === null) throw new Error(`epg.init: ${file} is not a diffactor checkpoint or weights file (format '${format}')`);
  const w = new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  if (w.size === 0) throw new Error(`epg.init: ${file} holds no ${prefix}* tensors: not an EPG stage 'pretrain' run`);
  return w;
}

/** The section's photometric view augmentation. */
export function photometricOf(s: EpgSection): Photometric {
  return { brightness: s.view_brightness, contrast: s.view_contrast, jitterP: s.view_jitter_p, blur: s.view_blur, blurP: s.view_blur_p, solarizeP: s.view_solarize_p };
}

/** The stage-1 online network (encoder + projector) of a stage-1 file: a checkpoint's EMA `ema.online.*`, or an export's `online.*`. */
export function stageOneOnline(file: string, config: SiTConfig, s: EpgSection): EpgOnline {
  if (!existsSync(file)) throw new Error(`epg.init: ${file} does not exist: train stage 1 first (npx diffactor train --spec specs/epg-pretrain.yaml), or name its checkpoint or export`);
  const { tensors, metadata } = readSafetensors(file);
  const format = metadata?.format;
  const prefix = format === 'diffactor-checkpoint/1' ? 'ema.online.' : format === 'diffactor-weights/1' ? 'online.' : null;
  if (prefix === null) throw new Error(`epg.init: ${file} is not a diffactor checkpoint or weights file (format '${format}')`);
  const w = new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  const net = new EpgOnline(config, s.projector_dim, s.projector_out, new Rng(0));
  try { net.loadStateDict(w); } catch (e) { throw new Error(`epg.perceptual_weight: the stage-1 network of ${file} does not fit (same model section and epg.projector_dim/projector_out as stage 1?): ${(e as Error).message}`); }
  for (const [, t] of net.namedParameters()) t.requiresGrad = false;
  return net.eval();
}

function pretrainModel(s: EpgSection, c: Pick<BuildContext, 'config' | 'spec'>, seed: number): EpgPretrainModel {
  const m = new EpgPretrainModel(c.config, { projectorDim: s.projector_dim, projectorOut: s.projector_out, refImages: s.ref_per_class, numClasses: c.config.numClasses }, new Rng(seed).child('model'));
  m.cropMin = s.crop_min;
  m.photometric = photometricOf(s);
  m.totalSteps = s.curriculum_steps ?? c.spec.train.steps;
  return m;
}

function generator(s: EpgSection, c: Pick<BuildContext, 'config' | 'spec'>, seed: number): EpgModel {
  const config = c.config;
  const m = new EpgModel(config, s.decoder_depth ?? config.depth, new Rng(seed).child('model'));
  m.sampling = { shift: shiftOf(s, config), grid: gridOf(s), interval: s.guidance_sigma };
  if (s.stage === 'consistency' || (s.stage === 'diffusion' && s.prediction === 'edm')) {
    m.boundary = { sigmaMin: s.sigma_min * shiftOf(s, config), sigmaData: EDM.sigmaData };
  }
  if (s.stage === 'consistency') {
    m.sampler = 'consistency';
    m.totalSteps = s.curriculum_steps ?? c.spec.train.steps;
  }
  return m;
}

function build(s: EpgSection, c: BuildContext, seed: number): EpgPretrainModel | EpgModel {
  if (s.stage === 'pretrain') {
    return pretrainModel(s, c, seed);
  }
  const m = generator(s, c, seed);
  if (s.stage === 'consistency' && s.perceptual_weight > 0 && s.init) m.perceptualNet = stageOneOnline(s.init, c.config, s);
  if (s.init) {
    try { m.encoder.loadStateDict(stageOneEncoder(s.init)); } catch (e) { throw new Error(`epg.init: ${s.init} does not fit this encoder (same model section as stage 1?): ${(e as Error).message}`); }
  }
  return m;
}

/** Stage 1's grid index and points of a step: N(k) with k = step − 1 completed steps, i = ⌊u·(N − 1)⌋. */
export function pretrainIndex(s: EpgSection, K: number, step: number, u: number): { points: number; index: number } {
  const [s0, s1] = s.curriculum;
  const points = curriculumPoints(Math.min(step - 1, K), K, s0, s1);
  return { points, index: Math.min(points - 2, Math.floor(u * (points - 1))) };
}

/** Stage 2's grid indices: the index of the unshifted grid nearest exp(P_mean + P_std·n), at most N − 2. */
export function finetuneIndices(s: EpgSection, normals: ArrayLike<number>): Int32Array {
  const g = karrasSigmas(s.finetune_points, 1, gridOf(s));
  return Int32Array.from(normals, (n) => nearestGridIndex(Math.exp(s.p_mean + s.p_std * n), g, s.finetune_points - 2));
}

/**
 * Stage 1's two terms for views v1, v2 of x (B, C, H, W), one ε: the online encoder on
 * [v1 + σ0ε; v2 + σ0ε; x + σε] (one forward), the projector on the views' e, `target` the EMA
 * target's projections of [v1 + σ0ε; v2 + σ0ε] (no gradient), the consistency target the online
 * encoder's e(x + σ′ε) under noGrad.
 */
export function pretrainLoss(online: EpgOnline, x: Tensor, eps: Tensor, v1: Tensor, v2: Tensor, sg: { sigma: number; sigmaNext: number; sigmaMin: number }, tau: number, target: (xs: Tensor, sigmas: Float64Array) => Tensor, tauConsistency: number = tau): { contrastive: Tensor; consistency: Tensor } {
  const B = x.shape[0], { sigma, sigmaNext, sigmaMin } = sg;
  const n1 = veNoise(v1, eps, new Float64Array(B).fill(sigmaMin)), n2 = veNoise(v2, eps, new Float64Array(B).fill(sigmaMin));
  const sig = new Float64Array(3 * B).fill(sigmaMin);
  sig.fill(sigma, 2 * B);
  const e = online.encoder.forward(concat([n1, n2, veNoise(x, eps, new Float64Array(B).fill(sigma))], 0), sig).e; // (3B, D)
  const p = online.projector.forward(slice(e, 0, 0, 2 * B)); // (2B, out)
  const t = target(concat([n1, n2], 0), new Float64Array(2 * B).fill(sigmaMin)); // (2B, out)
  const eNext = noGrad(() => online.encoder.forward(veNoise(x, eps, new Float64Array(B).fill(sigmaNext)), new Float64Array(B).fill(sigmaNext)).e);
  return {
    contrastive: symmetricInfoNce(slice(p, 0, 0, B), slice(p, 0, B, 2 * B), slice(t, 0, 0, B), slice(t, 0, B, 2 * B), tau),
    consistency: infoNce(slice(e, 0, 2 * B, 3 * B), eNext, tauConsistency),
  };
}

/**
 * Stage 1's consistency temperature at the step's (shifted) σ: `temperature` ('constant'), or the
 * interpolated τ at σ̃ = σ/shift with τ_max(k), k = step − 1 completed steps of K.
 */
export function consistencyTau(s: EpgSection, sigma: number, shift: number, step: number, K: number): number {
  if (s.tau_schedule === 'constant') return s.temperature;
  const tauMax = tauMaxAt(s.tau_max_schedule, Math.min(step - 1, K), K, s.tau_max, s.tau_max_end);
  return interpolatedTau(sigma / shift, s.temperature, tauMax, s.sigma_min, s.sigma_max);
}

/** Stage 1's loss terms on a batch: the step's grid pair, views and target update, then pretrainLoss. */
export function pretrainTerms(s: EpgSection, m: EpgPretrainModel, x: Tensor, y: ArrayLike<number>, eps: Tensor, d: { step: number; u: number; seed: number }): { contrastive: Tensor; consistency: Tensor; sigma: number; sigmaNext: number; sigmaMin: number; points: number; tau: number } {
  if (m.training) { m.advanceTarget(d.step, s.target_decay); m.keepReferences(x, y); }
  const { points, index } = pretrainIndex(s, m.totalSteps, d.step, d.u);
  const grid = karrasSigmas(points, shiftOf(s, m.config), gridOf(s));
  const sigma = grid[index], sigmaNext = grid[index + 1], sigmaMin = grid[points - 1];
  const rng = new Rng(d.seed);
  const photo = photometricOf(s);
  const v1 = augmentView(x, rng.child('view1'), s.crop_min, { p: photo, view: 1 }), v2 = augmentView(x, rng.child('view2'), s.crop_min, { p: photo, view: 2 });
  const tau = consistencyTau(s, sigma, shiftOf(s, m.config), d.step, m.totalSteps);
  const { contrastive, consistency } = pretrainLoss(m.online, x, eps, v1, v2, { sigma, sigmaNext, sigmaMin }, s.temperature, (xs, sig) => m.targetProjection(xs, sig), tau);
  return { contrastive, consistency, sigma, sigmaNext, sigmaMin, points, tau };
}

/** Stage 2's weighted x0 loss and the prediction D (epg.prediction), for grid indices idx (B). */
export function finetuneLoss(s: EpgSection, m: EpgModel, x: Tensor, eps: Tensor, idx: ArrayLike<number>, labels: Int32Array): { loss: Tensor; out: Tensor; sigmas: Float64Array; weights: Float64Array } {
  const g = karrasSigmas(s.finetune_points, 1, gridOf(s)), shift = shiftOf(s, m.config);
  const sigmas = Float64Array.from(idx, (i) => g[i] * shift);
  const weights = Float64Array.from(idx, (i) => 1 / (g[i] - g[i + 1]));
  const out = m.denoise(veNoise(x, eps, sigmas), sigmas, labels);
  const diff = sub(out, x);
  const w = tensor(Array.from(weights), [weights.length, 1, 1, 1], out.dtype);
  return { loss: mean(mul(mul(diff, diff), w)), out, sigmas, weights };
}

/** Stage 'consistency''s pairs (unshifted) of a step: t per sample from n ~ N(0, 1), r by ECT's stage after k = step − 1 of K steps. */
export function consistencyPairs(s: EpgSection, K: number, step: number, normals: ArrayLike<number>): { t: Float64Array; r: Float64Array; stage: number } {
  const tenth = Math.max(1, Math.ceil(K / 10));
  const stage = ectStage(Math.min(step - 1, K), s.ect_d ?? [tenth, tenth], s.ect_delta);
  const t = Float64Array.from(normals, (n) => Math.max(Math.exp(s.p_mean + s.p_std * n), s.sigma_min));
  const r = t.map((v) => ectR(v, stage, { q: s.ect_q, k: s.ect_k, b: s.ect_b, sigmaMin: s.sigma_min }));
  return { t, r, stage };
}

/**
 * Stage 'consistency''s loss: pred = f(x + tε, t), target = sg f(x + rε, r) from the same model (x at
 * stage 0), t and r ×shift, mean_b ρ(pred − target)/(t − r) (consistency.ts).
 */
export function consistencyLoss(s: EpgSection, m: EpgModel, x: Tensor, eps: Tensor, pairs: { t: Float64Array; r: Float64Array; stage: number }, labels: Int32Array): { loss: Tensor; pred: Tensor; target: Tensor; t: Float64Array; r: Float64Array; weights: Float64Array; perceptual: Tensor | null } {
  if (!m.boundary) throw new Error("epg consistencyLoss: the model has no consistency boundary (epg.stage must be 'consistency')");
  const shift = shiftOf(s, m.config);
  const t = pairs.t.map((v) => v * shift), r = pairs.r.map((v) => v * shift);
  const pred = m.denoise(veNoise(x, eps, t), t, labels);
  const target = pairs.stage === 0 ? x : noGrad(() => m.denoise(veNoise(x, eps, r), r, labels));
  const weights = ectWeights(t, r);
  const perceptual = s.perceptual_weight > 0 && pairs.stage !== 0 ? perceptualTerm(s, m, pred, x) : null;
  return { loss: consistencyObjective(pred, target, weights, s.huber_c), pred, target, t, r, weights, perceptual };
}

/** The official perceptual term: InfoNCE of the frozen stage-1 projections of the prediction and of x, both at σ_min′ (the target under noGrad). */
export function perceptualTerm(s: EpgSection, m: EpgModel, pred: Tensor, x: Tensor): Tensor {
  const net = m.perceptualNet;
  if (!net || !m.boundary) throw new Error("epg.perceptual_weight > 0 needs stage 'consistency' and the frozen stage-1 network of epg.init");
  const sMin = new Float64Array(x.shape[0]).fill(m.boundary.sigmaMin);
  const q = net.projector.forward(net.encoder.forward(pred, sMin).e);
  const k = noGrad(() => net.projector.forward(net.encoder.forward(x, sMin).e));
  return infoNce(q, k, s.temperature);
}

function check(s: EpgSection, spec: SpecView): void {
  if (spec.methods.length !== 1) throw new Error(`epg trains alone (a VE x0-prediction model in two stages, no velocity or hidden taps for other methods): methods must be [epg], got [${spec.methods.join(', ')}]`);
  if (spec.model.learn_sigma) throw new Error('epg predicts x0: model.learn_sigma must be false');
  const evalEvery = (spec.train as { eval_every?: number }).eval_every ?? 0;
  // Stage 2's model answers the evaluator's probe itself (EpgModel.hiddenAfter); stage 1 draws no samples.
  if (evalEvery > 0 && s.stage === 'pretrain') throw new Error(`epg: train.eval_every is ${evalEvery} but stage 'pretrain' trains an encoder that draws no samples to evaluate: set it to 0`);
  if (!(s.sigma_min < s.sigma_max)) throw new Error(`epg.sigma_min (${s.sigma_min}) must be below epg.sigma_max (${s.sigma_max})`);
  if (s.tau_schedule === 'interpolated' && s.tau_max_schedule === 'cosine' && !(s.tau_max > s.tau_max_end)) throw new Error(`epg.tau_max (${s.tau_max}) must exceed epg.tau_max_end (${s.tau_max_end}) with tau_max_schedule cosine (its lowest τ_max is tau_max − tau_max_end, which must stay > 0)`);
  if (s.view_blur[0] > s.view_blur[1]) throw new Error(`epg.view_blur must be [lo, hi] σ in pixels with lo ≤ hi, got [${s.view_blur.join(', ')}]`);
  if (s.curriculum[0] > s.curriculum[1]) throw new Error(`epg.curriculum must be [s0, s1] with s0 ≤ s1, got [${s.curriculum.join(', ')}]`);
  if (!(s.guidance_sigma[0] < s.guidance_sigma[1])) throw new Error(`epg.guidance_sigma must be [lo, hi] with lo < hi, got [${s.guidance_sigma.join(', ')}]`);
  const sampler = (spec.sample as { sampler: string }).sampler;
  if (s.prediction === 'edm' && s.stage !== 'diffusion') throw new Error(`epg.prediction 'edm' chooses stage 'diffusion''s output (stage 'consistency' always carries the boundary scalings; stage 'pretrain' predicts nothing), got stage '${s.stage}'`);
  if (s.perceptual_weight > 0 && (s.stage !== 'consistency' || !s.init)) throw new Error(`epg.perceptual_weight ${s.perceptual_weight} needs epg.stage 'consistency' and epg.init (the frozen stage-1 network), got stage '${s.stage}', init ${s.init}`);
  if (s.stage === 'consistency') {
    if (sampler !== 'euler') throw new Error(`epg stage 'consistency' draws with the consistency model's multistep sampler, named euler (sample.steps evaluations): sample.sampler must be euler, got ${sampler}`);
    const cfg = (spec.sample as { cfg?: number }).cfg ?? 1;
    if (cfg > 1) throw new Error(`epg stage 'consistency' samples without guidance: sample.cfg must be ≤ 1, got ${cfg}`);
  }
  if (sampler !== 'euler' && sampler !== 'heun') throw new Error(`epg samples with its own Euler or Heun sampler on the Karras grid: sample.sampler must be euler or heun, got ${sampler}`);
  if (s.stage === 'pretrain') {
    if (s.init) throw new Error("epg.init is read in stages 'diffusion' and 'consistency' only (stage 'pretrain' trains the encoder it would name)");
    if (spec.train.batch_size < 2) throw new Error(`epg stage 'pretrain' contrasts B ≥ 2 samples (InfoNCE of one sample is 0): train.batch_size is ${spec.train.batch_size}`);
  } else {
    const depth = (spec.model as { depth?: number }).depth;
    if (s.decoder_depth !== null && depth !== undefined && s.decoder_depth > depth) throw new Error(`epg.decoder_depth ${s.decoder_depth} exceeds model.depth ${depth} (decoder block j reads encoder block depth − j)`);
    const cfg = (spec.sample as { cfg?: number }).cfg ?? 1;
    const drop = (spec.model as { class_dropout_prob?: number }).class_dropout_prob;
    if (cfg > 1 && drop === 0) throw new Error('epg: sample.cfg > 1 needs the null class: model.class_dropout_prob must be > 0');
  }
}

export const epg: MethodDefinition<EpgSection> = {
  name: 'epg',
  title: 'EPG',
  cite: 'Wang et al., Advancing End-to-End Pixel Space Generative Modeling via Self-supervised Pre-training (EPG) — arXiv 2510.12586, github.com/AMAP-ML/EPG (rcm/rcm_denoiser.py, rcm/vit.py, train.py)',
  section: { key: 'epg', schema: EpgSection },
  changes: ['input', 'target', 'backbone', 'objective'],
  samplers: ['euler', 'heun'],
  streams: [STREAM],
  check,
  files: (s) => ({ 'epg.init': s.init }),
  // Stage 1: the batch's grid index (as u ∈ [0, 1)) and the views' seed; stage 2: n ~ N(0, 1) per sample, snapped to grid indices.
  draw: (s, v, rngs) => {
    const r = rngs[STREAM];
    if (s.stage === 'pretrain') return { step: v.step, u: r.uniformArray(1)[0], seed: r.randintArray(0, 0x7fffffff, 1)[0] };
    if (s.stage === 'consistency') return { step: v.step, n: Array.from(r.normalArray(v.x.shape[0])) };
    return { idx: Array.from(finetuneIndices(s, r.normalArray(v.x.shape[0]))) };
  },
  diffWeight: () => 0,
  backbone: {
    build: (s, c, seed) => build(s, c, seed),
    fromWeights: (s, c, weights) => {
      const pre = weights.has('online.encoder.cls_token');
      if (pre !== (s.stage === 'pretrain')) throw new Error(`epg: the weights are a stage '${pre ? 'pretrain' : 'diffusion'}' model but epg.stage is '${s.stage}'`);
      if (!pre && !weights.has('encoder.cls_token')) throw new Error('epg: the weights have no encoder.cls_token — not an EPG model');
      return s.stage === 'pretrain' ? pretrainModel(s, c, 0) : generator(s, c, 0);
    },
    // Stage 1's buffers (the EMA target, its step, the grid's images) are copied, not averaged.
    emaCopied: (model) => model.namedBuffers(),
    forward: (s, model, b, _path, dropout): StudentForward => {
      const x = b.input;
      if (s.stage === 'pretrain') {
        const m = asPretrain(model);
        const d = b.draws.epg as { step: number; u: number; seed: number };
        const r = pretrainTerms(s, m, x, b.y, b.eps, d);
        return { out: x, target: x, hidden: new Map(), labels: Int32Array.from(b.y), terms: { contrastive: { value: r.contrastive, weight: 1 }, consistency: { value: r.consistency, weight: 1 } } };
      }
      const m = asGenerator(model);
      if (s.stage === 'consistency') {
        const d = b.draws.epg as { step: number; n: number[] };
        const labels = m.dropLabels(b.y, dropout);
        const r = consistencyLoss(s, m, x, b.eps, consistencyPairs(s, m.totalSteps, d.step, d.n), labels);
        const terms: StudentForward['terms'] = { cm: { value: r.loss, weight: 1 } };
        if (s.perceptual_weight > 0) terms.perceptual = { value: r.perceptual ?? mul(r.loss, 0), weight: s.perceptual_weight };
        return { out: r.pred, target: r.target, hidden: new Map(), labels, terms };
      }
      const d = b.draws.epg as { idx: number[] };
      const labels = m.dropLabels(b.y, dropout);
      const { loss, out } = finetuneLoss(s, m, x, b.eps, d.idx, labels);
      return { out, target: x, hidden: new Map(), labels, terms: { x0: { value: loss, weight: 1 } } };
    },
  },
};
