// Training of the evaluation classifier stand-in: a small ResNet (models/classifier.ts) trained
// with labels by cross-entropy on Fashion-MNIST or the built-in shapes, with AdamW, a cosine lr
// and random shifts (crop with replicate padding), then measured on the test split and saved as
// safetensors whose __metadata__ carries the config, data, steps, wall time and accuracy.
// The classifier exists only to turn images into features for the metrics (FD, sFID, IS, PR);
// no training loss of any method may touch it. Not here: loading it and computing features
// (features.ts), the command line (cli/standin.ts).
import { Rng } from '../tensor/rng.ts';
import { fromData, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { backward, crossEntropy, noGrad } from '../autograd/index.ts';
import { AdamW, cosineSchedule } from '../optim/index.ts';
import { Loader, openDataset, sampleSize, type ImageDataset } from '../data/index.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { createClassifier, parseClassifierConfig, type Classifier, type ClassifierConfig } from '../models/classifier.ts';

export type StandinData = 'fashion-mnist' | 'builtin';
export const STANDIN_DATA: readonly StandinData[] = ['fashion-mnist', 'builtin'];

/** The format tag in __metadata__.format; features.ts refuses files without it. */
export const CLASSIFIER_FORMAT = 'diffactor.standin.classifier/1';

export interface TrainClassifierOptions {
  data: StandinData;
  /** Passes over the training split (the cosine lr spans them all). */
  epochs: number;
  /** Stop after this many steps (tests); the lr schedule still spans `epochs`. */
  maxSteps?: number;
  /** Default 32: at equal epochs, more updates beat bigger batches here (per-image cost is the same). */
  batchSize?: number;
  /** Peak AdamW lr (default 1e-3) and decoupled weight decay (default 0.05; none on BN and biases). */
  lr?: number;
  weightDecay?: number;
  /** Linear warm-up steps before the cosine (default 100, capped at a tenth of the steps). */
  warmupSteps?: number;
  /**
   * Random shift of up to ±cropPad pixels (random crop after replicate padding); 0 disables.
   * Default 0: this small net underfits in a few epochs, and ±2 px shifts cost accuracy (measured
   * 89.81% with them after 3 epochs; docs/models/classifier.md).
   */
  cropPad?: number;
  seed?: number;
  /** Channels and BasicBlocks per stage (default 16/32/64, one block each). */
  widths?: number[];
  blocks?: number[];
  /** builtin only: training / test sample counts (default 10 000 / 2 000). */
  trainCount?: number;
  testCount?: number;
  /** Accuracy on this many test images after each epoch (0: none; default 2000). */
  probeCount?: number;
  /** loss and acc are smoothed (EMA 0.98); batchLoss is this step's. */
  onStep?: (step: number, total: number, fields: { loss: number; acc: number; lr: number; batchLoss: number }) => void;
  onEpoch?: (epoch: number, probeAccuracy: number) => void;
}

export interface TrainedClassifier {
  model: Classifier;
  config: ClassifierConfig;
  steps: number;
  /** Training wall time (seconds), evaluation excluded. */
  trainSeconds: number;
  /** Accuracy on the whole test split, and its size. */
  testAccuracy: number;
  testCount: number;
  /** Smoothed training loss at the first and last step. */
  firstLoss: number;
  lastLoss: number;
  /** Probe accuracy after each epoch. */
  epochAccuracy: number[];
  metadata: Record<string, string>;
}

export function openStandinData(data: StandinData, split: 'train' | 'test', count?: number): ImageDataset {
  if (!STANDIN_DATA.includes(data)) throw new Error(`standin classifier: --data must be one of ${STANDIN_DATA.join(', ')}, got '${data}'`);
  return openDataset(data, { split, ...(data === 'builtin' && count !== undefined ? { count } : {}) });
}

/**
 * Shift one (C, H, W) sample at x[offset ..] in place: out[y][x] = in[y + dy][x + dx], reading
 * outside the image from the nearest edge pixel (a crop of the replicate-padded image).
 */
export function shiftInPlace(x: Float32Array, offset: number, c: number, h: number, w: number, dy: number, dx: number): void {
  if (dy === 0 && dx === 0) return;
  const plane = h * w, tmp = new Float32Array(plane);
  for (let ch = 0; ch < c; ch++) {
    const o = offset + ch * plane;
    tmp.set(x.subarray(o, o + plane));
    for (let y = 0; y < h; y++) {
      const sy = Math.min(h - 1, Math.max(0, y + dy)) * w;
      for (let xx = 0; xx < w; xx++) x[o + y * w + xx] = tmp[sy + Math.min(w - 1, Math.max(0, xx + dx))];
    }
  }
}

/**
 * Shift each sample of x (B, C, H, W) by (dy, dx) drawn uniformly from [-pad, pad]²: a random
 * crop with replicate padding. Fashion-MNIST's canvas has a −1 border, so there it equals padding
 * with the background. Returns the shifts (B, 2) as [dy, dx] pairs.
 */
export function randomShiftInPlace(x: Float32Array, b: number, c: number, h: number, w: number, pad: number, rng: Rng): Int32Array {
  const shifts = new Int32Array(2 * b);
  if (pad === 0) return shifts;
  const r = rng.uint32(new Uint32Array(2 * b));
  for (let i = 0; i < 2 * b; i++) shifts[i] = (r[i] % (2 * pad + 1)) - pad;
  for (let i = 0; i < b; i++) shiftInPlace(x, i * c * h * w, c, h, w, shifts[2 * i], shifts[2 * i + 1]);
  return shifts;
}

const argmax = (row: ArrayLike<number>): number => {
  let k = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[k]) k = j;
  return k;
};

/** What accuracy() needs of a model: the evaluation classifier, or the perceptual net (perceptual.ts). */
export interface LogitModel {
  readonly config: { readonly numClasses: number };
  eval(): unknown;
  forward(x: Tensor): { logits: Tensor };
}

/** Top-1 accuracy of model (switched to eval mode) on the first `limit` samples of ds. */
export function accuracy(model: LogitModel, ds: ImageDataset, limit = ds.count, batchSize = 250): number {
  const n = Math.min(limit, ds.count), sz = sampleSize(ds), k = model.config.numClasses;
  model.eval();
  let correct = 0;
  const buf = new Float32Array(batchSize * sz);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const y = new Int32Array(m);
    for (let i = 0; i < m; i++) y[i] = ds.get(s + i, buf, i * sz);
    correct += noGrad(() => tidy(() => {
      const logits = model.forward(fromData(buf.subarray(0, m * sz), [m, ds.channels, ds.height, ds.width])).logits.data;
      let c = 0;
      for (let i = 0; i < m; i++) if (argmax(logits.subarray(i * k, (i + 1) * k)) === y[i]) c++;
      return c;
    }));
  }
  return correct / n;
}

export function trainClassifier(o: TrainClassifierOptions): TrainedClassifier {
  const seed = o.seed ?? 0, batchSize = o.batchSize ?? 32, lr = o.lr ?? 1e-3, weightDecay = o.weightDecay ?? 0.05;
  const cropPad = o.cropPad ?? 0, probeCount = o.probeCount ?? 2000;
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new Error(`standin classifier: epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(cropPad) || cropPad < 0) throw new Error(`standin classifier: cropPad must be a non-negative integer, got ${cropPad}`);
  const train = openStandinData(o.data, 'train', o.trainCount);
  const test = openStandinData(o.data, 'test', o.testCount);
  const widths = o.widths ?? [16, 32, 64];
  const config = parseClassifierConfig({ inChannels: train.channels, numClasses: train.numClasses, widths, blocks: o.blocks ?? widths.map(() => 1) });
  const model = createClassifier(config, seed);
  const loader = new Loader(train, { batchSize, seed });
  const total = o.epochs * loader.batchesPerEpoch;
  const steps = Math.min(total, o.maxSteps ?? total);
  const warmupSteps = Math.min(o.warmupSteps ?? 100, Math.floor(total / 10));
  const schedule = cosineSchedule({ totalSteps: total, warmupSteps });
  // Decoupled weight decay on conv and fc weights only; BN scales/shifts and biases are not decayed.
  const opt = new AdamW(model.namedParameters(), { lr, weightDecay, groups: [{ match: (_n, p) => p.ndim === 1, weightDecay: 0 }] });
  const shiftRng = new Rng(seed).child('standin-classifier').child('shift');
  const { channels: C, height: H, width: W } = train;

  model.train();
  let ema = NaN, emaAcc = NaN, firstLoss = NaN;
  const epochAccuracy: number[] = [];
  const t0 = performance.now();
  let probeSeconds = 0;
  for (let step = 0; step < steps; step++) {
    const epoch = loader.epoch;
    const lrScale = schedule(step);
    const { loss, acc } = tidy(() => {
      const b = loader.next();
      randomShiftInPlace(b.x.data as Float32Array, batchSize, C, H, W, cropPad, shiftRng.child(step));
      const logits = model.forward(b.x).logits; // (B, K)
      const l = crossEntropy(logits, b.y);
      backward(l);
      opt.step(lrScale);
      opt.zeroGrad();
      let c = 0;
      for (let i = 0; i < batchSize; i++) if (argmax(logits.data.subarray(i * config.numClasses, (i + 1) * config.numClasses)) === b.y[i]) c++;
      return { loss: l.item(), acc: c / batchSize };
    });
    if (!Number.isFinite(loss)) throw new Error(`standin classifier: loss became ${loss} at step ${step + 1}`);
    if (step === 0) firstLoss = loss;
    ema = Number.isNaN(ema) ? loss : 0.98 * ema + 0.02 * loss;
    emaAcc = Number.isNaN(emaAcc) ? acc : 0.98 * emaAcc + 0.02 * acc;
    o.onStep?.(step + 1, steps, { loss: ema, acc: emaAcc, lr: lr * lrScale, batchLoss: loss });
    if (probeCount > 0 && loader.epoch !== epoch) {
      const p0 = performance.now();
      epochAccuracy.push(accuracy(model, test, probeCount));
      model.train();
      probeSeconds += (performance.now() - p0) / 1000;
      o.onEpoch?.(epoch + 1, epochAccuracy[epochAccuracy.length - 1]);
    }
  }
  const trainSeconds = (performance.now() - t0) / 1000 - probeSeconds;
  const testAccuracy = accuracy(model, test);
  const metadata: Record<string, string> = {
    format: CLASSIFIER_FORMAT,
    architecture: 'resnet (models/classifier.ts: 3x3 stem, BasicBlocks, global average pool, fc)',
    config: JSON.stringify(config),
    dataset: o.data,
    train_split: train.name,
    train_count: String(loader.pool.length),
    test_split: test.name,
    test_count: String(test.count),
    test_accuracy: testAccuracy.toFixed(4),
    epoch_probe_accuracy: JSON.stringify(epochAccuracy.map((a) => +a.toFixed(4))),
    input_shape: JSON.stringify([C, H, W]),
    input_range: '[-1, 1] float32, as src/data gives them',
    class_names: JSON.stringify(train.classNames),
    steps: String(steps),
    epochs: String(o.epochs),
    batch_size: String(batchSize),
    optimizer: JSON.stringify({ name: 'AdamW', lr, weightDecay, betas: [0.9, 0.999], schedule: 'cosine', warmupSteps, noDecay: 'BN and biases' }),
    augmentation: cropPad > 0 ? `random shift up to ±${cropPad} px (replicate padding), no flips` : 'none',
    seed: String(seed),
    train_seconds: trainSeconds.toFixed(1),
    first_loss: firstLoss.toFixed(4),
    final_loss_smoothed: ema.toFixed(4),
    date: new Date().toISOString(),
    purpose: 'evaluation features only (FD, sFID, IS, precision/recall); never in any training loss',
  };
  return { model, config, steps, trainSeconds, testAccuracy, testCount: test.count, firstLoss, lastLoss: ema, epochAccuracy, metadata };
}

/** Write the weights (state_dict names, BN statistics included) and metadata atomically. */
export function saveClassifier(file: string, t: Pick<TrainedClassifier, 'model' | 'metadata'>): void {
  writeSafetensors(file, t.model.stateDict(), t.metadata);
}
