// ReDi (Kouzelis et al., "Boosting Generative Image Modeling via Joint Image-Feature Synthesis",
// NeurIPS 2025, arXiv 2504.16064; github.com/zelaki/ReDi train_redi.py, models.py,
// transport/transport.py, calc_pca.py, sample_ddp.py): one SiT denoises the image and r PCA
// channels of the frozen encoder's features jointly. No alignment loss: the features are extra
// channels of the diffused state.
//   fit once    μ, σ and the PCA of the encoder's tokens on `pca_images` training images (pca.ts),
//               held by the model as buffers `pca.*` (so every checkpoint carries them)
//   state       [x (C ch) ; z (r ch)], z = PCA of the tokens (B, r, g, g) bilinearly upsampled
//               to the image grid (H, W) — this repo diffuses pixels, so H = W = data.size
//   drop        one U(0,1) draw per batch: below drop_prob the clean z is 0 and λ = 0
//   loss        L_diff (image channels; logged `diff`) + λ·L_feat (feature channels; `feat`)
//   sampling    all C + r channels from noise; the image is channels [:C]; representation
//               guidance with rg_scale (model.ts samplingVelocity); CFG on all channels, or on
//               the image's only with cfg_image_only (--cfg-vae)
// Time: ReDi's code has t = 1 data (time.ts); diffactor's t = 0 data is used throughout (the two
// paths are the same at t ↦ 1 − t with the velocity negated; test/methods/redi.test.ts checks it
// against the PyTorch fixture written in ReDi's convention).
// Our choices where the small scale differs: pixels instead of an SD-VAE latent; the project's
// stand-in encoder instead of DINOv2-B/14-reg; the fit on the first `pca_images` training images
// (official: 300 batches × 256), in float64 with the population std.
import { z } from 'zod';
import { noGrad } from '../../autograd/tape.ts';
import { concat, slice, upsampleBilinear } from '../../autograd/ops/index.ts';
import { fromData, zeros, type Tensor } from '../../tensor/tensor.ts';
import { flowTrainingPair, velocityLoss, type Interpolant } from '../../diffusion/index.ts';
import type { BuildContext, HiddenInputs, MethodDefinition, SpecView, TrainingSet } from '../method.ts';
import { RediSiT, createRediSiT } from './model.ts';
import { fitFeaturePca, type FeaturePca } from './pca.ts';
import { featureDropped, featureWeight } from './loss.ts';

const positiveInt = z.number().int().positive();

export const RediSection = z.strictObject({
  /** r, PCA channels diffused with the image (train_redi.py `--pca-rank` 8; the small-scale note: 2–8). */
  rank: positiveInt.default(8),
  /** λ of the feature part of the loss (1 in train_redi.py; 0 on a dropped batch). */
  feature_weight: z.number().min(0).default(1),
  /** p_drop: probability that a batch's clean features are zeroed (official default 0; 0.2 for RG, README). */
  drop_prob: z.number().min(0).max(1).default(0),
  /** w_r of representation guidance at sampling (sample_ddp.py; 1 = off). */
  rg_scale: z.number().min(0).default(1),
  /** CFG on the image channels only, the feature channels keep the conditional prediction (sample_ddp.py `--cfg-vae`, the headline's setting; default off as there). */
  cfg_image_only: z.boolean().default(false),
  /** Training images the statistics and the PCA are fitted on, the first ones of the set (ours; official 300 × 256). */
  pca_images: positiveInt.default(1024),
});
export type RediSection = z.infer<typeof RediSection>;

const STREAM_DROP = 'redi-drop', STREAM_NOISE = 'redi-feature-noise';

function asRedi(model: unknown): RediSiT {
  if (!(model instanceof RediSiT)) throw new Error('redi: expected the ReDi SiT backbone');
  return model;
}

function check(s: RediSection, spec: SpecView): void {
  if (s.rg_scale !== 1 && s.drop_prob === 0) {
    throw new Error(`redi.rg_scale ${s.rg_scale} needs a model trained with feature drop: set redi.drop_prob > 0 (the README suggests 0.2)`);
  }
  if (spec.model.learn_sigma) throw new Error('redi trains a flow (velocity) model: model.learn_sigma must be false');
}

/** The fits of this process, by what determines them (the EMA twin and the student share one). */
const fits = new Map<string, FeaturePca>();

/** μ, σ and the PCA of the frozen encoder's patch tokens of the first n training images. */
export function fitOnTrainingSet(set: TrainingSet, n: number): FeaturePca {
  const { data, encoder } = set;
  const count = Math.min(n, data.count), per = data.channels * data.height * data.width, B = 64;
  const tokens: Float32Array[] = [];
  let rows = 0;
  for (let i0 = 0; i0 < count; i0 += B) {
    const b = Math.min(B, count - i0), buf = new Float32Array(b * per);
    for (let i = 0; i < b; i++) data.get(i0 + i, buf, i * per);
    const f = encoder.features(fromData(buf, [b, data.channels, data.height, data.width])).patch; // (b, T, d)
    tokens.push(Float32Array.from(f.data));
    rows += f.shape[0] * f.shape[1];
  }
  const all = new Float32Array(rows * encoder.dim);
  let o = 0;
  for (const t of tokens) { all.set(t, o); o += t.length; }
  return fitFeaturePca(all, rows, encoder.dim);
}

function fitFor(s: RediSection, c: BuildContext): FeaturePca {
  if (!c.trainingSet) throw new Error('redi: building the model needs the training set and the encoder to fit the PCA');
  const key = JSON.stringify([c.spec.seed, c.spec.data, c.spec.encoder, s.pca_images, c.config.inputSize, c.config.patchSize]);
  let p = fits.get(key);
  if (!p) { p = fitOnTrainingSet(c.trainingSet(), s.pca_images); fits.set(key, p); }
  return p;
}

interface JointInputs { input: Tensor; eps: Tensor; t: Float64Array; feats: HiddenInputs['feats']; draws: HiddenInputs['draws'] }

/** The joint clean state [x ; z] (z zero on a dropped batch), the joint noise [ε ; ε_z] → x_t and the target. */
export function jointPair(model: RediSiT, b: JointInputs, path: Interpolant): { xt: Tensor; target: Tensor } {
  if (!b.feats) throw new Error('redi: the forward needs the encoder\'s patch tokens');
  const d = b.draws.redi as { dropped: boolean; epsZ: Tensor };
  const [B, , H, W] = b.input.shape;
  const zf = d.dropped ? zeros([B, model.rank, H, W]) : noGrad(() => {
    const g = model.pca.project(b.feats!.patch); // (B, r, g, g)
    return g.shape[2] === H && g.shape[3] === W ? g : upsampleBilinear(g, { size: [H, W] }); // (B, r, H, W)
  });
  return flowTrainingPair(path, concat([b.input, zf], 1), concat([b.eps, d.epsZ], 1), b.t); // (B, C + r, H, W)
}

export const redi: MethodDefinition<RediSection> = {
  name: 'redi',
  title: 'ReDi',
  cite: 'Kouzelis et al., ReDi, NeurIPS 2025 — arXiv 2504.16064, github.com/zelaki/ReDi (train_redi.py, models.py, transport/transport.py, calc_pca.py)',
  section: { key: 'redi', schema: RediSection },
  reads: ['encoder'],
  changes: ['input', 'backbone'],
  streams: [STREAM_DROP, STREAM_NOISE],
  check,
  // One drop decision per batch; ε_z ~ N(0, I) for the feature channels (B, r, H, W).
  draw: (s, v, rngs) => {
    const [B, , H, W] = v.input.shape;
    return { dropped: featureDropped(rngs[STREAM_DROP].uniformArray(1)[0], s.drop_prob), epsZ: rngs[STREAM_NOISE].normal([B, s.rank, H, W]) };
  },
  logged: (_s, v) => ({ feat_dropped: v.draws.redi.dropped ? 1 : 0 }),
  backbone: {
    // The trained model fits the PCA; its copies (the EMA, the evaluator's) receive it: emaCopied, the weights.
    build: (s, c, seed) => {
      if (c.encoderDim === null) throw new Error('redi: the PCA channels need the encoder width');
      const m = createRediSiT(c.config, s.rank, c.encoderDim, seed);
      if (c.trainingSet) m.pca.set(fitFor(s, c));
      m.rgScale = s.rg_scale;
      m.cfgImageOnly = s.cfg_image_only;
      return m;
    },
    fromWeights: (s, c, weights) => {
      const p = weights.get('pca.components');
      if (!p || p.ndim !== 2) throw new Error('redi: the weights lack pca.components (r, d_enc), the PCA of a ReDi model');
      if (p.shape[0] !== s.rank) throw new Error(`redi: the weights hold ${p.shape[0]} PCA components but redi.rank is ${s.rank}`);
      const m = createRediSiT(c.config, s.rank, p.shape[1], 0);
      m.rgScale = s.rg_scale;
      m.cfgImageOnly = s.cfg_image_only;
      return m;
    },
    readsFeatures: true,
    emaCopied: (model) => [...asRedi(model).pca.stateDict()].map(([k, t]): [string, Tensor] => [`pca.${k}`, t]),
    forward: (s, model, b, path, dropout) => {
      const m = asRedi(model), C = m.imageChannels;
      const { xt, target } = jointPair(m, b, path);
      const o = m.forward(xt, b.t, b.y, { rng: dropout, taps: b.taps }); // (B, C + r, H, W)
      const feat = velocityLoss(slice(o.out, 1, C), slice(target, 1, C)).loss;
      return {
        out: slice(o.out, 1, 0, C), target: slice(target, 1, 0, C), hidden: o.hidden, labels: o.labels,
        terms: { feat: { value: feat, weight: featureWeight(s.feature_weight, b.draws.redi.dropped) } },
      };
    },
    // A teacher query (SRA) or an alignment pass sees the same joint state as the student.
    hidden: (_s, model, b, block, path) => {
      const m = asRedi(model);
      return m.hiddenAfter(jointPair(m, b, path).xt, b.t, b.y, block);
    },
  },
};
