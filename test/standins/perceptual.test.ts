// The perceptual loss's feature net (the LPIPS VGG stand-in, docs/models/perceptual.md): the two
// shipped files load, are small, carry their metadata, and come back frozen (eval mode, no
// parameter requiring grad, parameters write-protected); they classify test images as the card
// says (Fashion-MNIST skipped with a message when the dataset is not installed); the distance on
// real images orders perturbations; the evaluation classifier's file is refused; and a few training
// steps run and are reproducible.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromData } from '../../src/tensor/tensor.ts';
import { Rng } from '../../src/tensor/rng.ts';
import { add, backward, mul, noGrad, Tape, withTape } from '../../src/autograd/index.ts';
import { FASHION_MNIST_DIR } from '../../src/data/index.ts';
import { makeShapes } from '../../src/data/shapes.ts';
import { AdamW } from '../../src/optim/adamw.ts';
import { accuracy, openStandinData } from '../../src/standins/classifier.ts';
import { defaultClassifierFile } from '../../src/standins/features.ts';
import { PERCEPTUAL_FORMAT, defaultPerceptualFile, loadPerceptualNet, trainPerceptualNet } from '../../src/standins/perceptual.ts';
import { perceptualDistance, perceptualLoss } from '../../src/models/perceptualLoss.ts';

const haveFm = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].every((f) =>
  existsSync(path.join(FASHION_MNIST_DIR, f)) || existsSync(path.join(FASHION_MNIST_DIR, `${f}.gz`)));
if (!haveFm) console.warn(`skipping the Fashion-MNIST perceptual-net accuracy test: no IDX files in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`);

describe('shipped perceptual nets', () => {
  for (const data of ['fashion-mnist', 'builtin'] as const) {
    it(`${data}: small file, metadata, frozen on load`, () => {
      expect(statSync(defaultPerceptualFile(data)).size).toBeLessThan(1024 * 1024);
      const { net, metadata } = loadPerceptualNet(data);
      expect(metadata.format).toBe(PERCEPTUAL_FORMAT);
      expect(metadata.dataset).toBe(data);
      expect(net.config.inChannels).toBe(data === 'builtin' ? 3 : 1);
      expect(net.config.widths).toEqual([16, 32, 64]);
      expect(metadata.command).toMatch(new RegExp(`^npx tsx scripts/train-perceptual.ts --data ${data}`));
      expect(Number(metadata.test_accuracy)).toBeGreaterThanOrEqual(data === 'builtin' ? 0.95 : 0.88);
      expect(Number(metadata.seed)).not.toBe(0); // the evaluation classifier's seed is 0
      // frozen: eval mode, no gradient, and an optimiser cannot write the weights
      expect(net.training).toBe(false);
      for (const p of net.parameters()) expect(p.requiresGrad).toBe(false);
      const p0 = net.parameters()[0];
      p0.grad = fromData(new Float32Array(p0.size).fill(1), p0.shape);
      expect(() => new AdamW(net.namedParameters()).step()).toThrow(/frozen/);
      p0.grad = null;
    });
  }

  it('builtin: ≥ 95% on 500 built-in test images; distances order perturbations and the gradient skips the net', () => {
    const { net } = loadPerceptualNet('builtin');
    expect(accuracy(net, openStandinData('builtin', 'test', 500))).toBeGreaterThanOrEqual(0.95);
    net.eval();
    const x = fromData(makeShapes(4, 3).images, [4, 3, 32, 32]);
    const noise = new Rng(1).normal([4, 3, 32, 32]);
    const d = [0.02, 0.1, 0.4].map((s) => noGrad(() => perceptualDistance(net, x, add(x, mul(noise, s)))).data);
    for (let i = 0; i < 4; i++) {
      expect(d[0][i]).toBeGreaterThan(0);
      expect(d[1][i]).toBeGreaterThan(d[0][i]);
      expect(d[2][i]).toBeGreaterThan(d[1][i]);
    }
    const y = noGrad(() => add(x, mul(noise, 0.1))).requireGrad();
    const tape = new Tape();
    backward(withTape(tape, () => perceptualLoss(net, x, y)), { tape });
    expect(y.grad!.data.some((v) => v !== 0)).toBe(true);
    for (const p of net.parameters()) expect(p.grad).toBeNull();
  });

  it.skipIf(!haveFm)('fashion-mnist: ≥ 88% on the first 1000 test images', () => {
    const { net } = loadPerceptualNet('fashion-mnist');
    expect(accuracy(net, openStandinData('fashion-mnist', 'test'), 1000)).toBeGreaterThanOrEqual(0.88);
  });

  it("refuses the evaluation classifier's file", () => {
    expect(() => loadPerceptualNet(defaultClassifierFile('builtin'))).toThrow(/not a perceptual-net file/);
  });
});

describe('trainPerceptualNet', () => {
  it('runs a few steps, returns a frozen net with metadata, and is reproducible by seed', () => {
    const run = (seed: number) => trainPerceptualNet({ data: 'builtin', steps: 3, trainCount: 96, testCount: 32, widths: [4, 8], convsPerStage: 1, seed });
    const a = run(3), b = run(3), c = run(4);
    expect(a.steps).toBe(3);
    expect(a.metadata.format).toBe(PERCEPTUAL_FORMAT);
    expect(JSON.parse(a.metadata.config)).toEqual({ inChannels: 3, numClasses: 10, widths: [4, 8], convsPerStage: 1 });
    expect(a.model.training).toBe(false);
    const w = (t: typeof a): number[] => Array.from(t.model.parameters()[0].data);
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    expect(Number.isFinite(a.lastLoss)).toBe(true);
  });
});

