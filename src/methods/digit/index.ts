// DiGIT (Zhu et al., "Stabilize the Latent Space for Image Autoregressive Modeling", NeurIPS 2024,
// arXiv 2410.12490; official code github.com/DAMO-NLP-SG/DiGIT: preprocess/cluster_kmeans.py,
// fairseq_user/image_generation_stage1/model.py, config/stage1/dino_base.yaml; methods-b §8):
// images become discrete tokens — the k-means cluster ids of a frozen self-supervised encoder's
// patch features — and a GPT models them autoregressively, class-conditionally.
//   fit once   k-means++ + Lloyd (kmeans.ts) on the patch features of the first `kmeans_images`
//              training images, seeded by Rng(seed).child('digit-kmeans'); the codebook is the
//              model's buffer `tokenizer.centroids`, so every checkpoint (model and EMA) carries it
//              and resume and sampling use the same codes
//   tokens     nearest centroid of each patch feature (B, g·g), row-major over the grid; the
//              features are the encoder's final-norm patch tokens (`tokens: encoder`) or, for the
//              claim's control, the raw pixel patches (`tokens: raw-patches`, same K)
//   loss       L = CE_ε(GPT(class, codes), codes) (logged `ar`) + L2(decoder(codes), x) (`diff`:
//              the velocity term's slot holds the decoder's mean squared error — out = the decoded
//              image, target = x — so a step trains both with one backward; they share no weights)
//   sampling   model.ts: the GPT draws codes with temperature / top-k / top-p, the decoder renders
// Our choices and deviations (small scale): the encoder's final-norm patch tokens instead of the
// third-from-last block's (the shared encoder hands the engines those; DiGIT reads block L−3 then
// the final norm); stage 2 (an AR model over VQGAN codes + the VQGAN decoder) is replaced by the
// non-AR conv decoder from code embeddings that methods-b §8 names as the simpler substitute, trained
// in the same run on the true codes (so there is no separate stage); Adam settings, schedule and
// batch come from the spec's train section as for every method; no EOS (fixed length).
import { z } from 'zod';
import { noGrad } from '../../autograd/tape.ts';
import { Rng } from '../../tensor/rng.ts';
import { fromData, type Tensor } from '../../tensor/tensor.ts';
import type { SiTConfig } from '../../models/config.ts';
import type { BuildContext, MethodDefinition, SpecView, StudentForward, TrainingSet } from '../method.ts';
import { KMeansTokenizer } from './kmeans.ts';
import { nextTokenLoss } from './gpt.ts';
import { DigitModel, rawPatches, type DigitModelOptions } from './model.ts';

const positiveInt = z.number().int().positive();

export const DigitSection = z.strictObject({
  /** What the codes cluster: the frozen encoder's patch features (DiGIT), or raw pixel patches (the claim's control). */
  tokens: z.enum(['encoder', 'raw-patches']).default('encoder'),
  /** K, clusters = the GPT's code vocabulary (official 8192 base / 16384 large; small scale 256–512, methods-b §8). */
  codes: positiveInt.default(256),
  /** Training images whose patch features the k-means is fitted on, the first ones of the set (official: ~10% of ImageNet-train). */
  kmeans_images: positiveInt.default(256),
  /** Lloyd iterations after k-means++ (official faiss: 20). */
  kmeans_iters: z.number().int().min(0).default(20),
  /** Label smoothing ε of the next-token cross-entropy (official 0.1). */
  label_smoothing: z.number().min(0).max(1).default(0.1),
  /** Sampling temperature T (official 1.0; 0 = greedy). */
  temperature: z.number().min(0).default(1),
  /** Top-k at sampling (official stage 1: 200 of 8192 codes); null = every code. */
  top_k: positiveInt.nullable().default(null),
  /** Nucleus top-p at sampling (official stage 2: 0.8; 1 = off). */
  top_p: z.number().gt(0).max(1).default(1),
  /** The pixel decoder: code embedding width and conv width (ours). */
  decoder_embed: positiveInt.default(32),
  decoder_width: positiveInt.default(64),
});
export type DigitSection = z.infer<typeof DigitSection>;

function asDigit(model: unknown): DigitModel {
  if (!(model instanceof DigitModel)) throw new Error('digit: expected the DiGIT model');
  return model;
}

function featureDim(s: DigitSection, config: SiTConfig, encoderDim: number | null): number {
  if (s.tokens === 'raw-patches') return config.inChannels * config.patchSize ** 2;
  if (encoderDim === null) throw new Error('digit.tokens encoder: the codes need the encoder width (an encoder section)');
  return encoderDim;
}

function options(s: DigitSection, d: number): DigitModelOptions {
  return { codes: s.codes, featureDim: d, decoderEmbed: s.decoder_embed, decoderWidth: s.decoder_width, sampling: { temperature: s.temperature, topK: s.top_k, topP: s.top_p } };
}

/** The rows the codes cluster, (B, g·g, d): encoder patch tokens or raw patches of the images x. */
function featureRows(s: DigitSection, x: Tensor, patch: number, feats: Tensor | null): Tensor {
  if (s.tokens === 'raw-patches') return rawPatches(x, patch);
  if (!feats) throw new Error('digit: tokenizing needs the encoder\'s patch tokens');
  return feats;
}

/** The fits of this process, by what determines them (the EMA twin and the student share one). */
const fits = new Map<string, KMeansTokenizer>();

/** The k-means codebook fitted on the first kmeans_images training images (seeded by the spec's seed). */
export function fitCodebook(s: DigitSection, set: TrainingSet, patch: number, seed: number): KMeansTokenizer {
  const { data, encoder } = set;
  const count = Math.min(s.kmeans_images, data.count), per = data.channels * data.height * data.width, B = 64;
  const parts: Float32Array[] = [];
  let rows = 0, d = 0;
  for (let i0 = 0; i0 < count; i0 += B) {
    const b = Math.min(B, count - i0), buf = new Float32Array(b * per);
    for (let i = 0; i < b; i++) data.get(i0 + i, buf, i * per);
    const x = fromData(buf, [b, data.channels, data.height, data.width]);
    const f = noGrad(() => featureRows(s, x, patch, s.tokens === 'encoder' ? encoder.features(x).patch : null)); // (b, T, d)
    parts.push(Float32Array.from(f.data));
    rows += f.shape[0] * f.shape[1];
    d = f.shape[2];
  }
  if (s.codes > rows) throw new Error(`digit.codes ${s.codes} exceeds the ${rows} feature rows of digit.kmeans_images ${s.kmeans_images} images: fit on more images or use fewer codes`);
  const all = new Float32Array(rows * d);
  let o = 0;
  for (const t of parts) { all.set(t, o); o += t.length; }
  return KMeansTokenizer.fit(all, rows, d, { k: s.codes, iters: s.kmeans_iters }, new Rng(seed).child('digit-kmeans')).tokenizer;
}

function fitFor(s: DigitSection, c: BuildContext): KMeansTokenizer {
  if (!c.trainingSet) throw new Error('digit: building the model needs the training set (and the encoder) to fit the k-means codebook');
  const key = JSON.stringify([c.spec.seed, c.spec.data, c.spec.encoder, s.tokens, s.codes, s.kmeans_images, s.kmeans_iters, c.config.inputSize, c.config.patchSize]);
  let t = fits.get(key);
  if (!t) { t = fitCodebook(s, c.trainingSet(), c.config.patchSize, c.spec.seed); fits.set(key, t); }
  return t;
}

function check(s: DigitSection, spec: SpecView): void {
  if (spec.methods.length !== 1) throw new Error(`digit trains alone (an autoregressive token model has no velocity, hidden taps or teacher for other methods): methods must be [digit], got [${spec.methods.join(', ')}]`);
  const m = spec.model as { learn_sigma?: boolean; class_dropout_prob?: number };
  if (m.learn_sigma) throw new Error('digit: model.learn_sigma must be false (no diffusion)');
  if (s.tokens === 'encoder' && spec.encoder === undefined) throw new Error('digit.tokens encoder needs an encoder section (the frozen encoder whose patch features are clustered)');
  const sample = spec.sample as { cfg?: number };
  if (sample.cfg !== undefined && sample.cfg > 1) throw new Error(`digit samples without classifier-free guidance: sample.cfg must be 1, got ${sample.cfg}`);
}

export const digit: MethodDefinition<DigitSection> = {
  name: 'digit',
  title: 'DiGIT',
  cite: 'Zhu et al., Stabilize the Latent Space for Image Autoregressive Modeling (DiGIT), NeurIPS 2024 — arXiv 2410.12490, github.com/DAMO-NLP-SG/DiGIT (preprocess/cluster_kmeans.py, fairseq_user/image_generation_stage1/model.py)',
  section: { key: 'digit', schema: DigitSection },
  reads: ['encoder'],
  changes: ['input', 'target', 'backbone', 'objective'],
  check,
  drawLabel: (s) => `autoregressive, T ${s.temperature}, top-k ${s.top_k ?? 'all'}, top-p ${s.top_p} (one GPT call per code)`,
  backbone: {
    // The trained model fits the codebook; its copies (the EMA, the evaluator's) receive it: emaCopied, the weights.
    build: (s, c, seed) => {
      const m = new DigitModel(c.config, options(s, featureDim(s, c.config, c.encoderDim)), new Rng(seed));
      if (c.trainingSet) m.setCodebook(fitFor(s, c));
      return m;
    },
    fromWeights: (s, c, weights) => {
      const t = weights.get('tokenizer.centroids');
      if (!t || t.ndim !== 2) throw new Error('digit: the weights lack tokenizer.centroids (K, d), the codebook of a DiGIT model');
      if (t.shape[0] !== s.codes) throw new Error(`digit: the weights hold ${t.shape[0]} codes but digit.codes is ${s.codes}`);
      return new DigitModel(c.config, options(s, t.shape[1]), new Rng(0));
    },
    readsFeatures: true,
    emaCopied: (model) => [['tokenizer.centroids', asDigit(model).tokenizer.centroids]],
    forward: (s, model, b): StudentForward => {
      const m = asDigit(model);
      if (b.y.length === 0) throw new Error('digit: an empty batch');
      const rows = featureRows(s, b.input, m.config.patchSize, b.feats?.patch ?? null);
      const codes = m.codebook().assign(rows); // (B·N)
      const ar = nextTokenLoss(m.gpt.forward(codes, b.y), codes, s.label_smoothing);
      const recon = m.decoder.forward(codes); // (B, C, H, W)
      return { out: recon, target: b.input, hidden: new Map(), labels: Int32Array.from(b.y), terms: { ar: { value: ar, weight: 1 } } };
    },
  },
};
