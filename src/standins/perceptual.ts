// Training of the perceptual loss's feature net (models/perceptualNet.ts; loading is
// models/perceptualFile.ts, re-exported here), the stand-in for LPIPS' ImageNet VGG-16: a small
// VGG-style net trained here as a classifier (labels, cross-entropy) on Fashion-MNIST or the
// built-in shapes, then frozen. Its convolutional taps feed
// the LPIPS-like distance of models/perceptualLoss.ts (REPA-E's perceptual term).
// It is deliberately not the evaluation classifier (standins/classifier.ts): another architecture
// (plain convs, no BatchNorm, no residuals), another seed (1, not 0), another file
// (specs/standins/perceptual-<data>.safetensors) and format tag. A loss must never read the
// evaluator's features, or FD would grade samples by their own training target.
// The loop reuses the classifier's helpers (data, random shifts, accuracy) and its recipe (AdamW,
// warm-up + cosine, batch 32). Not here: the command line (scripts/train-perceptual.ts), the net,
// its loader and the distance (models/).
import { Rng } from '../tensor/rng.ts';
import { tidy } from '../tensor/tidy.ts';
import { backward, crossEntropy } from '../autograd/index.ts';
import { AdamW, cosineSchedule } from '../optim/index.ts';
import { Loader } from '../data/index.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { createPerceptualNet, parsePerceptualNetConfig, type PerceptualNet, type PerceptualNetConfig } from '../models/perceptualNet.ts';
import { PERCEPTUAL_FORMAT, freezePerceptualNet as freeze } from '../models/perceptualFile.ts';
import { accuracy, openStandinData, randomShiftInPlace, type StandinData } from './classifier.ts';

// Loading lives below the methods (models/perceptualFile.ts: REPA-E's VAE loss loads the net); re-exported here.
export { PERCEPTUAL_FORMAT, defaultPerceptualFile, loadPerceptualNet } from '../models/perceptualFile.ts';


export interface TrainPerceptualOptions {
  data: StandinData;
  /** Passes over the training split (default 1); ignored when `steps` is given. */
  epochs?: number;
  /** Total steps (the lr schedule spans them); default epochs × batches per epoch. */
  steps?: number;
  /** Default 32. */
  batchSize?: number;
  /** Peak AdamW lr (default 3e-3: 1e-3 reached 84.3% on Fashion-MNIST in 2 epochs, 3e-3 89.1%) and decoupled weight decay on conv / linear weights (default 0.05). */
  lr?: number;
  weightDecay?: number;
  /** Linear warm-up steps (default 100, at most a tenth of the steps). */
  warmupSteps?: number;
  /** Random shift of up to ±cropPad px (replicate padding); default 0. */
  cropPad?: number;
  /** Default 1 (the evaluation classifier uses 0). */
  seed?: number;
  /** Default 'VGG-P' widths (16, 32, 64) and two convs per stage. */
  widths?: number[];
  convsPerStage?: number;
  /** builtin only: training / test sample counts (default 10 000 / 2 000). */
  trainCount?: number;
  testCount?: number;
  /** loss and acc smoothed (EMA 0.98). */
  onStep?: (step: number, total: number, fields: { loss: number; acc: number; lr: number }) => void;
}

export interface TrainedPerceptual {
  model: PerceptualNet;
  config: PerceptualNetConfig;
  steps: number;
  /** Training wall time (seconds), evaluation excluded. */
  trainSeconds: number;
  testAccuracy: number;
  testCount: number;
  firstLoss: number;
  lastLoss: number;
  metadata: Record<string, string>;
}

const argmax = (row: ArrayLike<number>): number => {
  let k = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[k]) k = j;
  return k;
};

export function trainPerceptualNet(o: TrainPerceptualOptions): TrainedPerceptual {
  const seed = o.seed ?? 1, batchSize = o.batchSize ?? 32, lr = o.lr ?? 3e-3, weightDecay = o.weightDecay ?? 0.05, cropPad = o.cropPad ?? 0;
  const train = openStandinData(o.data, 'train', o.trainCount);
  const test = openStandinData(o.data, 'test', o.testCount);
  const config = parsePerceptualNetConfig({
    inChannels: train.channels, numClasses: train.numClasses, widths: o.widths ?? [16, 32, 64], convsPerStage: o.convsPerStage ?? 2,
  });
  const model = createPerceptualNet(config, seed);
  const loader = new Loader(train, { batchSize, seed });
  const epochs = o.epochs ?? 1;
  if (o.steps === undefined && (!Number.isInteger(epochs) || epochs < 1)) throw new Error(`standin perceptual: epochs must be a positive integer, got ${epochs}`);
  const steps = o.steps ?? epochs * loader.batchesPerEpoch;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`standin perceptual: steps must be a positive integer, got ${steps}`);
  const warmupSteps = Math.min(o.warmupSteps ?? 100, Math.floor(steps / 10));
  const schedule = cosineSchedule({ totalSteps: steps, warmupSteps });
  const opt = new AdamW(model.namedParameters(), { lr, weightDecay, groups: [{ match: (_n, p) => p.ndim === 1, weightDecay: 0 }] });
  const shiftRng = new Rng(seed).child('standin-perceptual').child('shift');
  const { channels: C, height: H, width: W } = train, K = config.numClasses;

  model.train();
  let ema = NaN, emaAcc = NaN, firstLoss = NaN;
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
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
      for (let i = 0; i < batchSize; i++) if (argmax(logits.data.subarray(i * K, (i + 1) * K)) === b.y[i]) c++;
      return { loss: l.item(), acc: c / batchSize };
    });
    if (!Number.isFinite(loss)) throw new Error(`standin perceptual: loss became ${loss} at step ${step + 1}`);
    if (step === 0) firstLoss = loss;
    ema = Number.isNaN(ema) ? loss : 0.98 * ema + 0.02 * loss;
    emaAcc = Number.isNaN(emaAcc) ? acc : 0.98 * emaAcc + 0.02 * acc;
    o.onStep?.(step + 1, steps, { loss: ema, acc: emaAcc, lr: lr * lrScale });
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  const testAccuracy = accuracy(model, test);
  freeze(model);
  const metadata: Record<string, string> = {
    format: PERCEPTUAL_FORMAT,
    architecture: 'VGG-style plain convs (models/perceptualNet.ts): stages of 3x3 conv + ReLU, 2x2 average pool between stages, global average pool, linear',
    config: JSON.stringify(config),
    taps: JSON.stringify(model.taps.map((i) => `features.${i}`)),
    dataset: o.data,
    train_split: train.name,
    train_count: String(loader.pool.length),
    test_split: test.name,
    test_count: String(test.count),
    test_accuracy: testAccuracy.toFixed(4),
    input_shape: JSON.stringify([C, H, W]),
    input_range: '[-1, 1] float32, as src/data gives them',
    steps: String(steps),
    epochs: (steps / loader.batchesPerEpoch).toFixed(2),
    batch_size: String(batchSize),
    optimizer: JSON.stringify({ name: 'AdamW', lr, weightDecay, betas: [0.9, 0.999], schedule: 'cosine', warmupSteps, noDecay: 'biases' }),
    augmentation: cropPad > 0 ? `random shift up to ±${cropPad} px (replicate padding)` : 'none',
    seed: String(seed),
    train_seconds: trainSeconds.toFixed(1),
    first_loss: firstLoss.toFixed(4),
    final_loss_smoothed: ema.toFixed(4),
    date: new Date().toISOString(),
    purpose: 'frozen features for the LPIPS-like perceptual loss (models/perceptualLoss.ts); a stand-in for LPIPS VGG-16; not the evaluation classifier',
  };
  return { model, config, steps, trainSeconds, testAccuracy, testCount: test.count, firstLoss, lastLoss: ema, metadata };
}

export function savePerceptualNet(file: string, t: Pick<TrainedPerceptual, 'model' | 'metadata'>): void {
  writeSafetensors(file, t.model.stateDict(), t.metadata);
}
