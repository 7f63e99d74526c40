// The evaluation ResNet: shapes of logits / pooled features / feature maps, torchvision's key
// names (with BN running statistics), BatchNorm train vs eval behaviour inside the model, seed
// determinism, gradients to every parameter, and cross-entropy falling over 30 AdamW steps on the
// built-in shapes.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/tensor/rng.ts';
import { tensor, type Tensor } from '../../src/tensor/tensor.ts';
import { tidy } from '../../src/tensor/tidy.ts';
import { backward, crossEntropy, mean, noGrad } from '../../src/autograd/index.ts';
import { AdamW } from '../../src/optim/index.ts';
import { makeShapes } from '../../src/data/shapes.ts';
import { classifierPreset, createClassifier } from '../../src/models/classifier.ts';
import { expectClose } from '../kernels/expectClose.ts';

const cfg = classifierPreset('ResNet-T');
const batch = (b: number, seed: number): { x: Tensor; y: Int32Array } => {
  const s = makeShapes(b, seed);
  return { x: tensor(s.images, [b, 3, 32, 32]), y: s.labels };
};

describe('Classifier', () => {
  it('returns logits (B, K), pooled features (B, F) and the stage maps', () => {
    const m = createClassifier(cfg, 1);
    const out = m.forward(batch(3, 1).x);
    expect(out.logits.shape).toEqual([3, 10]);
    expect(out.features.shape).toEqual([3, 16]);
    expect(out.stages.map((s) => s.shape)).toEqual([[3, 8, 32, 32], [3, 16, 16, 16]]);
    expect(out.featureMap).toBe(out.stages[0]);
    // features are the spatial mean of the last stage
    const last = out.stages[1].data;
    let s = 0;
    for (let i = 0; i < 256; i++) s += last[(1 * 16 + 5) * 256 + i];
    expect(out.features.data[1 * 16 + 5]).toBeCloseTo(s / 256, 5);
  });

  it('uses torchvision resnet names, BN buffers included', () => {
    const keys = [...createClassifier(classifierPreset('ResNet-P'), 0).stateDict().keys()];
    for (const k of ['conv1.weight', 'bn1.running_mean', 'bn1.num_batches_tracked', 'layer1.1.conv2.weight', 'layer2.0.downsample.0.weight',
      'layer2.0.downsample.1.running_var', 'layer3.1.bn2.bias', 'fc.weight', 'fc.bias']) expect(keys, k).toContain(k);
    expect(keys).not.toContain('layer1.0.downsample.0.weight');
    expect(keys).not.toContain('conv1.bias');
  });

  it('train mode updates BN running stats; eval mode is per-sample (batch-independent) and leaves them', () => {
    const m = createClassifier(cfg, 2);
    const { x } = batch(4, 2);
    noGrad(() => m.train().forward(x));
    expect(m.bn1.running_mean!.toArray().some((v) => v !== 0)).toBe(true);
    expect(m.bn1.num_batches_tracked!.item()).toBe(1);
    const before = m.bn1.running_mean!.toArray();
    m.eval();
    const all = noGrad(() => m.forward(x).logits);
    const one = noGrad(() => m.forward(tensor(x.data.subarray(3 * 3072, 4 * 3072), [1, 3, 32, 32])).logits);
    expectClose('sample 3 alone vs in the batch', one.data, all.data.subarray(30, 40), 1e-5, 1e-5);
    expect(m.bn1.running_mean!.toArray()).toEqual(before);
  });

  it('the same seed gives the same weights (kaiming fan-out convs); another seed does not', () => {
    const a = createClassifier(cfg, 5), b = createClassifier(cfg, 5), c = createClassifier(cfg, 6);
    for (const [k, t] of a.stateDict()) expectClose(k, t.data, b.stateDict().get(k)!.data, 0, 0);
    expect(c.conv1.weight.data[0]).not.toBe(a.conv1.weight.data[0]);
    const w = a.stages[1].items[0].conv2.weight.toArray(); // fan_out = 16 * 9
    const sd = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(sd).toBeGreaterThan(0.8 * Math.sqrt(2 / 144));
    expect(sd).toBeLessThan(1.2 * Math.sqrt(2 / 144));
  });

  it('one backward reaches every parameter', () => {
    const m = createClassifier(cfg, 3);
    const { x, y } = batch(4, 3);
    backward(crossEntropy(m.forward(x).logits, y));
    for (const [name, p] of m.namedParameters()) {
      expect(p.grad, name).not.toBeNull();
      expect(p.grad!.toArray().some((v) => v !== 0), `${name} has an all-zero gradient`).toBe(true);
    }
  });

  it('cross-entropy falls over 30 AdamW steps on the built-in shapes', () => {
    const m = createClassifier(cfg, 4);
    const opt = new AdamW(m.namedParameters(), { lr: 1e-2, weightDecay: 0 });
    const { x, y } = batch(10, 4);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      losses.push(tidy(() => {
        const loss = crossEntropy(m.forward(x).logits, y);
        backward(loss);
        return loss.item();
      }));
      opt.step();
      m.zeroGrad();
    }
    const first = losses.slice(0, 3).reduce((a, b) => a + b) / 3, last = losses.slice(-3).reduce((a, b) => a + b) / 3;
    expect(last, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(0.6 * first);
    expect(noGrad(() => mean(m.eval().forward(x).features)).item()).toBeGreaterThan(0);
  });
});
