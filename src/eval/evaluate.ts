// One evaluation of a diffusion model the way the papers measure it, on this project's stand-ins:
// samples of the (EMA) model against the test split through the evaluation classifier — Fréchet
// distance on pooled features, sFID on the spatial map, the Inception-Score analogue, k-NN
// precision/recall, class accuracy and confidence against the drawn labels (with the real images'
// as the ceiling) — and its representation: CKNNA between its hidden state (block `eval.block`,
// mean over tokens, at noise time `eval.t`, null label) and the frozen encoder's mean patch token
// on the same real images, and the linear-probe accuracy of that hidden state. `prepare` does the
// fixed work once (classifier, encoder, reference features, probe images); `run` measures a model.
// Every draw is seeded, so a checkpoint's numbers are reproducible.
// Not here: the metric formulas (frechet.ts, sfid.ts, ...), when to evaluate (the run machine).
import { existsSync } from 'node:fs';
import { noGrad } from '../autograd/tape.ts';
import { tidy } from '../tensor/tidy.ts';
import { Rng } from '../tensor/rng.ts';
import { fromData, type Tensor } from '../tensor/tensor.ts';
import { openDataset, type ImageDataset } from '../data/index.ts';
import { interpolate, interpolantByName } from '../diffusion/index.ts';
import { SiT } from '../models/sit.ts';
import { RegSiT } from '../models/reg.ts';
import { loadDinov2 } from '../models/dinov2.ts';
import type { SiTConfig } from '../models/config.ts';
import { vaeFactor, type VAE } from '../models/vae.ts';
import { FrozenEncoder } from '../methods/encoder.ts';
import { hiddenAfterBlock, isProbeable } from '../methods/partialForward.ts';
import { RepaESiT, decodeLatentSamples } from '../methods/repa-e/pieces.ts';
import { drawSamples, stepsForNfe, type SampleSettings } from '../build/draw.ts';
import { openTrainData } from '../build/setup.ts';
import { latentSpaceOf } from '../build/latentSpace.ts';
import { backboneHook, buildEncoder, jointVae, type Backbone } from '../build/parts.ts';
import { loadFeatureClassifier, type ClassifierFeatures, type FeatureClassifier } from '../standins/features.ts';
import type { RunSpec } from '../spec/schema.ts';
import type { FeatureMatrix } from './matrix.ts';
import { frechetFromFeatures } from './frechet.ts';
import { sfid } from './sfid.ts';
import { inceptionScore } from './inceptionScore.ts';
import { precisionRecall } from './precisionRecall.ts';
import { cknna } from './cknna.ts';
import { linearProbe } from './linearProbe.ts';
import { classAccuracy, type ClassAccuracy } from './classAccuracy.ts';

export type Metrics = Record<string, number>;

/** The sampler settings of an evaluation draw: the spec's sampler at eval.steps, or at the steps eval.nfe buys. */
export function evalSampleSettings(spec: RunSpec): SampleSettings {
  const e = spec.eval;
  const steps = e.nfe ? stepsForNfe(spec.sample.sampler, e.nfe) : e.steps;
  return { ...spec.sample, steps, cfg: e.cfg };
}

/** The stand-in file for a dataset (specs/standins/<kind>-<data>.safetensors), or an error saying how to make it. */
export function standinFile(kind: 'classifier' | 'encoder', data: string): string {
  const known = ['fashion-mnist', 'builtin'];
  if (!known.includes(data)) throw new Error(`no shipped ${kind} stand-in for dataset '${data}' (have: ${known.join(', ')}); set eval.${kind} to a file`);
  const file = new URL(`../../specs/standins/${kind}-${data}.safetensors`, import.meta.url).pathname;
  if (!existsSync(file)) throw new Error(`${file} not found; train it with \`npx diffactor standin ${kind} --data ${data} --out ${file}\``);
  return file;
}

/**
 * The files an evaluation reads for a spec on dataset `data`: eval.classifier or the shipped
 * stand-in; eval.encoder, else the run's own encoder file, else the shipped stand-in. Each is
 * resolved when called (a missing stand-in throws standinFile's error then).
 */
export function evalFiles(spec: RunSpec, data: string): { classifier: () => string; encoder: () => string } {
  const e = spec.eval;
  return {
    classifier: () => e.classifier ?? standinFile('classifier', data),
    encoder: () => e.encoder ?? spec.encoder?.checkpoint ?? standinFile('encoder', data),
  };
}

/**
 * Precision/recall take each point's eval.k-th nearest neighbour within its own set, so both the
 * samples and the reference need more than k points. `where` names the setting (eval.samples, --samples).
 */
export function checkEvalCount(n: number, k: number, where: string): void {
  if (n <= k) throw new Error(`eval: ${where} ${n} must exceed eval.k = ${k} (precision/recall's k nearest neighbours): use at least ${k + 1}`);
}

/** An image shape for messages: C×H×W. */
const chw = (s: readonly number[]) => s.join('×');

const matrix = (t: Tensor): FeatureMatrix => ({ data: t.data, n: t.shape[0], d: t.size / t.shape[0] });

/** Images [from, from + n) of a dataset as one (n, C, H, W) tensor (not pooled; the caller owns it). */
function images(ds: ImageDataset, from: number, n: number): { x: Tensor; y: Int32Array } {
  const per = ds.channels * ds.height * ds.width;
  const data = new Float32Array(n * per), y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = ds.get(from + i, data, i * per);
  return { x: fromData(data, [n, ds.channels, ds.height, ds.width]), y };
}

function meanTokens(h: Tensor): Float32Array {
  const [B, T, D] = h.shape; // (B, T, D) -> (B, D)
  const out = new Float32Array(B * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) out[b * D + d] += h.data[(b * T + t) * D + d] / T;
  return out;
}

export class Evaluation {
  private constructor(
    readonly spec: RunSpec,
    readonly config: SiTConfig,
    readonly classifier: FeatureClassifier,
    readonly encoder: FrozenEncoder,
    private readonly reference: ClassifierFeatures,
    private readonly probe: { train: { x: Tensor; y: Int32Array }; test: { x: Tensor; y: Int32Array } },
    /** The encoder's mean patch token of the probe's test images (CKNNA's other side). */
    private readonly encoderTest: FeatureMatrix,
    /**
     * REG: the run's own encoder, whose class token is an input of the model. It is not `encoder`
     * (CKNNA's, eval.encoder or the shipped stand-in) unless the spec names the same file.
     */
    readonly clsEncoder: FrozenEncoder | null,
    /** The classifier on the real reference images with their true labels: class accuracy's ceiling. */
    readonly realClass: ClassAccuracy,
  ) {}

  static prepare(spec: RunSpec, config: SiTConfig, o: { data?: string } = {}): Evaluation {
    const e = spec.eval;
    checkEvalCount(e.samples, e.k, 'eval.samples');
    checkEvalCount(e.reference, e.k, 'eval.reference');
    const name = o.data ?? spec.data.dataset;
    const dataWhere = o.data !== undefined ? `--data ${o.data}` : `data.dataset ${name}`;
    const test = openDataset(name, { split: 'test', size: spec.data.size, seed: spec.seed, count: name === 'builtin' ? Math.max(e.reference, e.probe_test) : undefined });
    // The model's samples, the real images and the classifier must share one image shape; a
    // mismatch otherwise surfaces as a tensor-length error deep in the feature pass.
    const dataShape = [test.channels, test.height, test.width];
    const space = latentSpaceOf(spec);
    const drawn = space ? [space.imageChannels, config.inputSize * space.factor, config.inputSize * space.factor] : [config.inChannels, config.inputSize, config.inputSize];
    if (!jointVae(spec) && chw(drawn) !== chw(dataShape)) {
      throw new Error(`eval: the model draws ${chw(drawn)} images but ${dataWhere} gives ${chw(dataShape)}: evaluate on the data it was trained on (${spec.data.dataset}, data.size ${spec.data.size})`);
    }
    const files = evalFiles(spec, name);
    const classifier = loadFeatureClassifier(files.classifier());
    if (chw(classifier.inputShape) !== chw(dataShape)) {
      throw new Error(`eval: the evaluation classifier ${files.classifier()} reads ${chw(classifier.inputShape)} images but ${dataWhere} gives ${chw(dataShape)}: set eval.classifier to one trained on such images (npx diffactor standin classifier)`);
    }
    const encFile = files.encoder();
    // The encoder reads the raw images at its own patch size: grid = image side / patch.
    const patch = loadDinov2(encFile).config.patchSize;
    const grid = Math.floor(spec.data.size / patch);
    const encoder = new FrozenEncoder(loadDinov2(encFile, { resampleTo: grid }), { normalization: spec.encoder?.normalization ?? 'identity', grid });
    if (test.count < Math.max(e.reference, e.probe_test)) throw new Error(`eval: the test split of ${name} has ${test.count} images; eval.reference and eval.probe_test must not exceed it`);
    const train = openTrainData(spec, o.data);
    const ref = images(test, 0, e.reference);
    const reference = classifier.features(ref.x, { spatialChannels: e.sfid_channels });
    const realClass = classAccuracy(matrix(reference.probs), ref.y);
    const probe = { train: images(train, 0, Math.min(e.probe_train, train.count)), test: images(test, 0, e.probe_test) };
    const encoderTest = { data: batched(probe.test.x, (x) => meanTokens(encoder.features(x).patch)), n: e.probe_test, d: encoder.dim };
    const clsEncoder = backboneHook(spec)?.hook.readsFeatures ? buildEncoder(spec, { channels: config.inChannels }, config) : null;
    return new Evaluation(spec, config, classifier, encoder, reference, probe, encoderTest, clsEncoder, realClass);
  }

  /**
   * Measure `model` (eval mode; the EMA teacher's weights). REPA-E: pass its VAE, which decodes
   * the BN-normalised latent samples and encodes the probe images (posterior mean).
   */
  run(model: SiT | RegSiT | Backbone, o: { vae?: VAE; onProgress?: (what: string) => void } = {}): Metrics {
    const e = this.spec.eval, K = this.config.numClasses;
    if (o.vae) {
      // REPA-E: the VAE decides the image shape (prepare could not see it).
      const v = o.vae.config, side = this.config.inputSize * vaeFactor(v), img = this.probe.test.x.shape.slice(1);
      if (chw([v.outChannels, side, side]) !== chw(img)) {
        throw new Error(`eval: the model's VAE draws ${chw([v.outChannels, side, side])} images but the evaluation data gives ${chw(img)}: evaluate on the data it was trained on (${this.spec.data.dataset}, data.size ${this.spec.data.size})`);
      }
    }
    model.eval();
    o.onProgress?.('samples');
    const labels = Array.from({ length: e.samples }, (_, i) => i % K);
    const settings = evalSampleSettings(this.spec);
    let imgs = drawSamples(model, settings, { seed: this.spec.seed + 7919, labels });
    const space = latentSpaceOf(this.spec);
    if (space) imgs = space.decode(imgs, labels.length, this.config.inputSize);
    if (model instanceof RepaESiT) {
      if (!o.vae) throw new Error('eval: a REPA-E model needs its VAE to decode the samples');
      imgs = decodeLatentSamples(o.vae, model.bn, imgs, labels.length, this.config.inputSize);
    }
    const [C, H, W] = this.classifier.inputShape;
    o.onProgress?.('features');
    const fake = this.classifier.features(fromData(imgs, [labels.length, C, H, W]), { spatialChannels: e.sfid_channels });
    const ref = this.reference;
    const spatial = (f: ClassifierFeatures) => ({ data: f.spatial.data, b: f.n, c: f.spatial.shape[1], h: f.spatial.shape[2], w: f.spatial.shape[3] });
    const pr = precisionRecall(matrix(ref.pooled), matrix(fake.pooled), { k: e.k, float64: true });
    const is = inceptionScore(matrix(fake.probs), { splits: Math.min(10, Math.floor(labels.length / K) || 1) });
    const cls = classAccuracy(matrix(fake.probs), labels);
    const samples = {
      fd: frechetFromFeatures(matrix(fake.pooled), matrix(ref.pooled)),
      sfid: sfid(spatial(fake), spatial(ref), { channels: e.sfid_channels }),
      is: is.mean,
      is_std: is.std,
      precision: pr.precision,
      recall: pr.recall,
      class_acc: cls.accuracy,
      class_conf: cls.confidence,
      class_acc_real: this.realClass.accuracy,
    };
    // A model without a hidden state of noised images (DiGIT's GPT) has no CKNNA or probe: left out.
    if (!isProbeable(model)) return samples;
    o.onProgress?.('representation');
    const hTrain = this.hidden(model, this.probe.train, o.vae);
    const hTest = this.hidden(model, this.probe.test, o.vae);
    const dim = hTest.length / e.probe_test;
    const probe = linearProbe({ trainX: hTrain, trainY: this.probe.train.y, testX: hTest, testY: this.probe.test.y, numClasses: K, dim });
    return { ...samples, cknna: cknna({ data: hTest, n: e.probe_test, d: dim }, this.encoderTest), probe: probe.accuracy };
  }

  /**
   * Mean hidden token after block `eval.block` of real images noised to `eval.t`, null label (a
   * model trained without label dropout has no null class: class 0 for every image, which tells the
   * probe nothing about the image's own class either).
   */
  private hidden(model: SiT | RegSiT | Backbone, set: { x: Tensor; y: Int32Array }, vae?: VAE): Float32Array {
    const e = this.spec.eval;
    const block = e.block ?? Math.ceil(this.config.depth / 3);
    const path = interpolantByName(this.spec.diffusion.path);
    const rng = new Rng(this.spec.seed).child('eval-probe');
    return batched(set.x, (x) => {
      const B = x.shape[0];
      let input = latentSpaceOf(this.spec)?.encode(x) ?? x; // a frozen latent space's model reads latents
      if (model instanceof RepaESiT) input = model.bn.forward(vae!.encode(x).mean); // eval-mode BN: running stats
      const t = new Float64Array(B).fill(e.t);
      const eps = rng.normal(input.shape);
      const xt = interpolate(path, input, eps, t);
      const nullLabel = new Int32Array(B).fill(this.config.classDropoutProb > 0 ? this.config.numClasses : 0);
      if (model instanceof RegSiT) {
        const cls = this.clsEncoder!.features(x).cls; // (B, d_enc), noised at the same t
        const gt = interpolate(path, cls, rng.normal(cls.shape), t);
        return meanTokens(model.forward(xt, t, nullLabel, { cls: gt, taps: [block] }).hidden.get(block)!);
      }
      return meanTokens(hiddenAfterBlock(model as SiT, xt, t, nullLabel, block));
    });
  }
}

/** fn over batches of 100 images under noGrad, outputs concatenated. */
function batched(x: Tensor, fn: (xb: Tensor) => Float32Array): Float32Array {
  const n = x.shape[0], per = x.size / n, parts: Float32Array[] = [];
  for (let s = 0; s < n; s += 100) {
    const m = Math.min(100, n - s);
    parts.push(noGrad(() => tidy(() => fn(fromData(x.data.subarray(s * per, (s + m) * per), [m, ...x.shape.slice(1)])))));
  }
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}
