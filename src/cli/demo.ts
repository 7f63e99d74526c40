// `diffactor demo` (the engine smoke test; `npm start` trains a SiT instead: `train --spec
// specs/start.yaml --out runs/start --fresh`, package.json): trains a two-layer MLP
// classifier on the built-in shapes dataset with the engine — shared tensors, tape autograd,
// native kernels when built, AdamW — and prints the loss falling and the held-out accuracy.
// It is a smoke test of the whole engine with real work, not a model anyone should use.
import { makeShapes, SHAPE_CLASSES } from '../data/shapes.ts';
import { Module } from '../nn/module.ts';
import { Rng } from '../tensor/rng.ts';
import { empty, type Tensor } from '../tensor/tensor.ts';
import { tidy } from '../tensor/tidy.ts';
import { backward, noGrad, crossEntropy, gelu, linear } from '../autograd/index.ts';
import { AdamW } from '../optim/adamw.ts';
import { backendInfo } from '../kernels/index.ts';
import { progressBar } from '../progress.ts';

const xavier = (rng: Rng, fanIn: number, fanOut: number) => (d: Float32Array | Float64Array) => {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  d.set(rng.uniformArray(d.length, -a, a));
};

class Dense extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(inDim: number, outDim: number, rng: Rng) {
    super();
    this.weight = this.param('weight', [outDim, inDim], xavier(rng, inDim, outDim));
    this.bias = this.param('bias', [outDim]);
  }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
}

class Mlp extends Module {
  readonly fc1: Dense;
  readonly fc2: Dense;
  constructor(inDim: number, hidden: number, classes: number, rng: Rng) {
    super();
    this.fc1 = this.child('fc1', new Dense(inDim, hidden, rng));
    this.fc2 = this.child('fc2', new Dense(hidden, classes, rng));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(gelu(this.fc1.forward(x))); // (B, hidden) -> (B, classes)
  }
}

export function demo(o: { steps: number; seed: number }): void {
  const nTrain = 4000, nTest = 1000, batch = 64;
  console.log(`diffactor demo: MLP on the built-in shapes set (${SHAPE_CLASSES.length} classes, 32×32 RGB), kernels: ${backendInfo.backend}${backendInfo.backend === 'native' ? ` (${backendInfo.isa}, ${backendInfo.threads} threads)` : ''}`);
  const train = makeShapes(nTrain, o.seed);
  const test = makeShapes(nTest, o.seed, nTrain);
  const dim = train.channels * train.height * train.width;
  const rng = new Rng(o.seed);
  const model = new Mlp(dim, 256, SHAPE_CLASSES.length, rng.child('init'));
  const opt = new AdamW(model.namedParameters(), { lr: 1e-3, weightDecay: 0 });
  const order = rng.child('order');
  let perm = order.permutation(nTrain), cursor = 0;

  const batchOf = (set: typeof train, idx: ArrayLike<number>): { x: Tensor; y: Int32Array } => {
    const x = empty([idx.length, dim]);
    const y = new Int32Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      x.data.set(set.images.subarray(idx[i] * dim, (idx[i] + 1) * dim), i * dim);
      y[i] = set.labels[idx[i]];
    }
    return { x, y };
  };

  const bar = progressBar(o.steps, 'train');
  const t0 = performance.now();
  let ema = NaN;
  const curve: string[] = [];
  for (let step = 1; step <= o.steps; step++) {
    if (cursor + batch > nTrain) { perm = order.permutation(nTrain); cursor = 0; }
    const loss = tidy(() => {
      const { x, y } = batchOf(train, perm.subarray(cursor, cursor + batch));
      const l = crossEntropy(model.forward(x), y);
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l.item();
    });
    cursor += batch;
    if (!Number.isFinite(loss)) throw new Error(`demo: loss became ${loss} at step ${step}`);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    bar.update(step, { loss: ema });
    if (step === 1 || step % Math.max(1, Math.floor(o.steps / 6)) === 0 || step === o.steps) curve.push(`${step}:${ema.toFixed(3)}`);
  }
  bar.stop();
  const secs = (performance.now() - t0) / 1000;
  const correct = noGrad(() => tidy(() => {
    let c = 0;
    for (let s = 0; s < nTest; s += 250) {
      const idx = Int32Array.from({ length: Math.min(250, nTest - s) }, (_, i) => s + i);
      const { x, y } = batchOf(test, idx);
      const logits = model.forward(x);
      for (let i = 0; i < idx.length; i++) {
        const row = logits.data.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === y[i]) c++;
      }
    }
    return c;
  }));
  console.log(`loss (smoothed) by step: ${curve.join('  ')}`);
  console.log(`held-out accuracy: ${(100 * correct / nTest).toFixed(1)}% on ${nTest} unseen images (chance 10%)  —  ${o.steps} steps in ${secs.toFixed(1)} s (${(o.steps / secs).toFixed(1)} it/s)`);
}
