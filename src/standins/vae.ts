// Training of the VAE stand-in (issue 5): a diffusers-layout KL-VAE (models/vae.ts, preset VAE-T
// by default: 32×32 → 4×8×8, f4; VAE-T beats VAE-P at an equal wall-clock budget of minutes on
// two CPU cores, see docs/models/vae.md) trained from scratch on Fashion-MNIST or the built-in shapes with
// the L1 + 1e-6·KL part of REPA-E's VAE loss (methods/repa-e/pieces.ts vaeRegLoss; REPA-E adds its
// perceptual and GAN terms when it takes the file over, this stand-in is trained without them), AdamW, linear warm-up and a cosine lr. Then the latent statistics
// over a seeded subset of the training split become SD-style scaling_factor (1/std) and
// shift_factor (mean) in the file's metadata, which loadSdVae and REPA-E's BN init read, and the
// reconstruction error (MSE, PSNR, L1) is measured on the test split with the posterior mean.
// A wall-clock budget is turned into a step count before training starts (timed forward/backward
// passes that update nothing), so `--steps N` replays a budgeted run exactly.
// Not here: the command line (cli/standin.ts), loading (models/sdVae.ts loadSdVae).
import { Rng } from '../tensor/rng.ts';
import { empty, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { backward, gaussianKL, noGrad } from '../autograd/index.ts';
import { AdamW, clipGradNorm, cosineSchedule } from '../optim/index.ts';
import { Loader, openDataset, sampleSize, type ImageDataset } from '../data/index.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { createVAE, parseVAEConfig, VAE, vaePreset, type VAEConfig } from '../models/vae.ts';
import { vaeRegLoss, type VaeRegWeights } from '../methods/repa-e/pieces.ts';

export type VaeStandinData = 'fashion-mnist' | 'builtin';
export const VAE_STANDIN_DATA: readonly VaeStandinData[] = ['fashion-mnist', 'builtin'];

/** Tag in __metadata__.standin (the layout itself is diffusers' AutoencoderKL, format as saveSdVae). */
export const VAE_STANDIN_FORMAT = 'diffactor.standin.vae/1';

/** builtin: the spec default `data.builtin_count` (20 000) with seed 0, and the dataset's 2 000 test images. */
export const BUILTIN_TRAIN_COUNT = 20_000;

export function openVaeData(data: VaeStandinData, split: 'train' | 'test', count?: number): ImageDataset {
  if (!VAE_STANDIN_DATA.includes(data)) throw new Error(`VAE stand-in: --data must be one of ${VAE_STANDIN_DATA.join(', ')}, got '${data}'`);
  if (data === 'builtin') return openDataset('builtin', { split, size: 32, seed: 0, count: count ?? (split === 'train' ? BUILTIN_TRAIN_COUNT : undefined) });
  return openDataset('fashion-mnist', { split, size: 32 });
}

//################################################################################
//                                  One step                                     #
//################################################################################

export interface VaeStepResult { loss: number; l1: number; kl: number; gradNorm: number }

/**
 * One AdamW update on l1·|x − x̂| + kl·KL with x̂ decoded from a posterior sample drawn from
 * `rng`; gradients clipped to `clip` (global norm). x: (B, C, H, W) in [−1, 1].
 */
export function vaeTrainStep(vae: VAE, opt: AdamW, x: Tensor, rng: Rng, w: VaeRegWeights, lrScale = 1, clip = 1): VaeStepResult {
  return tidy(() => {
    const out = vae.forward(x, rng); // recon (B, C, H, W), mean/logvar (B, L, h, w)
    const r = vaeRegLoss(x, out.recon, out, w);
    if (!Number.isFinite(r.l1) || !Number.isFinite(r.kl)) throw new Error(`VAE stand-in: loss became non-finite (L1 ${r.l1}, KL ${r.kl})`);
    backward(r.loss);
    const gradNorm = clipGradNorm(opt.params, clip);
    opt.step(lrScale);
    opt.zeroGrad();
    return { loss: r.loss.item(), l1: r.l1, kl: r.kl, gradNorm };
  });
}

//################################################################################
//                          Latent stats, test error                             #
//################################################################################

export interface LatentStats {
  /** Images encoded. */
  count: number;
  /** SD's scalar factors: diffusion sees (z − shift)·scale, scale = 1/std over every latent element. */
  shiftFactor: number;
  scalingFactor: number;
  /** Per latent channel, over images and positions. */
  channelMean: number[];
  channelStd: number[];
  /** Mean posterior σ = exp(logvar/2) over every element: how much noise the sampled z carries. */
  posteriorStd: number;
}

/** The indices of a seeded random subset of `count` of ds's samples, ascending. */
function subset(ds: ImageDataset, count: number, rng: Rng): Int32Array {
  const n = Math.min(count, ds.count);
  return rng.permutation(ds.count).subarray(0, n).sort();
}

function batchOf(ds: ImageDataset, idx: ArrayLike<number>, start: number, end: number): Tensor {
  const x = empty([end - start, ds.channels, ds.height, ds.width]); // (B, C, H, W)
  const sz = sampleSize(ds);
  for (let i = start; i < end; i++) ds.get(idx[i], x.data as Float32Array, (i - start) * sz);
  return x;
}

/**
 * Mean and std of posterior samples z = μ + σ·ξ (what REPA-E's BN normalises) over a seeded
 * subset of `count` images, accumulated in float64, globally and per channel.
 */
export function latentStatistics(vae: VAE, ds: ImageDataset, count: number, seed = 0, batchSize = 100): LatentStats {
  const rng = new Rng(seed).child('latent-stats');
  const idx = subset(ds, count, rng.child('subset'));
  const L = vae.config.latentChannels;
  const s1 = new Float64Array(L), s2 = new Float64Array(L);
  let perChannel = 0, sigma = 0;
  const was = vae.training;
  vae.eval();
  try {
    noGrad(() => {
      for (let b = 0; b < idx.length; b += batchSize) {
        tidy(() => {
          const end = Math.min(idx.length, b + batchSize);
          const p = vae.encode(batchOf(ds, idx, b, end), rng.child('noise').child(b)); // z (B, L, h, w)
          const [B, , h, w] = p.z.shape, hw = h * w;
          for (let i = 0; i < B; i++) {
            for (let c = 0; c < L; c++) {
              const o = (i * L + c) * hw;
              for (let k = 0; k < hw; k++) {
                const v = p.z.data[o + k];
                s1[c] += v;
                s2[c] += v * v;
                sigma += Math.exp(0.5 * p.logvar.data[o + k]);
              }
            }
          }
          perChannel += B * hw;
        });
      }
    });
  } finally {
    vae.train(was);
  }
  const channelMean = Array.from(s1, (s) => s / perChannel);
  const channelStd = Array.from(s2, (s, c) => Math.sqrt(Math.max(0, s / perChannel - channelMean[c] ** 2)));
  const n = perChannel * L;
  const mean = s1.reduce((a, v) => a + v, 0) / n;
  const std = Math.sqrt(Math.max(0, s2.reduce((a, v) => a + v, 0) / n - mean * mean));
  if (!(std > 0)) throw new Error(`VAE stand-in: latent std is ${std}; the encoder maps every image to one point`);
  return { count: idx.length, shiftFactor: mean, scalingFactor: 1 / std, channelMean, channelStd, posteriorStd: sigma / n };
}

export interface ReconstructionError {
  /** Test images measured. */
  count: number;
  /** Mean squared error per pixel value, images in [−1, 1]. */
  mse: number;
  /** 10·log10(peak² / mse) with peak-to-peak 2 (= PSNR of the images mapped to [0, 1]), from the mean MSE. */
  psnr: number;
  /** The same per image, averaged over images (how VAE papers usually report it). */
  psnrPerImage: number;
  /** Mean absolute error per pixel value, images in [−1, 1]. */
  l1: number;
  /** KL(q(z|x) ‖ N(0, I)) summed over a latent, averaged over images (the regulariser's value). */
  kl: number;
}

/** PSNR in dB of a per-value MSE for images in [−1, 1] (peak-to-peak 2). */
export const psnrOf = (mse: number): number => 10 * Math.log10(4 / mse);

/**
 * Reconstruction error of decode(posterior mean) on the first `count` images of ds (the whole
 * split by default): deterministic, as reconstruction is evaluated in SD-VAE's model cards.
 */
export function reconstructionError(vae: VAE, ds: ImageDataset, count = ds.count, batchSize = 100): ReconstructionError {
  const n = Math.min(count, ds.count);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  let se = 0, ae = 0, psnrSum = 0, klSum = 0;
  const was = vae.training;
  vae.eval();
  try {
    noGrad(() => {
      for (let b = 0; b < n; b += batchSize) {
        tidy(() => {
          const x = batchOf(ds, idx, b, Math.min(n, b + batchSize)); // (B, C, H, W)
          const p = vae.encode(x);
          const recon = vae.decode(p.mean);
          klSum += gaussianKL(p.mean, p.logvar, 'sum').item();
          const B = x.shape[0], per = x.size / B;
          for (let i = 0; i < B; i++) {
            let s = 0;
            for (let k = i * per; k < (i + 1) * per; k++) {
              const d = recon.data[k] - x.data[k];
              s += d * d;
              ae += Math.abs(d);
            }
            se += s;
            psnrSum += psnrOf(Math.max(s / per, 1e-12));
          }
        });
      }
    });
  } finally {
    vae.train(was);
  }
  const values = n * sampleSize(ds);
  return { count: n, mse: se / values, psnr: psnrOf(se / values), psnrPerImage: psnrSum / n, l1: ae / values, kl: klSum / n };
}

/** (2n, C, H, W): the first n test images, then their reconstructions (a 2-row grid with n columns). */
export function reconstructionPairs(vae: VAE, ds: ImageDataset, n: number): Float32Array {
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const was = vae.training;
  vae.eval();
  try {
    return noGrad(() => tidy(() => {
      const x = batchOf(ds, idx, 0, n);
      const recon = vae.decode(vae.encode(x).mean);
      const out = new Float32Array(2 * x.size);
      out.set(x.data, 0);
      out.set(recon.data, x.size);
      return out;
    }));
  } finally {
    vae.train(was);
  }
}

//################################################################################
//                                  Training                                     #
//################################################################################

export interface TrainVaeOptions {
  data: VaeStandinData;
  /** VAE preset (default VAE-T), fitted to the data's channels with 4 latent channels. */
  preset?: string;
  /** Exactly this many steps; otherwise `minutes` of training, turned into steps before it starts. */
  steps?: number;
  minutes?: number;
  batchSize?: number;
  /** Peak AdamW lr (default 2e-3; no weight decay, as REPA-E's VAE optimiser). */
  lr?: number;
  /** The cosine ends at lr·minLrRatio (default 0.1). */
  minLrRatio?: number;
  /** Regulariser weights (default REPA-E's: L1 1, KL 1e-6). */
  weights?: VaeRegWeights;
  clip?: number;
  seed?: number;
  /** Training images whose latents give the stats (default 10 000). */
  statsCount?: number;
  /** Test images measured (default the whole test split). */
  evalCount?: number;
  onStep?: (step: number, total: number, r: VaeStepResult & { lr: number }) => void;
  onPhase?: (phase: string) => void;
}

export interface TrainedVae {
  /** The trained VAE, its config carrying the measured scaling/shift factors. */
  model: VAE;
  steps: number;
  batchSize: number;
  /** Training wall time (s): the optimisation steps only (no calibration, stats or evaluation). */
  trainSeconds: number;
  /** Mean training loss over the first and last 20 steps. */
  firstLoss: number;
  lastLoss: number;
  stats: LatentStats;
  test: ReconstructionError;
  metadata: Record<string, string>;
}

const DEFAULTS = { preset: 'VAE-T', batchSize: 16, lr: 2e-3, minLrRatio: 0.1, weights: { l1: 1, kl: 1e-6 }, clip: 1, seed: 0, statsCount: 10_000 };

/**
 * Steps that fit in `minutes`: the median time of CALIBRATION forward/backward passes (no update)
 * of a model copy, the first two left out (buffer pool and JIT warm-up). The machine is shared, so
 * this is an estimate: the run then takes what the load allows, and reports it.
 */
function stepsForBudget(config: VAEConfig, train: ImageDataset, o: { minutes: number; batchSize: number; seed: number; weights: VaeRegWeights }): number {
  const CALIBRATION = 8;
  const probe = createVAE(config, o.seed + 1).train();
  const loader = new Loader(train, { batchSize: o.batchSize, seed: o.seed + 1 });
  const rng = new Rng(o.seed).child('calibration');
  const times: number[] = [];
  for (let s = 0; s < CALIBRATION; s++) {
    const t0 = performance.now();
    tidy(() => {
      const x = loader.next().x;
      const out = probe.forward(x, rng.child(s));
      backward(vaeRegLoss(x, out.recon, out, o.weights).loss);
      for (const p of probe.parameters()) p.grad = null;
    });
    times.push(performance.now() - t0);
  }
  // The optimiser step adds next to nothing to a forward/backward pass.
  const rest = times.slice(2).sort((a, b) => a - b);
  const per = rest[rest.length >> 1] / 1000;
  return Math.max(10, Math.floor((o.minutes * 60) / per));
}

/** The same weights under a config that carries the latent stats (what gets shipped). */
function withFactors(vae: VAE, stats: LatentStats): VAE {
  const m = new VAE(parseVAEConfig({ ...vae.config, scalingFactor: stats.scalingFactor, shiftFactor: stats.shiftFactor }), new Rng(0));
  m.loadStateDict(vae.stateDict(), true);
  return m.eval();
}

export function trainVae(opts: TrainVaeOptions): TrainedVae {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as typeof DEFAULTS & TrainVaeOptions;
  const train = openVaeData(o.data, 'train');
  const test = openVaeData(o.data, 'test');
  const config = vaePreset(o.preset, { inChannels: train.channels, outChannels: train.channels, latentChannels: 4 });
  let steps = o.steps;
  if (steps === undefined) {
    if (o.minutes === undefined || !(o.minutes > 0)) throw new Error('trainVae: give steps or a positive minutes budget');
    o.onPhase?.(`timing ${o.preset} at batch ${o.batchSize} for a ${o.minutes}-minute budget`);
    steps = stepsForBudget(config, train, { minutes: o.minutes, batchSize: o.batchSize, seed: o.seed, weights: o.weights });
  }
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`trainVae: steps must be a positive integer, got ${steps}`);

  const vae = createVAE(config, o.seed).train();
  const opt = new AdamW(vae.namedParameters(), { lr: o.lr, weightDecay: 0 });
  const warmup = Math.min(100, Math.floor(steps / 10));
  const schedule = cosineSchedule({ totalSteps: steps, warmupSteps: warmup, minFactor: o.minLrRatio });
  const loader = new Loader(train, { batchSize: o.batchSize, seed: o.seed });
  const noise = new Rng(o.seed).child('posterior');
  const losses: number[] = [];
  o.onPhase?.(`training ${o.preset} on ${train.name}: ${steps} steps at batch ${o.batchSize}`);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const lrScale = schedule(s);
    const r = tidy(() => vaeTrainStep(vae, opt, loader.next().x, noise.child(s), o.weights, lrScale, o.clip));
    losses.push(r.loss);
    o.onStep?.(s + 1, steps, { ...r, lr: o.lr * lrScale });
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const k = Math.min(20, losses.length);

  o.onPhase?.(`latent statistics over ${Math.min(o.statsCount, train.count)} training images`);
  const stats = latentStatistics(vae, train, o.statsCount, o.seed);
  const model = withFactors(vae, stats);
  o.onPhase?.(`reconstruction error on ${Math.min(o.evalCount ?? test.count, test.count)} test images`);
  const err = reconstructionError(model, test, o.evalCount ?? test.count);

  const c = model.config;
  const metadata: Record<string, string> = {
    // What saveSdVae writes, so loadSdVae / vaeConfigFor read groups and factors from here.
    format: 'diffusers-autoencoderkl',
    norm_num_groups: String(c.normNumGroups),
    scaling_factor: String(c.scalingFactor),
    shift_factor: String(c.shiftFactor),
    vae_config: JSON.stringify(c),
    // diffusers' AutoencoderKL config names for per-channel stats.
    latents_mean: JSON.stringify(stats.channelMean),
    latents_std: JSON.stringify(stats.channelStd),
    standin: VAE_STANDIN_FORMAT,
    training: JSON.stringify({
      data: o.data, train_images: train.count, preset: o.preset, steps, batch_size: o.batchSize, lr: o.lr,
      schedule: `warmup ${warmup}, cosine to ${o.minLrRatio}`, loss: `${o.weights.l1}·L1 + ${o.weights.kl}·KL`, grad_clip: o.clip,
      seed: o.seed, train_seconds: Math.round(trainSeconds), first_loss: avg(losses.slice(0, k)), last_loss: avg(losses.slice(-k)),
    }),
    latent_stats: JSON.stringify({ images: stats.count, of: 'posterior samples z', posterior_std: stats.posteriorStd }),
    test_reconstruction: JSON.stringify({ images: err.count, mse: err.mse, psnr_db: err.psnr, psnr_per_image_db: err.psnrPerImage, l1: err.l1, kl: err.kl, decoded_from: 'posterior mean' }),
  };
  return {
    model, steps, batchSize: o.batchSize, trainSeconds, firstLoss: avg(losses.slice(0, k)), lastLoss: avg(losses.slice(-k)),
    stats, test: err, metadata,
  };
}

/** Write the stand-in: diffusers AutoencoderKL keys (as saveSdVae) and the metadata above. */
export function saveVaeStandin(file: string, t: Pick<TrainedVae, 'model' | 'metadata'>): void {
  writeSafetensors(file, t.model.stateDict(), t.metadata);
}
